"""Bounds a user would expect: an image over `--max-image-pixels` is that sample's error
(read from its header, never decoded), and a checkpoint's generation config asking for a
temperature no sampler takes is reported, not silently used or ignored."""

import json
import shutil

import pytest

from harness.cli import main
from harness.runs.runner import evaluate


def test_an_image_over_the_pixel_cap_is_a_sample_error(tmp_path, tiny_model):
    out = evaluate(tiny_model, "count_shapes", limit=3, max_new_tokens=2, progress=False,
                   max_image_pixels=10_000, output=str(tmp_path / "capped"))  # images: 168x168
    r = out["results"]["count_shapes"]
    assert r["n_errors"] == 3 and r["n_grade_errors"] == 0
    rows = [json.loads(x) for x in (tmp_path / "capped" / "samples.jsonl").read_text()
            .splitlines()]
    assert all("168x168 pixels, more than the 10000 allowed (--max-image-pixels)" in x["error"]
               for x in rows)
    fine = evaluate(tiny_model, "count_shapes", limit=3, max_new_tokens=2, progress=False,
                    output=str(tmp_path / "default"))
    assert fine["results"]["count_shapes"]["n_errors"] == 0


@pytest.mark.parametrize("temperature", [-1.0, float("nan")])
def test_a_temperature_no_sampler_takes_is_reported(tmp_path, tiny_model, capsys, temperature):
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    path = model / "generation_config.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | {
        "do_sample": True, "temperature": temperature}))
    code = main(["eval", "--model", str(model), "--tasks", "count_shapes", "--limit", "1",
                 "--generation-defaults", "model", "--output", str(tmp_path / "run"),
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "sets temperature to" in err.strip().splitlines()[-1]

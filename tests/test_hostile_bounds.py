"""Bounds a user would expect: an image over `--max-image-pixels` is that sample's error
(read from its header, never decoded), and a checkpoint's generation config asking for a
temperature no sampler takes is reported, not silently used or ignored."""

import json
import shutil

import pytest

from harness.runs.runner import evaluate
from vrbench.cli import main


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


def _mathvista_entry(i: int) -> dict:
    return {"question_type": "multi_choice", "answer_type": "text", "choices": ["3", "4", "5"],
            "precision": None, "answer": "4", "query": f"Question {i}: how many? " * 4,
            "response": f"Counting the shapes one by one gives {3 + i % 3}, so the answer is "
                        f"({'ABC'[i % 3]}). " + "I looked at each row of the figure. " * 12,
            "extraction": "ABC"[i % 3], "true_false": i % 3 == 1,
            "metadata": {"task": "figure QA", "skills": ["arithmetic", "counting"]}}


@pytest.mark.parametrize("block", [1, 7, 64, 1 << 20])
def test_a_mathvista_file_read_in_blocks_equals_the_whole_parse(tmp_path, block):
    # values cut at every place by the block edge: numbers, escapes, nesting, odd spacing
    obj = {"1": {"a": 12345, "b": -0.5e-3, "s": "x\\\"y\u00e9\U0001F600", "n": None},
           "2": [1, [2, [3, {}]], "}"], " 3 ": True, "4": "", "5": 10}
    path = tmp_path / "out.json"
    path.write_text(" \n{ " + ' ,\n '.join(f'{json.dumps(k)} :\t{json.dumps(v, indent=1)}'
                                           for k, v in obj.items()) + " }\n")
    from harness.interop.rescore import _object_entries
    assert dict(_object_entries(path, "a test", block=block)) == obj
    path.write_text('{"1": {"a": 1}, "2": {"a": 2')  # cut short: a sentence, at any block size
    from vrbench.errors import VrbenchError
    with pytest.raises(VrbenchError, match="not valid JSON"):
        dict(_object_entries(path, "a test", block=block))


def test_a_large_single_line_mathvista_file_is_graded_in_bounded_memory(tmp_path):
    import tracemalloc

    from harness.interop.rescore import rescore
    from harness.scoring import grade
    path = tmp_path / "output_big.json"
    entries = {str(i): _mathvista_entry(i) for i in range(6000)}
    path.write_text(json.dumps(entries))  # one line, ~4 MB
    grade("(A) 1", "A", ["1", "2"])  # the grader's own imports are not the file's cost
    tracemalloc.start()
    try:
        out = rescore(path, "mathvista", output=tmp_path / "run")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    r = out["results"]["mathvista_testmini"]
    assert r["n_samples"] == 6000 and r["acc"] == pytest.approx(1 / 3, abs=1e-3)
    assert r["other_agreement"] == pytest.approx(1.0)
    # the file read whole, then held as items and records, peaked at 4.6x this file (18x a
    # real one); read and graded as a stream, what is held is a summary's fields per response
    assert peak < 4 * path.stat().st_size, f"{peak / path.stat().st_size:.2f}x the file"

import io
import json

import datasets
import pytest
from PIL import Image

import tasks
from harness import stats
from harness.runs.runner import evaluate
from harness.runs.store import read_jsonl
from helpers import ScriptedBackend, image_key
from tasks import Task, decode_images
from tasks.spec import COLUMNS, features
from vrbench.errors import VrbenchError


def _answers(task, n_right_of_every: int, limit: int, n: int = 1):
    """Scripted answers: sample i is answered right when i % n_right_of_every == 0."""
    out = {}
    for i, s in enumerate(task.samples(task.eval_split(), limit)):
        right = i % n_right_of_every == 0
        text = (s.solution_reflective if right else "I am not sure.\n\\boxed{999}")
        out[image_key(decode_images(s)[0])] = [text] + ["\\boxed{999}"] * (n - 1)
    return out


def test_accuracy_and_behaviour_from_known_answers(tmp_path):
    t = tasks.load("count_shapes")
    backend = ScriptedBackend(_answers(t, 4, 20))
    out = evaluate("scripted", [t], limit=20, engine=backend, output=tmp_path / "run",
                   progress=False)
    r = out["results"]["count_shapes"]
    assert r["n_samples"] == 20 and r["n_errors"] == 0
    assert r["acc"] == 5 / 20  # samples 0, 4, 8, 12, 16
    assert r["acc_ci95"] == list(stats.wilson_interval(5, 20))
    # the right answers are exactly the reflective ones
    assert r["reflection_ratio"] == 0.25
    assert r["reflection_ratio_in_correct_answers"] == 1.0
    assert r["correct_ratio_in_no_reflection_texts"] == 0.0
    assert r["extractable_ratio"] == 1.0 and r["length_clip_ratio"] == 0.0
    assert r["format_ratio"] == 1.0
    assert out["groups"]["id"]["acc"] == 0.25
    targets = [s.target for s in t.samples(t.eval_split(), 20)]
    assert r["majority_baseline"] == max(map(targets.count, targets)) / 20
    recs = read_jsonl(tmp_path / "run" / "samples.jsonl")
    assert len(recs) == 20 and recs[1]["filtered_resps"] == ["999"]
    assert json.loads((tmp_path / "run" / "results.json").read_text())["results"] == \
        out["results"]


def test_pass_at_k_counts_any_correct_sample(tmp_path):
    t = tasks.load("count_shapes")
    backend = ScriptedBackend(_answers(t, 2, 10, n=4))
    out = evaluate("scripted", [t], limit=10, samples=4, temperature=1.0, engine=backend,
                   output=tmp_path / "run", progress=False)
    r = out["results"]["count_shapes"]
    assert r["pass@4"] == 0.5  # half the samples have one right response among 4
    assert r["acc"] == pytest.approx(0.5 * 0.25)  # mean per-response accuracy
    assert r["n_responses"] == 40


def _corrupt_task() -> Task:
    src = tasks.load("count_shapes").samples("test", 4)
    rows = {k: [] for k in COLUMNS}
    for i, s in enumerate(src):
        rows["id"].append(s.id)
        img = s.images[0]["bytes"] if i != 2 else b"\x89PNG\r\n\x1a\n-not-really-a-png"
        rows["images"].append([{"bytes": img, "path": None}])
        for k in ("question", "target", "solution", "solution_reflective"):
            rows[k].append(getattr(s, k))
        rows["choices"].append([])
        rows["meta"].append("{}")
    ds = datasets.Dataset.from_dict(rows, features=features())
    return Task(name="with_corrupt_image", version="0", domain="id", answer_type="integer",
                prompt_template="{question}", splits={"test": 4}, data={"test": ds})


def test_corrupt_image_is_an_errored_sample_and_the_run_goes_on(tmp_path, tiny_model):
    out = evaluate(tiny_model, [_corrupt_task()], max_new_tokens=4, batch_size=2,
                   output=tmp_path / "run", progress=False)
    r = out["results"]["with_corrupt_image"]
    assert r["n_samples"] == 4 and r["n_errors"] == 1 and r["n_responses"] == 3
    recs = {x["doc_id"]: x for x in read_jsonl(tmp_path / "run" / "samples.jsonl")}
    bad = recs["count_shapes-test-00002"]
    assert "could not be decoded" in bad["error"] and bad["resps"] == []
    assert "0x" not in bad["error"]  # no object's address from the image library
    assert all(recs[k]["error"] is None for k in recs if k != "count_shapes-test-00002")


def test_run_directory_contents_and_rerun_is_a_no_op(tmp_path, tiny_model):
    kw = dict(limit=3, max_new_tokens=5, batch_size=4, root=tmp_path, progress=False)
    out = evaluate(tiny_model, "count_shapes,bar_chart", **kw)
    run = tmp_path / out["run_dir"].split("/")[-1]
    cfg = json.loads((run / "config.json").read_text())
    assert len(cfg["model_sha256"]) == 64
    assert set(cfg["tasks"]) == {"count_shapes", "bar_chart"}
    assert cfg["tasks"]["bar_chart"]["version"] == tasks.load("bar_chart").version
    assert len(cfg["tasks"]["bar_chart"]["data_sha256"]) == 64
    assert cfg["generation"]["max_new_tokens"] == 5 and cfg["generation"]["seed"] == 0
    assert cfg["packages"]["transformers"] and "git_commit" in cfg
    lines = (run / "samples.jsonl").read_text().splitlines()
    assert len(lines) == 6
    again = evaluate(tiny_model, "count_shapes,bar_chart", **kw)
    assert again["run_dir"] == out["run_dir"]
    assert (run / "samples.jsonl").read_text().splitlines() == lines
    assert again["results"] == out["results"]
    assert again["timing"]["generated_tokens_this_session"] == 0
    # the same output directory with other settings is refused, and nothing is lost
    with pytest.raises(VrbenchError, match="different configuration"):
        evaluate(tiny_model, "count_shapes,bar_chart", **(kw | {"max_new_tokens": 6}),
                 output=run)
    assert (run / "samples.jsonl").read_text().splitlines() == lines


def test_bad_settings_are_clear_errors(tmp_path, tiny_model):
    with pytest.raises(VrbenchError, match="temperature above 0"):
        evaluate(tiny_model, "count_shapes", samples=4, output=tmp_path / "a")
    with pytest.raises(VrbenchError, match="--preset must be one of"):
        evaluate(tiny_model, "count_shapes", preset="pass99", output=tmp_path / "b")
    with pytest.raises(VrbenchError, match="no split 'train'"):
        evaluate(tiny_model, "bar_chart", split="train", output=tmp_path / "c")


def test_presets_set_the_paper_generation_settings(tmp_path):
    t = tasks.load("count_shapes")
    backend = ScriptedBackend(_answers(t, 1, 2, n=8))
    out = evaluate("scripted", [t], limit=2, preset="pass8", engine=backend,
                   output=tmp_path / "run", progress=False)
    gen = out["config"]["generation"]
    assert (gen["n"], gen["temperature"], gen["top_p"]) == (8, 1.0, 1.0)
    assert out["results"]["count_shapes"]["pass@8"] == 1.0


def test_decode_images_rejects_garbage():
    s = tasks.load("count_shapes").samples("test", 1)[0]
    assert decode_images(s)[0].mode == "RGB"
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="PNG")
    broken = type(s)(id="x", images=[{"bytes": buf.getvalue()[:20], "path": None}],
                     question="q", target="1")
    with pytest.raises(ValueError, match="could not be decoded"):
        decode_images(broken)


def test_a_checkpoints_fingerprint_is_read_once_per_version(tmp_path, monkeypatch):
    """Every byte is hashed once; later evaluations stat the files (a 72B checkpoint hashed
    at every evaluation took minutes); a rewritten weight file is hashed again."""
    import hashlib

    from harness.runs import provenance
    model = tmp_path / "ckpt"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"w" * 1000)
    calls = []
    real = hashlib.sha256
    monkeypatch.setattr(provenance.hashlib, "sha256", lambda *a: calls.append(a) or real(*a))
    first = provenance.model_sha256(str(model))
    hashed = len(calls)
    assert provenance.model_sha256(str(model)) == first
    assert len(calls) == hashed + 1  # only the cache entry's name, no file read again
    (model / "model.safetensors").write_bytes(b"v" * 1000)  # the same size, other bytes
    changed = provenance.model_sha256(str(model))
    assert changed != first and changed == real(b"config.json{}model.safetensors"
                                                + b"v" * 1000).hexdigest()

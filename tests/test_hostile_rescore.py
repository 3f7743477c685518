"""`vrbench rescore` never clobbers and never miscounts: it refuses to write over another run
or a checkpoint (as `vrbench eval` does), reads a vrbench samples file strictly (one sentence
per malformed record), refuses a file that names one sample twice or has text after its
JSON, and reads the other harness's verdicts strictly ("False" is false, NaN no verdict)."""

import json

import pytest

import tasks
from harness.interop.rescore import verdict
from harness.runs.runner import evaluate
from helpers import N, ScriptedBackend, first, one_sentence, scripted_answers
from vrbench.cli import main


def _snapshot(folder) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _mathvista(path, entries: dict | str) -> str:
    path.write_text(entries if isinstance(entries, str) else json.dumps(entries))
    return str(path)


def _problem(answer="7", response="\\boxed{7}", verdict_=True) -> dict:
    return {"question_type": "free_form", "answer_type": "integer", "answer": answer,
            "response": response, "true_false": verdict_}


def test_rescore_never_writes_over_an_eval_run_or_a_checkpoint(tmp_path, capsys):
    t = tasks.load("count_shapes")
    run = evaluate("m", [t], limit=N, engine=ScriptedBackend(scripted_answers(t, first(5))),
                   output=str(tmp_path / "eval"), progress=False)["run_dir"]
    checkpoint = tmp_path / "ckpt"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text(json.dumps({"model_type": "qwen2_vl"}))
    (checkpoint / "model.safetensors").write_bytes(b"weights")
    source = _mathvista(tmp_path / "output_m.json", {"1": _problem()})
    for target in (tmp_path / "eval", checkpoint):
        before = _snapshot(target)
        assert main(["rescore", source, "--format", "mathvista", "--output", str(target)]) == 2
        assert "choose another --output" in one_sentence(capsys)
        assert _snapshot(target) == before, target
    assert str(tmp_path / "eval") == run


@pytest.mark.parametrize("record,field", [
    ({"task": "count_shapes", "target": "3"}, "doc_id"),
    ({"doc_id": "1", "target": "3"}, "task"),
    ({"task": ["count_shapes"], "doc_id": "1", "target": "3"}, "task"),
    ({"task": "count_shapes", "doc_id": "1", "target": "3", "precision": "2"}, "precision"),
    ({"task": "count_shapes", "doc_id": "1", "target": "3", "categories": ["a"]},
     "categories"),
    ({"task": "count_shapes", "doc_id": 1, "target": "3"}, "doc_id"),
])
def test_a_malformed_vrbench_record_is_one_sentence(tmp_path, capsys, record, field):
    path = tmp_path / "samples.jsonl"
    full = {"resps": ["\\boxed{3}"], "correct": [True], "analysis": [{}]} | record
    path.write_text(json.dumps(full) + "\n")
    assert main(["rescore", str(path), "--format", "vrbench", "--root", str(tmp_path)]) == 2
    msg = one_sentence(capsys)
    assert "record 1" in msg and repr(field) in msg


def test_a_sample_named_twice_is_refused_not_counted_twice(tmp_path, capsys):
    a, b, c, d = (json.dumps(_problem(response=r)) for r in ("\\boxed{7}", "\\boxed{7}",
                                                               "\\boxed{1}", "\\boxed{8}"))
    text = f'{{"5": {a}, "5": {b}, "6": {c}, "5": {d}}}'
    assert len(json.loads(text)) == 2  # what json.load (and the official scorer) see
    source = _mathvista(tmp_path / "output_m.json", text)
    assert main(["rescore", source, "--format", "mathvista", "--output",
                 str(tmp_path / "run")]) == 2
    msg = one_sentence(capsys)
    assert "'5' more than once" in msg
    assert not (tmp_path / "run" / "results.json").exists()


def test_text_after_the_json_object_is_refused(tmp_path, capsys):
    source = _mathvista(tmp_path / "output_m.json", json.dumps({"1": _problem()})
                        + '\n{"2": "a second object"}')
    assert main(["rescore", source, "--format", "mathvista", "--root", str(tmp_path)]) == 2
    assert "text after the object's end" in one_sentence(capsys)
    _mathvista(tmp_path / "output_m.json", json.dumps({"1": _problem()}) + "\n\n")
    assert main(["rescore", source, "--format", "mathvista", "--root", str(tmp_path)]) == 0


@pytest.mark.parametrize("value,read", [
    (True, True), (False, False), (1, True), (0, False), (1.0, True), ("False", False),
    ("false", False), ("TRUE", True), ("yes", True), ("0", False), (float("nan"), None),
    (None, None), (0.5, None), ("maybe", None), ([True], None), ({}, None)])
def test_verdicts_are_read_strictly(value, read):
    assert verdict(value) is read


def test_a_false_or_nan_verdict_is_not_counted_correct(tmp_path, capsys):
    problems = {"1": _problem(verdict_="False"), "2": _problem(verdict_=float("nan")),
                "3": _problem(verdict_="True"), "4": _problem(verdict_=False)}
    source = tmp_path / "output_m.json"
    source.write_text(json.dumps(problems))  # NaN as JSON writes it
    assert main(["rescore", str(source), "--format", "mathvista", "--output",
                 str(tmp_path / "run")]) == 0
    captured = capsys.readouterr()
    assert "1 response(s)" in captured.err and "carry no verdict" in captured.err
    r = json.loads((tmp_path / "run" / "results.json").read_text())
    res = r["results"]["mathvista_testmini"]
    assert res["acc"] == 1.0  # every response is \boxed{7}: right
    assert res["other_acc"] == pytest.approx(1 / 3)  # False, True, False; NaN left out
    assert r["n_without_verdict"] == 1


JSONL_ROW = json.dumps({"source": "x", "pid": "1", "answer": "7", "response": "7"})


@pytest.mark.parametrize("content,fmt,says", [
    ("hello there\n", "mathvista", "is not JSON (it begins 'hello there'); --format mathvista"),
    ("hello there\n", "mathvision", "is not JSON (it begins 'hello there'); --format "
                                    "mathvision reads MATH-V's"),
    ("Response: 7\n", "lmms-eval", "is not JSON"),
    (JSONL_ROW + "\n" + JSONL_ROW + "\n", "mathvista", "holds JSON Lines (an object per line)"),
    ('{\n  "1": {"answer": "7"}\n}\n', "mathvision", "one JSON object keyed by pid is --format "
                                                     "mathvista"),
    (JSONL_ROW + "\n{broken\n", "mathvision", "lacks 'id' (its fields: source, pid, answer, "
                                              "response)"),
    ('{"id": "1", "response": "7", "answer": "7"}\n{broken\n', "mathvision",
     "line 2 of"),
    (JSONL_ROW + "\n", "lmms-eval", "lacks 'doc' and 'resps'"),
    (JSONL_ROW + "\n", "vrbench", "lacks a valid 'task' (a vrbench sample has"),
    ('{"1": 7}', "mathvista", "problem 1 of"),
    ('{"1": {"answer": "7"}}', "mathvista", "lacks 'question_type' and 'response'"),
])
def test_a_file_of_another_shape_is_named_for_what_it_is(tmp_path, capsys, content, fmt,
                                                        says):
    """A file that is not what --format reads (plain text, JSON Lines for MathVista's one
    object, one object for a JSON Lines format, records without the format's fields) is one
    sentence saying what the format reads, before any benchmark copy is asked for."""
    path = tmp_path / "responses.jsonl"
    path.write_text(content)
    assert main(["rescore", str(path), "--format", fmt, "--task", "mathvista_testmini",
                 "--root", str(tmp_path / "runs")]) == 2
    text = one_sentence(capsys)
    assert says in text and "redoes its sample" not in text and "--data-dir" not in text
    assert not (tmp_path / "runs").exists()

"""A grading error is never a wrong answer: the grader catches nothing but the symbolic
checker's own failure (a recorded rule), every sample says how it was graded, and a grader
or analyzer exception is recorded on its sample, counted and shown."""

import json
from pathlib import Path

import math_verify
import pytest
from math_verify.errors import TimeoutException

import tasks
from harness.runs.runner import evaluate
from harness.scoring import grade, grader, official
from helpers import N, ScriptedBackend, first, scripted_answers
from vrbench.cli import main


def _rows(out) -> list[dict]:
    return [json.loads(x) for x in Path(out["run_dir"], "samples.jsonl").read_text().splitlines()]


def _run(tmp_path, name="count_shapes"):
    t = tasks.load(name)
    return evaluate("scripted-model", [t], limit=N, engine=ScriptedBackend(
        scripted_answers(t, first(10))), root=str(tmp_path), progress=False)


def test_every_sample_records_how_it_was_graded(tmp_path):
    out = _run(tmp_path)
    rows = _rows(out)
    # the right answers match as text, "\boxed{999}" is compared as a number
    assert {r["graded_by"][0] for r in rows} == {"exact", "number"}
    assert out["results"]["count_shapes"]["n_grade_errors"] == 0 and out["n_grade_errors"] == 0
    assert out["results"]["count_shapes"]["acc"] == pytest.approx(10 / N)


@pytest.mark.parametrize("where", ["grade", "extract"])
def test_a_grader_exception_is_recorded_counted_and_never_wrong(tmp_path, monkeypatch, where):
    real_grade, real_extract = official.grade, grader.extract

    def broken(text, *args, **kw):
        if "999" in text:  # the wrong answers: a bug that would pass for "wrong" if hidden
            raise ZeroDivisionError("a grader bug")
        return (real_grade if where == "grade" else real_extract)(text, *args, **kw)
    if where == "grade":
        monkeypatch.setattr(official, "grade", broken)
    else:  # the analyzers read the answer too
        monkeypatch.setattr("harness.analyzers.extract", broken)
    out = _run(tmp_path)
    r = out["results"]["count_shapes"]
    assert r["n_grade_errors"] == N - 10 == out["n_grade_errors"] == r["n_errors"]
    rows = _rows(out)
    failed = [x for x in rows if x["error"]]
    assert len(failed) == N - 10
    assert all(x["grading_error"] and "ZeroDivisionError: a grader bug" in x["error"]
               and x["resps"] == ["\\boxed{999}"] for x in failed)  # kept, to grade again
    assert all(x["correct"] == [True] for x in rows if not x["error"])


def test_eval_shows_grading_errors_at_the_end(tmp_path, tiny_model, monkeypatch, capsys):
    def broken(*args, **kw):
        raise ValueError("no")
    monkeypatch.setattr(official, "grade", broken)
    assert main(["eval", "--model", tiny_model, "--tasks", "count_shapes", "--limit", "2",
                 "--max-new-tokens", "4", "--output", str(tmp_path / "run"),
                 "--no-progress"]) == 0
    assert "the grader raised on 2 sample(s)" in capsys.readouterr().err
    assert json.loads((tmp_path / "run" / "results.json").read_text())["n_grade_errors"] == 2


def test_grade_lets_a_bug_through(monkeypatch):
    def broken(_):
        raise RuntimeError("bug")
    monkeypatch.setattr(grader, "to_number", broken)
    with pytest.raises(RuntimeError):
        grade("\\boxed{3}", "4")


def test_a_checker_time_out_is_a_recorded_outcome(monkeypatch):
    def slow(*args, **kw):
        raise TimeoutException("Operation timed out!")
    monkeypatch.setattr(math_verify, "parse", slow)
    g = grade("\\boxed{x^2 + 1}", "1 + x^2")
    assert (g.correct, g.rule) == (False, "math_verify_timeout")


@pytest.mark.parametrize("response,target,choices,correct,rule", [
    ("\\boxed{12}", "12", None, True, "exact"),
    ("\\boxed{12.0}", "12", None, True, "number"),
    ("\\boxed{\\frac{x}{2}}", "x/2", None, True, "math_verify"),
    ("The answer is (B).", "B", ["3", "4"], True, "option"),
    ("The answer is (E).", "B", ["3", "4"], False, "no_option"),
    ("<think>4 or 5", "4", None, False, "no_answer"),
    ("\\boxed{three}", "3", None, False, "not_a_number"),
])
def test_the_rule_that_decided(response, target, choices, correct, rule):
    g = grade(response, target, choices)
    assert (g.correct, g.rule) == (correct, rule)

"""`vrbench rescore`: each format read as its harness writes it, graded by vrbench, the other
verdicts kept beside, their agreement and kappa in results.json, the disagreements listed,
and the run in the leaderboard like any other; on responses made here (always) and on real
responses with their official verdicts (../shared/real-benchmarks, where it is present)."""

import json
from collections import defaultdict

import pytest

from harness import stats
from harness.reports import leaderboard
from harness.runs.index import index
from harness.runs.store import read_jsonl
from harness.scoring import grade
from realdata import S, jsonl, mathvista_items, needs_real, write
from vrbench.cli import main

# (response, target, choices, the other harness's verdict): vrbench grades the first three
# right, the fourth wrong; the other harness called the second wrong
MADE = [("So the answer is \\boxed{7}.", "7", [], True),
        ("The area is 12.5 square units.", "12.5", [], False),
        ("The answer is (B).", "B", ["red", "green"], True),
        ("I think it is 9.", "4", [], False)]


def test_every_format_on_responses_made_here(tmp_path, capsys):
    root = tmp_path / "runs"
    vista = tmp_path / "output_made.json"  # MathVista: pid -> problem
    vista.write_text(json.dumps({str(i): {
        "question_type": "multi_choice" if c else "free_form", "answer_type": "integer",
        "choices": c or None, "answer": c[ord(t) - 65] if c else t, "response": r,
        "extraction": None, "true_false": v} for i, (r, t, c, v) in enumerate(MADE)}))
    mathv = tmp_path / "made.jsonl"  # MATH-V outputs, with their answers inline
    mathv.write_text("".join(json.dumps({"id": str(i), "response": r, "answer": t,
                                         "options": c, "correct": v}) + "\n"
                             for i, (r, t, c, v) in enumerate(MADE)))
    lmms = tmp_path / "samples_mathvista_testmini.jsonl"  # lmms-eval --log_samples
    lmms.write_text("".join(json.dumps({
        "doc_id": i, "doc": {"pid": str(i), "question": "q", "choices": c or None,
                             "answer": c[ord(t) - 65] if c else t, "unit": None,
                             "precision": None, "answer_type": "integer",
                             "question_type": "multi_choice" if c else "free_form"},
        "resps": [[r]], "filtered_resps": [r], "score": {"true_false": v}}) + "\n"
        for i, (r, t, c, v) in enumerate(MADE)))
    runs = {}
    for source, fmt, extra in ((vista, "mathvista", []), (mathv, "mathvision", []),
                               (lmms, "lmms-eval", ["--task", "mathvista_testmini"])):
        out = tmp_path / fmt
        assert main(["rescore", str(source), "--format", fmt, "--output", str(out),
                     "--model-name", f"made-{fmt}", *extra]) == 0
        res = json.loads((out / "results.json").read_text())
        (r,) = res["results"].values()
        assert (r["n_samples"], r["acc"], r["other_acc"], r["other_agreement"]) == (
            4, 0.75, 0.5, 0.75), fmt
        (row,) = read_jsonl(out / "disagreements.jsonl")
        assert (row["doc_id"], row["vrbench"], row["other"]) == ("1", True, False)
        runs[fmt] = out
    # a vrbench run graded again by the same grader agrees with itself
    assert main(["rescore", str(runs["mathvista"]), "--format", "vrbench", "--output",
                 str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "results.json").read_text())["results"]
    assert again["mathvista_testmini"]["other_agreement"] == 1.0
    capsys.readouterr()
    root.mkdir()
    for fmt, out in runs.items():  # each an ordinary run: it enters the index and the board
        out.rename(root / fmt)
    assert {e.name for e in index(root)} == {f"made-{f}" for f in runs}
    assert main(["leaderboard", "--root", str(root), "--out", str(tmp_path / "board")]) == 0
    board = (tmp_path / "board" / "README.md").read_text()
    assert "| made-mathvision | rescored:mathvision |" in board
    # vrbench's score beside the other harness's, each with its interval, and their agreement
    lo, hi = stats.wilson_interval(2, 4)
    against = board.split("## Against the official verdicts")[1]
    assert (f"| made-mathvista | mathvista\\_testmini | 4 | 75.0 \\[{100 * r['acc_ci95'][0]:.1f}, "
            f"{100 * r['acc_ci95'][1]:.1f}\\] | 50.0 \\[{100 * lo:.1f}, {100 * hi:.1f}\\] | 75.0 |"
            ) in against
    assert against.count("| made-") == 3
    page = (tmp_path / "board" / "index.html").read_text()
    assert "<h2>Against the official verdicts</h2>" in page and "<td>made-lmms-eval</td>" in page


def _by_model(items):
    out = defaultdict(list)
    for item in items():
        out[item[0]["model"]].append(item)
    return out


@needs_real
def test_mathvista_outputs_of_six_models_enter_one_leaderboard(tmp_path, capsys):
    root = tmp_path / "runs"
    for model, items in _by_model(mathvista_items).items():
        # MathVista's output_<model>.json: pid -> the problem with the model's response and
        # the official extraction and verdict
        out = {r["pid"]: {"question_type": r["question_type"], "answer_type": r["answer_type"],
                          "choices": r["choices"], "precision": r["precision"],
                          "unit": r["unit"], "answer": r["answer"], "response": r["response"],
                          "extraction": r["official_extraction"],
                          "prediction": r["official_prediction"],
                          "true_false": r["official_correct"], "metadata": {"task": "x"}}
               for r, *_ in items}
        path = tmp_path / f"output_{model}.json"
        path.write_text(json.dumps(out))
        assert main(["rescore", str(path), "--format", "mathvista", "--root", str(root)]) == 0
        printed = capsys.readouterr().out
        ours = [grade(r["response"], t, c, p).correct for r, t, c, p in items]
        theirs = [r["official_correct"] for r, *_ in items]
        agree, kappa = stats.agreement(ours, theirs)
        (run,) = [e for e in index(root) if e.name == model]
        r = run.results["mathvista_testmini"]
        assert r["acc"] == pytest.approx(sum(ours) / len(ours))
        assert r["other_acc"] == pytest.approx(sum(theirs) / len(theirs))
        assert (r["other_agreement"], r["other_kappa"]) == pytest.approx((agree, kappa))
        dis = read_jsonl(run.run_dir / "disagreements.jsonl")
        assert len(dis) == sum(a != b for a, b in zip(ours, theirs, strict=True))
        assert f"{100 * agree:.1f}" in printed
        assert r["length_mean"] > 0 and "reflection_ratio" in r
    assert main(["leaderboard", "--root", str(root), "--out", str(tmp_path / "board")]) == 0
    board = (tmp_path / "board" / "README.md").read_text()
    assert all(f"| {leaderboard.md(m)} | rescored:mathvista |" in board
               for m in _by_model(mathvista_items))


@needs_real
def test_mathvision_outputs_take_answers_from_the_local_copy(tmp_path, capsys):
    rows = jsonl("mathvision/testmini.jsonl")
    import datasets
    write(tmp_path / "data" / "MathLLMs" / "MathVision", "data/testmini-0.parquet", rows,
           {"id": S, "question": S, "options": datasets.List(S), "image": S, "answer": S,
            "solution": S, "level": datasets.Value("int64"), "subject": S})
    lines = [r for r in jsonl("responses_mathvision.jsonl") if r["model"] == "Gemini-Pro-CoT"]
    path = tmp_path / "Gemini-Pro-CoT.jsonl"  # as MATH-V writes outputs: no answers inside
    path.write_text("\n".join(json.dumps({"id": r["id"], "model": "gemini", "response":
                                          r["response"], "model_answer": r["official_extraction"],
                                          "correct": r["official_correct"]}) for r in lines))
    before = path.read_bytes()
    assert main(["rescore", str(path), "--format", "mathvision", "--task",
                 "mathvision_testmini", "--data-dir", str(tmp_path / "data"),
                 "--output", str(tmp_path / "run")]) == 0
    assert path.read_bytes() == before  # someone else's file is never changed
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    r = res["results"]["mathvision_testmini"]
    ours = [grade(x["response"], x["answer"], x["options"] or None).correct for x in lines]
    assert r["n_samples"] == len(lines) == 200
    assert r["other_agreement"] == pytest.approx(stats.agreement(
        ours, [x["official_correct"] for x in lines])[0])
    assert r["by_category"]["subject"]  # categories come from the local copy


@needs_real
def test_lmms_eval_samples_and_a_vrbench_run(tmp_path, capsys):
    rows = {r["pid"]: r for r in jsonl("mathvista/testmini_sample.jsonl")}
    lines = [r for r in jsonl("responses_mathvista.jsonl") if r["model"] == "bard"]
    path = tmp_path / "samples_mathvista_testmini.jsonl"  # lmms-eval --log_samples
    path.write_text("\n".join(json.dumps({
        "doc_id": i, "doc": {k: v for k, v in rows[r["pid"]].items() if k != "image"},
        "target": r["answer"], "arguments": [], "resps": [[r["response"]]],
        "filtered_resps": [r["response"]],
        "gpt_eval_score": {"true_false": r["official_correct"]}})
        for i, r in enumerate(lines)) + "\n")
    assert main(["rescore", str(path), "--format", "lmms-eval", "--output",
                 str(tmp_path / "lmms")]) == 2
    assert "needs --task" in capsys.readouterr().err
    assert main(["rescore", str(path), "--format", "lmms-eval", "--task", "mathvista_testmini",
                 "--output", str(tmp_path / "lmms")]) == 0
    r = json.loads((tmp_path / "lmms" / "results.json").read_text())["results"][
        "mathvista_testmini"]
    assert r["n_samples"] == 200 and r["other_acc"] == pytest.approx(
        sum(x["official_correct"] for x in lines) / 200)
    # a vrbench run graded again by the same grader agrees with itself
    assert main(["rescore", str(tmp_path / "lmms"), "--format", "vrbench", "--output",
                 str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "results.json").read_text())["results"][
        "mathvista_testmini"]
    assert again["other_agreement"] == 1.0 and again["acc"] == r["acc"]
    assert main(["rescore", str(tmp_path / "missing.json"), "--format", "mathvista"]) == 2

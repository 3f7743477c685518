"""Results that cannot mislead: an evaluation scores each domain on its own split (ID on
validation, OOD on test) and the leaderboard says what it shows; a row is one model under one
setting; averages are over the suites' own tasks; a plain greedy evaluation is "greedy"; and
the leaderboard never writes over a folder it did not write, nor over a published one."""

import json

import pytest
import yaml

import tasks
from harness.reports import leaderboard
from harness.runs.runner import evaluate
from helpers import N, ScriptedBackend, checkpoint, first, scripted_answers, scripted_eval
from vrbench.cli import main


def test_each_domain_is_scored_on_its_own_split_and_the_board_says_so(tmp_path):
    root = tmp_path / "runs"
    id_run, ood_run = scripted_eval(checkpoint(tmp_path, "m", 10, 0), root, first(5), first(5))
    assert id_run["config"]["tasks"]["count_shapes"]["split"] == "validation"
    assert ood_run["config"]["tasks"]["count_shapes.shape1"]["split"] == "test"
    assert id_run["config"]["split"] is None  # no --split: each task on its domain's
    board = leaderboard.build(root)
    assert leaderboard.splits_sentence(board) == ("Scored: ID tasks on validation, OOD tasks "
                                                  "on test.")
    # an explicit --split is one split for all, and the board says that too
    t = tasks.load("count_shapes")
    evaluate("m2", [t], limit=N, split="test", root=str(root), progress=False,
             engine=ScriptedBackend(scripted_answers(t, first(5), split="test")))
    assert "ID tasks on test and validation" in leaderboard.splits_sentence(
        leaderboard.build(root))


def test_a_row_is_one_model_under_one_setting(tmp_path):
    root = tmp_path / "runs"
    model = checkpoint(tmp_path, "m", 10, 0)
    t = tasks.load("count_shapes")
    for limit, tokens in ((N, 256), (N // 2, 256), (N, 32)):
        evaluate(str(model), [t], limit=limit, max_new_tokens=tokens, root=str(root),
                 progress=False, engine=ScriptedBackend(scripted_answers(t, first(10))))
    rows = leaderboard.build(root).rows
    assert sorted((r.name, r.setting) for r in rows) == [
        ("m", f"{N // 2} samples, 256 tokens"), ("m", f"{N} samples, 256 tokens"),
        ("m", f"{N} samples, 32 tokens")]
    assert all(r.preset == "greedy" for r in rows)  # a plain greedy evaluation is greedy


def test_averages_are_over_the_suites_own_tasks(tmp_path):
    root = tmp_path / "runs"
    scripted_eval(checkpoint(tmp_path, "suite", 10, 0), root, first(16), first(8))
    mine = tmp_path / "mine.yaml"  # the user's own ID task: a column, in no average
    mine.write_text(yaml.safe_dump({"name": "mine", "version": 1, "domain": "id",
                                    "answer_type": "integer", "prompt_template": "{question}",
                                    "splits": {"validation": N}, "generator": "count_shapes",
                                    "seed": 7}))
    t = tasks.from_yaml(mine)
    model = checkpoint(tmp_path, "custom", 10, 0)
    evaluate(str(model), [t], limit=N, root=str(root), progress=False,
             engine=ScriptedBackend(scripted_answers(t, first(20))))
    board = leaderboard.build(root)
    rows = {r.name: r for r in board.rows}
    assert "mine" in board.columns and rows["custom"].cells["mine"].mean == 1.0
    assert "ID avg" not in rows["custom"].cells  # 100% on its own task: no ID average
    assert rows["suite"].cells["ID avg"].tasks == ("count_shapes",)  # the suite's task


def test_a_rescored_benchmark_is_in_no_average_and_never_best_against_other_tasks(
        tmp_path, capsys):
    root = tmp_path / "runs"
    scripted_eval(checkpoint(tmp_path, "suite", 10, 0), root, first(4), first(2))
    out = tmp_path / "output_model.json"
    out.write_text(json.dumps({str(i): {"question_type": "free_form", "answer_type": "integer",
                                        "answer": "1", "response": "\\boxed{1}",
                                        "true_false": True} for i in range(4)}))
    assert main(["rescore", str(out), "--format", "mathvista", "--root", str(root)]) == 0
    board = leaderboard.build(root)
    rows = {r.name: r for r in board.rows}
    bench = rows["model"]
    assert bench.cells["mathvista_testmini"].mean == 1.0
    assert "OOD avg" not in bench.cells  # a published benchmark is no OOD shift of the suite
    assert rows["suite"].cells["OOD avg"].tasks == ("count_shapes.shape1",)


def test_the_leaderboard_never_writes_over_what_it_did_not_write(tmp_path, capsys):
    root = tmp_path / "runs"
    scripted_eval(checkpoint(tmp_path, "m", 10, 0), root, first(5), first(5))
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "README.md").write_text("somebody's page")
    assert main(["leaderboard", "--root", str(root), "--out", str(theirs)]) == 2
    assert "did not write" in capsys.readouterr().err
    assert (theirs / "README.md").read_text() == "somebody's page"
    # a board it wrote, it writes again; a published one (bundled) only with --force
    board = tmp_path / "board"
    assert main(["leaderboard", "--root", str(root), "--out", str(board)]) == 0
    assert main(["leaderboard", "--root", str(root), "--out", str(board)]) == 0
    assert main(["leaderboard", "--root", str(root), "--out", str(board), "--bundle"]) == 0
    before = (board / "README.md").read_text()
    assert main(["leaderboard", "--root", str(root), "--out", str(board)]) == 2
    assert "published leaderboard" in capsys.readouterr().err
    assert (board / "README.md").read_text() == before
    assert main(["leaderboard", "--root", str(root), "--out", str(board), "--bundle",
                 "--force"]) == 0


@pytest.mark.parametrize("folder", ["leaderboard"])
def test_the_published_leaderboard_is_refused_by_default(folder, capsys):
    from pathlib import Path
    published = Path(__file__).resolve().parents[1] / folder
    before = (published / "README.md").read_bytes()
    assert main(["leaderboard", "--root", str(published / "runs"), "--out",
                 str(published)]) == 2
    assert "did not write" in capsys.readouterr().err
    assert (published / "README.md").read_bytes() == before

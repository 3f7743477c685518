"""Classes 3 and 4 of the hardening: one malformed run never takes the results root down
(it is skipped with a warning naming it), and names from runs are escaped for every format
the leaderboard writes."""

import csv
import json

import pytest

from helpers import checkpoint, first, scripted_eval
from vrbench.cli import main

HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>|=cmd|' /C calc'!A0 $x$"


def _good_root(tmp_path):
    root = tmp_path / "results"
    scripted_eval(checkpoint(tmp_path, "good", 10, 0), root, first(8), first(2))
    return root


def _bad_run(root, name: str, results) -> str:
    run = root / name
    run.mkdir(parents=True)
    (run / "results.json").write_text(json.dumps(results))
    return str(run)


def _good_results(root) -> dict:
    return json.loads(next(root.rglob("results.json")).read_text())


@pytest.mark.parametrize("damage", [
    lambda r: [],
    lambda r: r | {"config": r["config"] | {"checkpoint": [1]}},
    lambda r: r | {"config": r["config"] | {"checkpoint": {"name": "x", "seed": "zero"}}},
    lambda r: r | {"results": {"count_shapes": {"acc": "high", "n_samples": 20}}},
    lambda r: r | {"results": {"count_shapes": []}},
    lambda r: r | {"results": {"unknown": next(iter(r["results"].values()))}},
    lambda r: r | {"config": r["config"] | {"generation": {"seed": [0]}}},
])
def test_a_malformed_run_is_skipped_with_a_warning(tmp_path, capsys, damage):
    root = _good_root(tmp_path)
    bad = _bad_run(root, "bad", damage(_good_results(root)))
    capsys.readouterr()
    assert main(["runs", "--root", str(root)]) == 0
    out, err = capsys.readouterr()
    assert "good" in out and "2 runs under" in out  # the good checkpoint's two runs
    assert f"warning: skipping {bad}" in err and "Traceback" not in err
    assert main(["leaderboard", "--root", str(root), "--out", str(tmp_path / "board")]) == 0
    assert "| good @ 10 |" in (tmp_path / "board" / "README.md").read_text()


def test_eval_refuses_a_checkpoint_whose_record_is_malformed(tmp_path, tiny_model, capsys):
    import shutil
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    (model / "vrbench_checkpoint.json").write_text("[1]")
    code = main(["eval", "--model", str(model), "--tasks", "count_shapes", "--limit", "1",
                 "--output", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and "is not a JSON object; the checkpoint is damaged." in err


def test_names_are_escaped_in_markdown_csv_html_and_figures(tmp_path):
    root = tmp_path / "results"
    scripted_eval(checkpoint(tmp_path, HOSTILE, 10, 0), root, first(8), first(2))
    scripted_eval(checkpoint(tmp_path, "=SUM(A1:A9)", 10, 0), root, first(4), first(2))
    out = tmp_path / "board"
    assert main(["leaderboard", "--root", str(root), "--out", str(out)]) == 0
    md = (out / "README.md").read_text()
    assert "<script>" not in md and "<img" not in md and "&lt;script&gt;" in md
    table = [ln for ln in md.splitlines() if ln.startswith("| ") and "@ 10" in ln]
    head = next(ln for ln in md.splitlines() if ln.startswith("| model"))
    cells = lambda ln: ln.replace("\\|", "").count("|")  # noqa: E731  (escaped pipes aside)
    assert all(cells(ln) == cells(head) for ln in table)  # no name breaks its row
    rows = list(csv.DictReader((out / "leaderboard.csv").read_text().splitlines()))
    names = {r["name"] for r in rows}
    assert "'=SUM(A1:A9)" in names and HOSTILE in names  # a formula is never a cell's start
    page = (out / "index.html").read_text()
    assert "<script>alert" not in page and "onerror=alert" not in page.replace(
        "onerror=alert(2)&gt;", "")
    assert (out / "leaderboard.png").stat().st_size > 1000  # "$x$" drawn as text, no crash
    assert main(["analyze", str(root), "--out", str(tmp_path / "analysis")]) == 0
    assert "<script>" not in (tmp_path / "analysis" / "analysis.md").read_text()

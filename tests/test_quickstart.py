import json

import pytest
from PIL import Image

from harness.reports import claims, leaderboard
from harness.reports.tables import for_terminal
from harness.runs.store import read_jsonl
from helpers import checkpoint, first, scripted_eval
from trainers.config import CheckpointEval
from vrbench.cli import main
from vrbench.config import QuickstartConfig
from vrbench.quickstart import run, summary_table


@pytest.mark.slow
def test_quickstart_end_to_end_small_budget(tmp_path, capsys, monkeypatch):
    """Two seeds trained at once, each in its own process (`jobs=2`), then scored and
    summarised over both."""
    monkeypatch.setattr(claims, "BLOCK", 5)  # the long arm's 20 steps: two blocks a seed
    cfg = QuickstartConfig(out=str(tmp_path / "qs"), size="tiny", tasks="count_shapes",
                           seeds=(0, 1), jobs=2, warm_steps=30, warm_lr=3e-3, arm_steps=6,
                           prompts=4,
                           group_size=2, sweep_lrs=(1e-3,), kl_prompts=4, arm_points=2,
                           long_rl_steps=20, long_rl_lr=2e-3, long_rl_terse=0.5,
                           eval=CheckpointEval(id_tasks="count_shapes",
                                               ood_tasks="count_shapes.grid1,bar_chart",
                                               limit=4, final_limit=6, max_new_tokens=24))
    report = run(cfg)
    shown = capsys.readouterr().out  # the report as a terminal shows it: no markdown
    assert "The paper's claims, as measured" in shown and "![" not in shown
    assert not any(line.startswith(("#", "|")) for line in shown.splitlines())
    qs = tmp_path / "qs"
    for seed in (0, 1):
        for stage, last in (("warm", 30), ("sft", 6), ("rl", 6), ("sft-lr0.001", 6),
                            ("rl-lr0.001", 6)):
            rows = read_jsonl(qs / f"seed{seed}" / stage / "dynamics.jsonl")
            assert max(r["step"] for r in rows) == last
            assert {r["task"] for r in rows} == {"count_shapes", "count_shapes.grid1",
                                                 "bar_chart"}
            # the last checkpoint on final_limit samples per task, the others on limit
            for step, n in ((last, 6), (last // 2, 4)) if stage != "warm" else ((30, 6),):
                res = json.loads((qs / f"seed{seed}" / stage / "evals" /
                                  f"checkpoint-{step:06d}-greedy-test" / "results.json"
                                  ).read_text())["results"]
                assert {r["n_samples"] for r in res.values()} == {n}
            assert (qs / f"seed{seed}" / stage / f"checkpoint-{last:06d}" / "config.json").exists()
        # KL of every arm checkpoint to the warm start, on the ID prompts
        kl = json.loads((qs / f"seed{seed}" / "kl.json").read_text())
        assert kl["base"] == str(qs / f"seed{seed}" / "warm" / "checkpoint-000030")
        assert len(kl["kl"]) == 8 and all(rows[0]["n"] == 4 and rows[0]["kl"] >= 0
                                          for rows in kl["kl"].values())
        check = json.loads((qs / f"seed{seed}" / "rl" / "reward_check.json").read_text())
        assert check["warm"]["responses"] == check["rl"]["responses"] == 5 * 4 * 2
    blocks = report.split("\n\n")
    # the claims first: four verdict sentences, measured from these runs (claims.json)
    assert blocks[0] == "## The paper's claims, as measured"
    assert [b.split(":**")[0] for b in blocks[1:5]] == [
        "**RL vs SFT at matched ID gain", "**Forgetting and KL", "**Length and the seed",
        "**Reflection and length"]
    measured = json.loads((qs / "claims.json").read_text())
    points = json.loads((qs / "pareto.json").read_text())
    for key, fn in (("frontier", claims.frontier), ("kl_or_method", claims.kl_or_method)):
        assert measured[key] == json.loads(json.dumps(fn(points)))
    assert measured["kl_or_method"]["points"] == 16  # 2 methods x 2 lrs x 2 steps x 2 seeds
    assert set(measured["trajectories"]) == {"0", "1"}  # the long arm's 20 steps per seed
    assert all(len(t) == 20 for t in measured["trajectories"].values())
    assert measured["length"]["blocks"] == 4  # the last half: two blocks of 5 steps a seed
    long_rows = read_jsonl(qs / "seed0" / "rl-long" / "dynamics.jsonl")
    assert sorted({r["step"] for r in long_rows}) == list(range(2, 21, 2))
    # the long arm starts from a warm start of its own, half of its solutions the answer
    # alone, scored at its last checkpoint only
    terse = json.loads((qs / "seed0" / "warm-terse" / "train_config.json").read_text())
    assert (terse["name"], terse["terse"], terse["seed"]) == ("warm-start-terse", 0.5, 0)
    assert {r["step"] for r in read_jsonl(qs / "seed0" / "warm-terse" / "dynamics.jsonl")
            } == {30}
    long_cfg = json.loads((qs / "seed0" / "rl-long" / "train_config.json").read_text())
    assert long_cfg["model"] == str(qs / "seed0" / "warm-terse" / "checkpoint-000030")
    assert long_cfg["optim"]["lr"] == 2e-3
    assert measured["long_setting"] == {"lr": 2e-3, "terse": 0.5}
    assert "from a warm start in which 50% of the solutions are the answer alone" in blocks[3]
    assert {(r["name"], r["seed"], r["step"]) for r in measured["reflection_by_checkpoint"]} >= {
        ("rl-arm-long", 1000 + seed, step) for seed in (0, 1) for step in range(2, 21, 2)}
    assert blocks[1:5] == claims.sentences(measured)  # the sentences are claims.json's
    assert "not measured" not in blocks[3]
    with Image.open(qs / "claims.png") as im:
        assert im.width > 1200
    lines = blocks[blocks.index("## The stages") + 1].splitlines()
    assert [ln.split("|")[1].strip() for ln in lines[2:]] == [
        "untrained", "SFT warm start", "+ SFT arm", "+ RL arm",
        "always the most common answer"]
    assert lines[3].split("|")[2].strip() == "2"  # two seeds behind the warm-start row
    assert "±" in lines[3] and "±" in lines[5].split("|")[8]  # the RL arm's KL over seeds
    assert (qs / "summary.md").read_text().strip() == report
    assert "over seeds" in report and "[ood average]" in report and "McNemar" in report
    for png in ("dynamics.png", "warm_dynamics.png"):
        with Image.open(qs / png) as im:
            assert im.width > 600
    with Image.open(qs / "pareto.png") as im:
        assert im.width > 600
    points = json.loads((qs / "pareto.json").read_text())
    assert {(p["arm"], p["step"]) for p in points} == {
        (a, s) for a in ("sft-arm", "rl-arm", "sft-arm-lr0.001", "rl-arm-lr0.001")
        for s in (3, 6)}
    # a second run finds everything done and trains nothing more
    before = (qs / "seed0" / "rl" / "train_log.jsonl").read_text()
    assert run(cfg) == report
    assert (qs / "seed0" / "rl" / "train_log.jsonl").read_text() == before
    # the dynamics command plots any set of training runs
    capsys.readouterr()
    assert main(["dynamics", str(qs / "seed0" / "warm"), str(qs / "seed1" / "warm"),
                 "--out", str(tmp_path / "d.png")]) == 0
    assert (tmp_path / "d.png").stat().st_size > 1000
    assert main(["dynamics", str(tmp_path)]) == 2


def test_summary_renders_the_leaderboard_rows_of_each_final_stage(tmp_path):
    """The summary holds the leaderboard's own cells (one source for both tables), the
    ID - OOD gap per seed, and the most-common-answer row."""
    root = tmp_path / "results"
    untrained = tmp_path / "model-x"
    untrained.mkdir()
    scripted_eval(untrained, root, first(0), first(0))
    right = {0: (10, 4), 1: (14, 2)}  # (ID, OOD) right answers of 20, per seed
    for seed, (i, o) in right.items():
        for step in (5, 10):  # only the last step is a stage's final checkpoint
            k = i if step == 10 else 0
            scripted_eval(checkpoint(tmp_path, "warm-start", step, seed), root, first(k),
                          first(o), reflect_wrong=True)
    board = leaderboard.build(root)
    table = summary_table(board, "model-x", preset="greedy")
    lines = table.splitlines()
    assert [ln.split("|")[1].strip() for ln in lines[2:]] == [
        "untrained", "SFT warm start", "always the most common answer"]
    warm = [c.strip() for c in lines[3].split("|")]
    row = next(r for r in board.rows if (r.name, r.step) == ("warm-start", 10))
    # ID 50% and 70%; OOD 20% and 10%; gaps 30 and 60 points
    assert warm[1:6] == ["SFT warm start", "2", "60.0 ± 14.1", "15.0 ± 7.1", "45.0 ± 21.2"]
    assert warm[6] == f"{row.cells['length'].mean:.1f} ± {row.cells['length'].std:.1f}"
    assert warm[7] == (f"{100 * row.cells['reflection'].mean:.1f} ± "
                       f"{100 * row.cells['reflection'].std:.1f}")
    base = [c.strip() for c in lines[-1].split("|")]
    assert base[3] == f"{100 * board.baseline['ID avg']:.1f}"
    assert base[4] == f"{100 * board.baseline['OOD avg']:.1f}"


def test_a_markdown_report_reads_in_a_terminal():
    md = "## Title\n\nSome **bold**.\n\n| a | b |\n|---|--:|\n| x \\| y | **1** |\n\n![f](f.png)\n"
    assert for_terminal(md) == "Title\n\nSome bold.\n\na      b\n--------\nx | y  1"

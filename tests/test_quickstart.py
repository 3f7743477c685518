import csv

import pytest
from PIL import Image

from harness.cli import main
from harness.store import append_jsonl, read_jsonl
from trainers.common import EvalSettings
from trainers.quickstart import QuickstartConfig, run, summary_table


@pytest.mark.slow
def test_quickstart_end_to_end_small_budget(tmp_path, capsys):
    cfg = QuickstartConfig(out=str(tmp_path / "qs"), size="tiny", tasks="count_shapes",
                           seeds=(0, 1), warm_steps=30,
                           warm_lr=3e-3, arm_steps=2, prompts=4, group_size=2,
                           eval=EvalSettings(id_tasks="count_shapes,digit_sum",
                                             ood_tasks="bar_chart", limit=4,
                                             max_new_tokens=24))
    table = run(cfg)
    qs = tmp_path / "qs"
    for seed in (0, 1):
        for stage, last in (("warm", 30), ("sft", 2), ("rl", 2)):
            rows = read_jsonl(qs / f"seed{seed}" / stage / "dynamics.jsonl")
            assert max(r["step"] for r in rows) == last
            assert {r["task"] for r in rows} == {"count_shapes", "digit_sum", "bar_chart"}
            assert (qs / f"seed{seed}" / stage / f"checkpoint-{last:06d}" / "config.json").exists()
    lines = table.splitlines()
    assert [ln.split("|")[1].strip() for ln in lines[2:]] == [
        "untrained", "SFT warm start", "+ SFT arm", "+ RL arm",
        "always the most common answer"]
    assert lines[3].split("|")[2].strip() == "2"  # two seeds behind the warm-start row
    assert "±" in lines[3]
    assert (qs / "summary.md").read_text().strip() == table
    # the summary and the leaderboard agree on the final warm start's ID average, length
    # and reflection ratio (means over seeds; length and reflection over all tasks)
    with open(qs / "leaderboard" / "leaderboard.csv") as f:
        warm = next(r for r in csv.DictReader(f) if (r["name"], r["step"]) == ("warm-start", "30"))
    cells = [c.strip().split(" ±")[0] for c in lines[3].split("|")]
    assert cells[3] == f"{100 * float(warm['ID avg']):.1f}"
    assert cells[6] == f"{float(warm['length']):.1f}"
    assert cells[7] == f"{100 * float(warm['reflection']):.1f}"
    with Image.open(qs / "dynamics.png") as im:
        assert im.width > 600
    # a second run finds everything done and trains nothing more
    before = (qs / "seed0" / "rl" / "train_log.jsonl").read_text()
    assert run(cfg) == table
    assert (qs / "seed0" / "rl" / "train_log.jsonl").read_text() == before
    # the dynamics command plots any set of training runs
    capsys.readouterr()
    assert main(["dynamics", str(qs / "seed0" / "warm"), str(qs / "seed1" / "warm"),
                 "--out", str(tmp_path / "d.png")]) == 0
    assert (tmp_path / "d.png").stat().st_size > 1000
    assert main(["dynamics", str(tmp_path)]) == 2


def test_summary_means_length_and_reflection_over_all_tasks(tmp_path):
    """ID and OOD accuracy are macro averages per domain; length and reflection are means
    over all tasks (the leaderboard's definition), not a mean of the two domain means."""
    def stage(name, tasks):
        run = tmp_path / name
        run.mkdir()
        append_jsonl(run / "dynamics.jsonl", [
            {"step": step, "task": t, "domain": dom, "acc": acc, "majority_baseline": 0.25,
             "length_mean": length + step, "reflection_ratio": refl}
            for step in (0, 10) for t, dom, acc, length, refl in tasks])
        return run

    tasks = [("a", "id", 0.5, 0, 0.0), ("b", "id", 1.0, 10, 0.5), ("c", "ood", 0.25, 50, 1.0)]
    table = summary_table([stage("untrained", tasks), stage("warm", tasks)])
    warm = [c.strip() for c in table.splitlines()[3].split("|")]
    # final step 10: lengths 10, 20, 60 -> 30.0; reflection 0, 0.5, 1 -> 50%
    assert warm[1:8] == ["SFT warm start", "1", "75.0", "25.0", "50.0", "30.0", "50.0"]

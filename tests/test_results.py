"""The results store, the leaderboard, paired comparison and the analysis report, on runs
made by the real runner with scripted models whose accuracy is known exactly."""

import csv
import gzip
import json
import math
import subprocess
import sys

import pytest
from scipy.stats import binomtest
from scipy.stats import t as student_t

from harness import stats
from harness.reports import claims as analysis
from harness.reports import compare, leaderboard
from harness.runs.index import index
from harness.runs.store import read_jsonl
from helpers import N, checkpoint, first, scripted_eval
from vrbench.cli import main
from vrbench.errors import VrbenchError


def test_index_reads_names_steps_and_seeds_from_checkpoints(tmp_path):
    root = tmp_path / "results"
    for seed in (0, 1):
        for step in (10, 20):
            scripted_eval(checkpoint(tmp_path, "arm", step, seed), root, first(step // 2))
    entries = index(root)
    assert [(e.name, e.step, e.seed) for e in entries] == [
        ("arm", 10, 0), ("arm", 10, 1), ("arm", 20, 0), ("arm", 20, 1)]
    assert all(e.trainer == "sft" and e.preset == "greedy" for e in entries)
    assert entries[2].results["count_shapes"]["acc"] == 10 / N
    # a damaged results.json is named and left out; the others stay listed
    (entries[0].run_dir / "results.json").write_text("{")
    assert len(index(root)) == 3


def test_leaderboard_aggregates_seeds_with_a_t_interval(tmp_path):
    root = tmp_path / "results"
    accs = {0: 10, 1: 5, 2: 15}  # right answers of 20 per seed
    for seed, k in accs.items():
        scripted_eval(checkpoint(tmp_path, "arm", 40, seed), root, first(k), first(k // 5))
    board = leaderboard.build(root)
    (row,) = board.rows
    assert (row.name, row.step, row.seeds) == ("arm", 40, [0, 1, 2])
    cell = row.cells["count_shapes"]
    xs = [k / N for k in accs.values()]
    mean, sd = sum(xs) / 3, math.sqrt(sum((x - 0.5) ** 2 for x in xs) / 2)
    assert cell.mean == pytest.approx(mean) and cell.std == pytest.approx(sd)
    half = student_t.ppf(0.975, 2) * sd / math.sqrt(3)
    assert cell.ci == pytest.approx((max(0, mean - half), min(1, mean + half)))  # (0, 1)
    ood = row.cells["OOD avg"]
    assert ood.mean == pytest.approx(sum(k // 5 for k in accs.values()) / 60)
    # 0.10 +- t(2) * 0.05 / sqrt(3): -0.02 to 0.22, and an accuracy's interval stops at 0
    assert ood.ci == pytest.approx((0.0, 0.1 + student_t.ppf(0.975, 2) * 0.05 / math.sqrt(3)))
    assert board.columns == ["count_shapes", "ID avg", "count_shapes.shape1", "OOD avg",
                             "length", "reflection"]


def test_leaderboard_marks_the_best_and_the_not_significantly_worse(tmp_path):
    root = tmp_path / "results"
    for name, k in (("a", 18), ("b", 5), ("c", 16)):
        scripted_eval(checkpoint(tmp_path, name, 10, 0), root, first(k))
    rows = {r.name: r for r in leaderboard.build(root).rows}
    cells = {n: rows[n].cells["count_shapes"] for n in "abc"}
    assert cells["a"].best and not cells["b"].best and not cells["c"].best
    se = {n: math.sqrt(stats.agresti_coull_var(k / N, N)) for n, k in (("a", 18), ("b", 5),
                                                                      ("c", 16))}
    # by hand: 0.9 vs 0.8 is within 1.96 joint standard errors, 0.9 vs 0.25 is not
    assert stats.Z95 * math.hypot(se["a"], se["c"]) > 0.1 and cells["c"].tied
    assert stats.Z95 * math.hypot(se["a"], se["b"]) < 0.65 and not cells["b"].tied
    # one seed: the task cell's interval is the Wilson interval
    assert cells["b"].ci == pytest.approx(stats.wilson_interval(5, N))


def test_leaderboard_command_writes_traceable_tables(tmp_path, capsys):
    root, out = tmp_path / "results", tmp_path / "board"
    for step, k in ((10, 4), (20, 12)):
        for seed in (0, 1):
            scripted_eval(checkpoint(tmp_path, "rl-arm", step, seed, "rl"), root, first(k + seed),
                  first(k // 2))
    assert main(["leaderboard", "--root", str(root), "--out", str(out)]) == 0
    md = (out / "README.md").read_text()
    assert "| rl-arm @ 20 | greedy | 20 samples, 256 tokens | 2 | **62.5 ± 3.5** |" in md
    assert leaderboard.md("--root " + str(root)) in md
    assert "![ID and OOD accuracy](leaderboard.png)" in md
    rows = list(csv.DictReader((out / "leaderboard.csv").read_text().splitlines()))
    assert [r["step"] for r in rows] == ["10", "20"]
    assert float(rows[1]["count_shapes"]) == pytest.approx(0.625)
    assert rows[1]["count_shapes best"] == "1" and rows[0]["count_shapes best"] == "0"
    for r in rows:  # every number leads back to runs that hold its samples
        runs = r["runs"].split(";")
        assert len(runs) == 4
        for run in runs:
            assert (root / run / "samples.jsonl").is_file()
    # a bundle carries those runs inside the published folder, the responses gzipped, and
    # every command reads it as it reads the runs themselves
    assert main(["leaderboard", "--root", str(root), "--out", str(out), "--bundle"]) == 0
    rows = list(csv.DictReader((out / "leaderboard.csv").read_text().splitlines()))
    for run in rows[1]["runs"].split(";"):
        assert run.startswith("runs/")
        original = root / run.removeprefix("runs/") / "samples.jsonl"
        assert gzip.decompress((out / run / "samples.jsonl.gz").read_bytes()) == (
            original.read_bytes())
        assert not (out / run / "samples.jsonl").exists()
        assert read_jsonl(out / run / "samples.jsonl") == read_jsonl(original)
    capsys.readouterr()
    assert main(["compare", str(original.parent), str(out / run), "--json"]) == 0
    assert all(r["diff"] == 0 and r["n"] > 0 for r in json.loads(capsys.readouterr().out))
    assert main(["leaderboard", "--root", str(out / "runs"), "--out", str(tmp_path / "again")]
                ) == 0
    assert "Regenerate: <code>vrbench leaderboard --root" in (out / "README.md").read_text()
    # mean and max over checkpoints, as in the paper's tables
    assert "| rl-arm | greedy | 2 | 42.5 | 62.5 |" in md
    page = (out / "index.html").read_text()
    assert "data:image/png;base64," in page and page.count("<tr>") == 3
    assert (out / "leaderboard.png").stat().st_size > 1000


def test_leaderboard_on_an_empty_root_is_one_sentence(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["leaderboard", "--root", str(tmp_path / "empty")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"vrbench: error: no finished runs under {tmp_path / 'empty'}.")
    assert main(["leaderboard", "--root", str(tmp_path / "missing")]) == 2


def test_mcnemar_and_bootstrap_on_hand_computed_cases():
    import numpy as np
    a = np.array([1, 1, 1, 1, 1, 1, 0, 0, 1, 0])
    b = np.array([0, 0, 0, 0, 0, 0, 0, 0, 1, 0])
    assert compare.mcnemar_exact(a, b) == (6, 0, pytest.approx(2 * 0.5 ** 6))
    assert compare.mcnemar_exact(a, b)[2] == pytest.approx(binomtest(6, 6, 0.5).pvalue)
    diff, (lo, hi), p = compare.paired_bootstrap([a], [b], n_boot=4000)
    # b - a is -1 on 6 of 10 pairs: a resample holds Binomial(10, 0.6) of them, whose 2.5%
    # and 97.5% quantiles are 3 and 9
    assert diff == pytest.approx(-0.6) and (lo, hi) == pytest.approx((-0.9, -0.3))
    assert p < 0.01
    same = compare.paired_bootstrap([a], [a.copy()], n_boot=500)
    assert same == (0.0, (0.0, 0.0), 1.0)
    # strata: the macro difference is the mean of the per-stratum differences
    diff, _, _ = compare.paired_bootstrap([a, a], [b, a], n_boot=100)
    assert diff == pytest.approx(-0.3)


def test_compare_two_runs_pairs_their_samples(tmp_path, capsys):
    root = tmp_path / "results"
    (ra,) = scripted_eval(checkpoint(tmp_path, "a", 1, 0), root, first(4))
    (rb,) = scripted_eval(checkpoint(tmp_path, "b", 1, 0), root, first(14))
    assert main(["compare", ra["run_dir"], rb["run_dir"], "--json", "--bootstrap", "2000"]) == 0
    rows = json.loads(capsys.readouterr().out)
    task, avg = rows
    assert task["label"] == "count_shapes" and task["n"] == N
    assert task["diff"] == pytest.approx(0.5)
    assert task["mcnemar"] == {"a_only": 0, "b_only": 10,
                               "p": pytest.approx(binomtest(0, 10, 0.5).pvalue)}
    assert avg["label"] == "[id average]" and avg["diff"] == pytest.approx(0.5)
    (other,) = scripted_eval(checkpoint(tmp_path, "c", 1, 0), tmp_path / "elsewhere", None,
                             first(3))
    assert main(["compare", ra["run_dir"], other["run_dir"]]) == 2
    assert "share no samples" in capsys.readouterr().err


def test_compare_over_seeds_pools_the_pairs_as_strata(tmp_path, capsys):
    root = tmp_path / "results"
    runs = {(arm, seed): scripted_eval(checkpoint(tmp_path, arm, 1, seed), root, first(k),
                                       first(k // 2))
            for (arm, seed), k in ((("sft", 0), 4), (("rl", 0), 14), (("sft", 1), 10),
                                   (("rl", 1), 12))}
    a = [runs["sft", s][i]["run_dir"] for s in (0, 1) for i in (0,)]
    b = [runs["rl", s][i]["run_dir"] for s in (0, 1) for i in (0,)]
    rows = {c.label: c for c in compare.compare(a, b, n_boot=2000)}
    # the mean over seeds of the per-seed differences: (10 + 2) / 2 of 20
    assert rows["count_shapes"].diff == pytest.approx(0.3)
    assert rows["count_shapes"].n == 2 * N
    # McNemar on the discordant pairs of both seeds: B alone right on 10 + 2 samples
    assert rows["count_shapes"].mcnemar == (0, 12, pytest.approx(
        binomtest(0, 12, 0.5).pvalue))
    assert rows["[id average]"].mcnemar == rows["count_shapes"].mcnemar  # one task: the same
    ood = [runs[arm, s][1]["run_dir"] for s in (0, 1) for arm in ("sft", "rl")]
    assert main(["compare", *ood, "--json", "--bootstrap", "500"]) == 0
    labels = [r["label"] for r in json.loads(capsys.readouterr().out)]
    assert labels == ["count_shapes.shape1", "[ood average]"]
    assert main(["compare", *ood[:3]]) == 2
    assert "in pairs" in capsys.readouterr().err


def test_spearman_interval_matches_fishers_z_by_hand():
    lo, hi = stats.spearman_ci(0.5, 103)
    se = math.sqrt((1 + 0.125) / 100)
    assert (lo, hi) == pytest.approx((math.tanh(math.atanh(0.5) - stats.Z95 * se),
                                      math.tanh(math.atanh(0.5) + stats.Z95 * se)))
    assert stats.spearman_ci(0.5, 3) is None


def test_analysis_report_seeds_reflection_and_generalisation(tmp_path, capsys):
    root = tmp_path / "results"
    for seed in (0, 1):
        warm = checkpoint(tmp_path, "warm", 100, seed)
        scripted_eval(warm, root, first(10), first(4))
        # the RL arm gains on OOD, the SFT arm on ID; wrong answers ramble and reflect
        scripted_eval(checkpoint(tmp_path, "rl-arm", 20, seed, "rl", warm), root, first(10 + seed),
              first(8 + 2 * seed), reflect_wrong=True)
        scripted_eval(checkpoint(tmp_path, "sft-arm", 20, seed, "sft", warm), root, first(14),
              first(4 + seed))
    assert main(["analyze", str(root), "--out", str(tmp_path / "report")]) == 0
    md = (tmp_path / "report" / "analysis.md").read_text()
    # generalisation: change from the warm start, paired by seed, mean ± std in points
    assert "| rl-arm | rl | 20 | greedy | 2 | +7.5 ± 3.5 | +2.5 ± 3.5 | +25.0 ± 7.1 |" in md
    assert "| sft-arm | sft | 20 | greedy | 2 | +47.5 ± 3.5 | +20.0 ± 0.0 | +2.5 ± 3.5 |" in md
    # seed sensitivity of the RL arm's ID accuracy: 50% and 55%
    assert "| rl-arm | 20 | greedy | 2 |" in md and "52.5 ± 3.5 | 0.067 |" in md
    # reflection: only the RL arm's wrong answers reflect, and they are longer (within task,
    # as the verdict measures it)
    rows = [r for r in analysis.reflection_by_checkpoint(index(root)) if r["name"] == "rl-arm"]
    assert [r["seed"] for r in rows] == [0, 1]
    for r, wrong in zip(rows, (10 + 12, 9 + 10), strict=True):  # of 20 + 20 responses
        assert r["reflective"] == pytest.approx(wrong / 40)
        assert r["length_gap"] > 10 and r["rho"] > 0.5
        assert f"| rl-arm | {r['seed']} | 20 | greedy | 40 |" in md
    assert "**Reflection and length:** within task" in md
    assert (tmp_path / "report" / "seeds_and_reflection.png").stat().st_size > 1000


def test_concurrent_evals_into_one_root_lose_nothing(tmp_path, tiny_model):
    """Three `vrbench eval` processes at once: two different runs, and one of them twice
    (the same run directory: the second waits for the lock, then finds the work done)."""
    root = tmp_path / "results"
    base = [sys.executable, "-m", "vrbench", "eval", "--model", tiny_model, "--root",
            str(root), "--limit", "6", "--max-new-tokens", "8", "--no-progress"]
    procs = [subprocess.Popen(base + ["--tasks", t], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for t in ("count_shapes", "bar_chart",
                                                                "count_shapes")]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()[-2000:]
    entries = index(root)
    assert sorted(next(iter(e.tasks)) for e in entries) == ["bar_chart", "count_shapes"]
    for e in entries:
        recs = read_jsonl(e.run_dir / "samples.jsonl")
        assert len(recs) == 6 and len({r["doc_id"] for r in recs}) == 6


def test_index_of_a_missing_root_is_an_error(tmp_path):
    with pytest.raises(VrbenchError, match="does not exist"):
        index(tmp_path / "nope")

"""The published leaderboard (`make leaderboard`) is traceable, current, and shows what its
README claims: every run behind its numbers is in the repository, made from today's task
definitions; at the warm start every OOD-macro task is off the floor (above its
most-common-answer baseline) and below its source; the RL arm ends above the warm start in
domain on every seed."""

import json
import re
from pathlib import Path

import pytest

import tasks
from harness.reports import claims, compare
from harness.runs.index import checkpoint_results, index
from harness.runs.metrics import summarize_groups
from harness.runs.store import read_jsonl
from tasks import shifts

BOARD = Path(__file__).resolve().parents[1] / "leaderboard"
ENTRIES = index(BOARD / "runs")


def _final(name: str, split: str) -> dict[str, object]:
    """The quickstart's seed folder (seed0, ...) -> the entry of the stage's last checkpoint
    on `split` (an arm's own seed is the warm start's plus 1000)."""
    rows = [e for e in ENTRIES if e.name == name and e.split == split and e.preset == "greedy"]
    last = max(e.step for e in rows)
    return {e.run_dir.relative_to(BOARD / "runs").parts[0]: e for e in rows if e.step == last}


def test_every_run_the_leaderboard_names_is_bundled_with_its_samples():
    text = (BOARD / "README.md").read_text()
    named = re.findall(r"<code>(runs/[^<]+)</code>", text)
    assert len(named) >= 20
    for run in named:
        assert (BOARD / run / "results.json").is_file(), run
        assert read_jsonl(BOARD / run / "samples.jsonl"), run  # read from samples.jsonl.gz
    assert sum(f.stat().st_size for f in (BOARD / "runs").rglob("*") if f.is_file()) < 20e6


def test_the_bundled_runs_use_todays_task_definitions():
    for e in ENTRIES:
        for name, t in e.tasks.items():
            assert t["version"] == tasks.load(name).version, (e.run_dir, name)
            assert t["domain"] == tasks.load(name).domain, (e.run_dir, name)


def test_at_the_warm_start_every_ood_macro_task_is_off_the_floor_and_below_its_source():
    ood, iid = _final("warm-start", "test")["seed0"], _final("warm-start", "validation")["seed0"]
    assert set(ood.results) >= set(shifts.MACRO)
    for name in shifts.MACRO:
        r = ood.results[name]
        source = iid.results[shifts.parse(name)[0]]
        assert r["n_samples"] >= 200
        assert r["majority_baseline"] < r["acc"] < source["acc"], name


def test_the_rl_arm_ends_above_the_warm_start_in_domain_on_every_seed():
    warm, arm = _final("warm-start", "validation"), _final("rl-arm", "validation")
    assert len(arm) >= 3 and set(arm) == set(warm)
    for seed in arm:
        (row,) = [c for c in compare.compare(warm[seed].run_dir, arm[seed].run_dir)
                  if c.label == "[id average]"]
        assert row.acc_b > row.acc_a, seed


@pytest.mark.parametrize("split", ["validation", "test"])
def test_final_checkpoints_are_scored_on_200_samples_per_task(split):
    for name in ("warm-start", "sft-arm", "rl-arm"):
        for e in _final(name, split).values():
            assert {r["n_samples"] for r in e.results.values()} == {200}, e.run_dir


def test_the_rl_arm_ends_above_the_warm_start_in_training_reward_on_every_seed():
    checks = json.loads((BOARD / "per_seed.json").read_text())["reward_check"]
    assert len(checks) >= 3
    for seed, c in checks.items():
        assert c["rl"]["reward"] > c["warm"]["reward"], seed


def _rounded(obj):
    """Floats to 9 significant digits, all the way down (the same runs on another machine's
    BLAS may differ in the last bits)."""
    if isinstance(obj, float):
        return float(f"{obj:.9g}")
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_rounded(v) for v in obj]
    return obj


def _bundled_long_logs() -> dict[int, list[dict]]:
    return {int(p.parts[-3].removeprefix("seed")): read_jsonl(p)
            for p in sorted((BOARD / "runs").glob("seed*/rl-long/train_log.jsonl"))}


def test_the_pareto_points_are_the_bundled_runs_accuracies():
    """pareto.json (the frontier's input): each arm checkpoint's ID and OOD macro change from
    its seed's warm start, as the bundled evaluation runs score them."""
    def macros(name: str, seed: int, step: int) -> dict[str, float]:
        es = [e for e in ENTRIES if e.name == name and e.seed == seed and e.step == step
              and e.preset == "greedy"]
        res, _ = checkpoint_results(es)
        groups = summarize_groups({t: r for t, (r, _) in res.items()},
                                  {t: d for t, (_, d) in res.items()})
        return {d: g["acc"] for d, g in groups.items()}

    points = json.loads((BOARD / "pareto.json").read_text())
    assert len({(p["trainer"], p["lr"]) for p in points}) >= 6  # 3 learning rates a method
    warm_step = max(e.step for e in ENTRIES if e.name == "warm-start")
    for p in points:
        start = macros("warm-start", p["seed"], warm_step)
        here = macros(p["arm"], 1000 + p["seed"], p["step"])
        assert p["id_gain"] == pytest.approx(100 * (here["id"] - start["id"]), abs=1e-9)
        assert p["ood_change"] == pytest.approx(100 * (here["ood"] - start["ood"]), abs=1e-9)


def test_the_published_verdicts_are_measured_from_the_bundled_runs():
    """claims.json and the verdict sentences of summary.md and the README recomputed from
    pareto.json, the long RL arm's bundled training logs and the bundled evaluation runs."""
    points = json.loads((BOARD / "pareto.json").read_text())
    logs = _bundled_long_logs()
    assert len(logs) >= 3 and all(len(rows) >= 200 for rows in logs.values())
    published = json.loads((BOARD / "claims.json").read_text())
    measured = claims.measure(points, logs, ENTRIES, setting=published.get("long_setting"))
    assert _rounded(json.loads(json.dumps(measured))) == _rounded(published)
    summary = (BOARD / "summary.md").read_text()
    readme = (BOARD.parent / "README.md").read_text()
    for sentence in claims.sentences(published):
        assert sentence in summary
        assert sentence in readme


def test_the_long_arms_setting_is_that_of_its_bundled_runs():
    """claims.json names the long RL arm's learning rate and its warm start's share of
    answer-alone solutions as the bundled training configs have them."""
    setting = json.loads((BOARD / "claims.json").read_text())["long_setting"]
    seeds = sorted((BOARD / "runs").glob("seed*"))
    assert len(seeds) >= 3
    for seed in seeds:
        rl = json.loads((seed / "rl-long" / "train_config.json").read_text())
        warm = json.loads((seed / "warm-terse" / "train_config.json").read_text())
        assert (rl["optim"]["lr"], warm["terse"]) == (setting["lr"], setting["terse"])
        assert Path(rl["model"]).parent == Path(warm["out"])  # it starts from that warm start

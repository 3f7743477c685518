"""The claims' tests find what was put in, in either direction, and say so in one sentence."""

import math

import numpy as np
import pytest
from scipy.stats import f_oneway

from harness.reports import claims


def _points(rl_slope: float, sft_slope: float, seeds=(0, 1, 2), noise=0.3, kl_slope=None):
    """Arm checkpoints at three learning rates and four steps: OOD change = slope x ID gain
    (+ noise); KL grows with the gain (or, with `kl_slope`, the OOD change is KL's)."""
    rng = np.random.default_rng(1)
    out = []
    for seed in seeds:
        for trainer, slope in (("rl", rl_slope), ("sft", sft_slope)):
            for lr in (1e-5, 3e-5, 1e-4):
                for step in (10, 20, 30, 40):
                    gain = step / 40 * lr * 4e4 + rng.normal(0, 0.3)
                    kl = gain / 10 * (1 + rng.uniform())
                    ood = (kl_slope * kl if kl_slope is not None else slope * gain)
                    out.append({"seed": seed, "trainer": trainer, "lr": lr, "step": step,
                                "id_gain": gain, "ood_change": ood + rng.normal(0, noise),
                                "kl": kl})
    return out


def test_local_linear_reproduces_a_line_exactly():
    x = np.linspace(0, 5, 30)
    at = np.array([0.5, 2.0, 4.9])
    assert claims._local_linear(x, 3 - 2 * x, at, 0.7) == pytest.approx(3 - 2 * at)


@pytest.mark.parametrize(("rl", "sft", "sign"), [(-0.1, -0.6, 1), (-0.6, -0.1, -1),
                                                 (-0.3, -0.3, 0)])
def test_frontier_finds_which_method_forgets_less_at_equal_gain(rl, sft, sign):
    front = claims.frontier(_points(rl, sft), boot=400)
    grid = np.array(front["grid"])
    # the fits follow the slopes put in (the noise is small against the gains)
    assert np.array(front["rl"]) == pytest.approx(rl * grid, abs=0.6)
    assert np.array(front["sft"]) == pytest.approx(sft * grid, abs=0.6)
    lo, hi = front["mean_diff_ci95"]
    assert lo <= front["mean_diff"] <= hi
    assert (lo > 0, hi < 0) == (sign > 0, sign < 0)
    assert front["lrs"]["rl"] == [1e-5, 3e-5, 1e-4] and front["points"] == {"rl": 36, "sft": 36}
    text = claims.sentences({"frontier": front})[0]
    assert {1: "keeps more OOD", -1: "keeps less OOD", 0: "keeps no more"}[sign] in text
    # the same draws give the same figures
    assert claims.frontier(_points(rl, sft), boot=400) == front


def test_frontier_needs_both_methods_and_two_seeds():
    assert claims.frontier(_points(-0.1, -0.5, seeds=(0,))) is None
    assert claims.frontier([p for p in _points(-0.1, -0.5) if p["trainer"] == "rl"]) is None
    assert "not measured" in claims.sentences({})[0]


def test_kl_explains_forgetting_when_the_change_is_kls_whatever_the_method():
    klm = claims.kl_or_method(_points(0, 0, kl_slope=-8.0, noise=0.1), boot=300)
    assert klm["r2_kl"] > 0.9 and klm["r2_method"] < 0.1
    assert klm["r2_diff_ci95"][0] > 0 and klm["spearman"] < -0.8
    assert "predicts the OOD change better than the method" in claims.sentences(
        {"kl_or_method": klm})[1]
    # and the method, when the methods stand apart whatever the KL
    points = [p | {"ood_change": p["ood_change"] + (2 if p["trainer"] == "rl" else -2)}
              for p in _points(0.0, 0.0, noise=0.5)]
    klm = claims.kl_or_method(points, boot=300)
    assert klm["r2_method"] > 0.8 > 0.1 > klm["r2_kl"] and klm["r2_diff_ci95"][1] < 0
    assert "worse than the method" in claims.sentences({"kl_or_method": klm})[1]


def _trajectories(offsets, noise=2.0, steps=200):
    rng = np.random.default_rng(2)
    return {s: [(t, 30 + off + rng.normal(0, noise)) for t in range(1, steps + 1)]
            for s, off in enumerate(offsets)}


def test_length_and_seed_is_a_one_way_anova_on_block_means():
    traj = _trajectories([0, 6, 12])
    out = claims.length_and_seed(traj)
    blocks = [[np.mean([v for t, v in tr if t > 100][i:i + 10]) for i in range(0, 100, 10)]
              for tr in traj.values()]
    assert out["f"] == pytest.approx(f_oneway(*blocks).statistic)
    assert out["p"] == pytest.approx(f_oneway(*blocks).pvalue)
    assert out["blocks"] == 30 and out["seeds"] == 3
    assert out["icc"] > 0.9 and out["icc_ci95"][0] > 0.5 and out["p"] < 1e-6
    assert out["per_seed"][2]["window"] == pytest.approx(42, abs=1)
    assert "the seed moves length more" in claims.sentences({"length": out})[2]
    same = claims.length_and_seed(_trajectories([0, 0, 0]))
    assert same["icc_ci95"][0] < 0 < same["icc_ci95"][1] and same["p"] > 0.05
    assert "not distinguishable" in claims.sentences({"length": same})[2]
    assert claims.length_and_seed(_trajectories([0], steps=200)) is None
    assert claims.length_and_seed(_trajectories([0, 5], steps=15)) is None


def test_combined_correlation_weights_by_inverse_variance():
    rho, (lo, hi) = claims._combined([(0.5, 103), (0.5, 53), (0.9999999, 3)])
    assert rho == pytest.approx(0.5) and lo < 0.5 < hi
    w = [100 / 1.125, 50 / 1.125]
    assert math.atanh(hi) - math.atanh(0.5) == pytest.approx(1.959963984540054 / math.sqrt(
        sum(w)))
    assert claims._combined([(0.3, 3)]) is None


def test_reflection_trend_counts_and_orders():
    rows = [{"name": "rl", "seed": 0, "step": s, "rho": r, "rho_ci95": (r - 0.1, r + 0.1),
             "length": ln, "reflective": f, "length_gap": 10.0}
            for s, r, ln, f in ((10, 0.2, 30, 0.4), (20, 0.5, 28, 0.3), (30, 0.7, 25, 0.1))]
    rows += [{"name": "rl", "seed": 1, "step": s, "rho": None, "rho_ci95": None,
              "length": 24 + s / 10, "reflective": 0.0, "length_gap": None}
             for s in (10, 20, 30)]
    trend = claims.reflection_trend(rows)
    assert (trend["checkpoints"], trend["defined"], trend["positive"]) == (6, 3, 3)
    assert trend["trend"] == {"rl / seed 0": pytest.approx(1.0)}
    # seed 1 never reflects: its length cannot follow a constant share
    assert trend["follows"] == {"rl / seed 0": pytest.approx(1.0), "rl / seed 1": None}
    assert trend["length_gap_median"] == 10.0
    text = claims.sentences({"reflection": trend})[3]
    assert "at 3 of the 3 checkpoints" in text and "rises with the step in 1 of 1" in text
    assert "median +10.0 tokens" in text and "reflective responses in 1 of 1 runs" in text


def test_reflection_by_checkpoint_reads_the_responses_within_task(tmp_path):
    """Two tasks whose lengths differ: pooled, length would follow the task; within task the
    reflective responses are the longer ones."""
    import json

    from harness.runs.index import Entry
    from harness.runs.rundir import SampleRecord

    def rec(task, n, hits):
        return SampleRecord(task, f"{task}{n}", "1", resps=["..."], correct=[True], analysis=[
            {"n_tokens": n, "n_words": n, "reflection_hits": {"wait": hits} if hits else {},
             "has_reflection": bool(hits)}]).to_json()

    recs = [rec("a", 10 + i % 3 + 20 * (i % 2), i % 2) for i in range(20)]
    recs += [rec("b", 50 + i, 0) for i in range(10)]  # long, never reflective: undefined
    (tmp_path / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    entry = Entry(run_dir=tmp_path, name="rl", trainer="rl", step=5, epoch=None, seed=3,
                  model="m", model_sha256=None, preset="greedy", split="test", tasks={},
                  results={}, created=None)
    (row,) = claims.reflection_by_checkpoint([entry])
    assert (row["tasks"], row["tasks_defined"], row["responses"]) == (2, 1, 30)
    assert row["rho"] > 0.8 and row["rho_ci95"][0] > 0.5
    assert row["length_gap"] == pytest.approx(20.1)  # task a only: 20 + 1.0 - 0.9
    assert row["reflective"] == pytest.approx(10 / 30)

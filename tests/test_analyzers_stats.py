import math

import pytest
from scipy import stats as sps

from harness import analyzers, stats


def test_reflection_substring_vs_word_matching():
    text = "Waiting... let me verify. Yet another re-check, and I rethink it."
    sub = analyzers.reflection_hits(text, "substring")
    word = analyzers.reflection_hits(text, "word")
    assert sub["wait"] == 1 and word["wait"] == 0  # "waiting" counts only as a substring
    assert sub["verify"] == word["verify"] == 1
    assert sub["re-check"] == 1 and sub["recheck"] == 0
    assert sub["yet"] == 1 and sub["rethink"] == 1
    assert len(analyzers.REFLECTION_WORDS) == 15
    with pytest.raises(ValueError):
        analyzers.reflection_hits(text, "regex")


def test_analyze_one_response():
    a = analyzers.analyze("There are 3. Let me verify: 3. \\boxed{3}", n_tokens=12,
                          finish_reason="stop")
    assert a["has_reflection"] and a["reflection_hits"] == {"verify": 1}
    assert a["extractable"] and a["extraction"] == "boxed" and not a["truncated"]
    assert a["formatted"] and not analyzers.analyze("so 3")["formatted"]
    assert a["n_tokens"] == 12 and a["n_words"] == 8
    cut = analyzers.analyze("the the the the the the the the", 64, "length")
    assert cut["truncated"] and cut["repetition"] > 0.5


def test_the_five_reflection_ratios_by_hand():
    # 6 responses: (reflective, correct)
    pairs = [(1, 1), (1, 0), (1, 1), (0, 1), (0, 0), (0, 0)]
    r = analyzers.reflection_ratios([bool(a) for a, _ in pairs], [bool(b) for _, b in pairs])
    # N=6, N_ref=3, N+=3, N_ref+=2
    assert r["reflection_ratio"] == 3 / 6
    assert r["reflection_ratio_in_correct_answers"] == 2 / 3
    assert r["reflection_ratio_in_incorrect_answers"] == (3 - 2) / (6 - 3)
    assert r["correct_ratio_in_reflection_texts"] == 2 / 3
    assert r["correct_ratio_in_no_reflection_texts"] == (3 - 2) / (6 - 3)
    empty = analyzers.reflection_ratios([False, False], [False, False])
    assert empty["reflection_ratio_in_correct_answers"] is None


def test_aggregate_lengths_and_correlations():
    resp = []
    for i in range(10):
        text = "word " * (5 + i) + ("verify" if i >= 5 else "")
        resp.append(analyzers.analyze(text, n_tokens=5 + i, finish_reason="stop")
                    | {"correct": i % 2 == 0})
    agg = analyzers.summarize(resp)
    assert agg["length_mean"] == sum(range(5, 15)) / 10
    assert agg["length_median"] == 9.5 and agg["length_max"] == 14
    assert agg["reflection_ratio"] == 0.5 and agg["reflection_word_freq"] == {"verify": 0.5}
    lengths = [5 + i for i in range(10)]
    expected = sps.spearmanr(lengths, [i >= 5 for i in range(10)]).statistic
    assert agg["corr_length_reflection"] == pytest.approx(expected)
    assert agg["length_clip_ratio"] == 0.0


@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (10, 10), (57, 200)])
def test_wilson_matches_scipy(k, n):
    ref = sps.binomtest(k, n).proportion_ci(method="wilson")
    lo, hi = stats.wilson_interval(k, n)
    assert lo == pytest.approx(ref.low, abs=1e-9) and hi == pytest.approx(ref.high, abs=1e-9)


def test_accuracy_summary():
    s = stats.accuracy_summary([1, 0, 1, 1])
    assert s["acc"] == 0.75
    assert s["acc_stderr"] == pytest.approx(math.sqrt(0.25) / 2)
    assert s["acc_ci95"] == list(stats.wilson_interval(3, 4))
    frac = stats.accuracy_summary([0.5, 0.25, 1.0])  # fractional: a normal interval
    se = sps.sem([0.5, 0.25, 1.0])
    assert frac["acc_stderr"] == pytest.approx(se)
    # 0.583 +- 1.96 * 0.220, clipped at 1
    assert frac["acc_ci95"] == pytest.approx([0.5833333 - stats.Z95 * se, 1.0])
    assert stats.spearman([1, 1, 1], [1, 2, 3]) is None


def test_spearman_is_scipys_with_ties_and_without():
    import random
    rng = random.Random(0)
    for n in (3, 4, 10, 60):
        for _ in range(50):
            x = [rng.choice([0, 1, 2.5]) if rng.random() < 0.5 else rng.random() for _ in range(n)]
            y = [rng.randint(0, 2) if rng.random() < 0.5 else rng.gauss(0, 1) for _ in range(n)]
            ours = stats.spearman(x, y)
            if ours is not None:
                assert ours == sps.spearmanr(x, y).statistic  # the same float
    assert stats.ranks([3, 1, 3, 2]) == [3.5, 1.0, 3.5, 2.0]
    assert stats.spearman([1, 2, 3], [3, 2, 1]) == -1.0
    with pytest.raises(ValueError):
        stats.spearman([1, 2, 3], [1, 2])


def test_a_clustered_interval_is_the_ordinary_one_for_singletons():
    values = [1, 0, 1, 1, 0, 0, 1, 1, 1, 0]
    s = stats.clustered_summary(values, list(range(len(values))))
    assert s["acc_stderr"] == pytest.approx(stats.mean_stderr(values))
    assert s["acc_ci95_kind"] == "clustered by problem" and s["n_clusters"] == 10


@pytest.mark.parametrize("agree,low,high", [(True, 2.0, 2.3), (False, 0.85, 1.15)])
def test_a_clustered_interval_widens_only_when_a_cluster_agrees(agree, low, high):
    """300 problems of 5 samples each: when a problem's samples share their answer the
    clustered standard error is about sqrt(5) = 2.24 times the naive one (the design
    effect); when they are drawn independently, about the same."""
    import random
    rng = random.Random(0)
    values, clusters = [], []
    for problem in range(300):
        shared = rng.random() < 0.5
        for _ in range(5):
            values.append(int(shared if agree else rng.random() < 0.5))
            clusters.append(problem)
    ratio = stats.clustered_summary(values, clusters)["acc_stderr"] / stats.mean_stderr(values)
    assert low < ratio < high


def test_a_task_of_shared_problems_reports_its_clustered_interval():
    from harness.runs.metrics import summarize_task
    from harness.runs.rundir import SampleRecord

    def rec(i, problem, right):
        return SampleRecord("t", f"s{i}", "1", [], "", resps=["x"], correct=[right],
                            analysis=[analyzers.analyze("x", 1, "stop")],
                            group=None if problem is None else {"problem": problem})
    shared = [rec(i, str(i // 4), i // 4 % 2 == 0) for i in range(40)]
    r = summarize_task(shared, 1)
    assert r["acc_ci95_kind"] == "clustered by problem" and r["n_clusters"] == 10
    assert r["acc_ci95_naive"] == list(stats.wilson_interval(20, 40))
    assert r["acc_ci95"][1] - r["acc_ci95"][0] > r["acc_ci95_naive"][1] - r["acc_ci95_naive"][0]
    alone = summarize_task([rec(i, None, i % 2 == 0) for i in range(40)], 1)
    assert alone["acc_ci95_kind"] == "wilson" and "acc_ci95_naive" not in alone

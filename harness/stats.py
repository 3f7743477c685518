"""Small, honest statistics: intervals for proportions, standard errors, rank correlation."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

Z95 = 1.959963984540054


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for k successes out of n (well behaved at 0 and n)."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, centre - half), min(1.0, centre + half))


def agresti_coull_var(p: float, n: int) -> float:
    """Variance of an accuracy p over n samples with two successes and two failures added."""
    pt = (p * n + 2) / (n + 4)
    return pt * (1 - pt) / (n + 4)


def mean_stderr(xs: Sequence[float]) -> float | None:
    """Standard error of the mean (sample std / sqrt(n)), as lm-eval reports it."""
    if len(xs) < 2:
        return None
    return statistics.stdev(xs) / math.sqrt(len(xs))


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def ranks(xs: Sequence[float]) -> list[float]:
    """1-based ranks, ties given their mean rank."""
    order = sorted(range(len(xs)), key=xs.__getitem__)
    out = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in order[i:j + 1]:
            out[k] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation, computed as scipy's `spearmanr` does (numpy's Pearson
    correlation of the mean ranks; the same float), without importing scipy.stats; None when
    either side is constant or too short."""
    import numpy as np
    if len(x) != len(y):
        raise ValueError(f"spearman: {len(x)} values against {len(y)}")
    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return None
    return float(np.corrcoef(np.column_stack([ranks(x), ranks(y)]), rowvar=False)[1, 0])


def spearman_ci(rho: float, n: int) -> tuple[float, float] | None:
    """95% interval of a Spearman correlation: Fisher's z with the Bonett-Wright standard
    error sqrt((1 + rho^2 / 2) / (n - 3))."""
    if n < 4 or abs(rho) >= 1:
        return None
    se = math.sqrt((1 + rho * rho / 2) / (n - 3))
    z = math.atanh(rho)
    return (math.tanh(z - Z95 * se), math.tanh(z + Z95 * se))


def t_quantile(df: int, q: float = 0.975) -> float:
    """Quantile of Student's t with `df` degrees of freedom (2.776 for df=2 at 0.975)."""
    from scipy.stats import t
    return float(t.ppf(q, df))


def accuracy_summary(values: Sequence[float]) -> dict:
    """Mean accuracy of per-sample scores in [0, 1] with its standard error and 95% interval:
    Wilson for 0/1 scores, a normal interval (clipped to [0, 1]) for fractional ones (each a
    prompt's mean over its responses, so the prompt is the unit). `acc_ci95_kind` says which."""
    n = len(values)
    if n == 0:
        return {"acc": None, "acc_stderr": None, "acc_ci95": None, "acc_ci95_kind": None}
    mean = sum(values) / n
    se = mean_stderr(values)
    if all(v in (0, 1) for v in values):
        (lo, hi), kind = wilson_interval(int(sum(values)), n), "wilson"
    else:
        half = Z95 * (se or 0.0)
        (lo, hi), kind = (max(0.0, mean - half), min(1.0, mean + half)), "normal over prompts"
    return {"acc": mean, "acc_stderr": se, "acc_ci95": [lo, hi], "acc_ci95_kind": kind}


def clustered_summary(values: Sequence[float], clusters: Sequence) -> dict:
    """Mean accuracy when samples come in clusters that share a problem (DynaMath's variants
    of a seed, MathVerse's versions of a problem, We-Math's parts of one): the
    cluster-robust (CR1 sandwich) standard error of the mean, sqrt(G / (G - 1) * sum over
    clusters of (their residuals' sum)^2) / N for N samples in G clusters, and a t interval
    on G - 1 degrees of freedom, clipped to [0, 1]. With every sample its own cluster this is
    the ordinary standard error; answers that agree within a cluster widen it."""
    n = len(values)
    mean = sum(values) / n
    sums: dict = {}
    for v, c in zip(values, clusters, strict=True):
        sums[c] = sums.get(c, 0.0) + (v - mean)
    g = len(sums)
    if g < 2:
        return {"acc": mean, "acc_stderr": None, "acc_ci95": [0.0, 1.0],
                "acc_ci95_kind": "clustered by problem", "n_clusters": g}
    se = math.sqrt(g / (g - 1) * sum(x * x for x in sums.values())) / n
    half = t_quantile(g - 1) * se
    return {"acc": mean, "acc_stderr": se,
            "acc_ci95": [max(0.0, mean - half), min(1.0, mean + half)],
            "acc_ci95_kind": "clustered by problem", "n_clusters": g}


def agreement(a: Sequence[bool], b: Sequence[bool]) -> tuple[float | None, float | None]:
    """Share of items two scorers call the same, and Cohen's kappa (None when chance
    agreement is 1, or for no items)."""
    n = len(a)
    if n == 0:
        return None, None
    agree = sum(x == y for x, y in zip(a, b, strict=True)) / n
    pa, pb = sum(a) / n, sum(b) / n
    chance = pa * pb + (1 - pa) * (1 - pb)
    return agree, None if chance == 1 else (agree - chance) / (1 - chance)


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k of one problem with `c` correct among `n` responses (Chen et al.,
    2021): the chance that k of them drawn without replacement hold a correct one,
    1 - C(n-c, k) / C(n, k)."""
    if not 0 < k <= n:
        raise ValueError(f"pass@{k} needs 1 <= k <= n ({n} responses)")
    return 1.0 if n - c < k else 1.0 - math.comb(n - c, k) / math.comb(n, k)


def maj_at_k(n_correct: int, wrong: Sequence[int], n_abstain: int, k: int) -> float:
    """The expected accuracy of a majority vote over k of a problem's responses drawn without
    replacement. Correct responses vote for one answer (they all equal the target); `wrong`
    counts the responses of each distinct wrong answer; abstaining ones (no answer read) take
    a place in the draw but cast no vote. A tie is broken at random, so a correct answer tied
    with T wrong ones wins 1/(T+1) of the time; a draw with no correct vote is wrong. Exact,
    by dynamic programming over the wrong answers' counts."""
    n = n_correct + sum(wrong) + n_abstain
    if not 0 < k <= n:
        raise ValueError(f"maj@{k} needs 1 <= k <= n ({n} responses)")
    # (drawn so far, the most votes of one wrong answer, how many have that many) -> ways
    states: dict[tuple[int, int, int], int] = {(0, 0, 0): 1}
    for count in [*wrong, None]:  # None: the abstaining responses, which take places only
        nxt: dict[tuple[int, int, int], int] = {}
        for (s, top, ties), ways in states.items():
            size = n_abstain if count is None else count
            for y in range(min(size, k - s) + 1):
                if count is None or y < top or y == 0:
                    key = (s + y, top, ties)
                elif y == top:
                    key = (s + y, top, ties + 1)
                else:
                    key = (s + y, y, 1)
                nxt[key] = nxt.get(key, 0) + ways * math.comb(size, y)
        states = nxt
    won = 0.0
    for (s, top, ties), ways in states.items():
        x = k - s  # the correct votes in the draw
        if 0 < x <= n_correct and x >= top:
            won += ways * math.comb(n_correct, x) * (1.0 if x > top else 1 / (ties + 1))
    return won / math.comb(n, k)

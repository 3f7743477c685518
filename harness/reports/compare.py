"""Paired comparison of two runs over the samples they share.

Per task: both accuracies, their difference B - A with a paired-bootstrap 95% interval
and p-value (samples resampled with replacement, the same draw for both runs), and
McNemar's exact test on the discordant pairs (runs with one response per prompt). The
domain rows compare macro averages with a bootstrap stratified by task; their McNemar test
pools the domain's samples (the macro's own test where the tasks hold equally many).

Several pairs of runs (one pair a seed: A and B trained from the same start) compare over
seeds: each (pair, task) is a stratum, a task's difference is the mean over pairs of the
per-pair differences, McNemar counts the discordant pairs of all of them. The interval
holds the seeds' models fixed and resamples the problems.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.runs.index import load_entry
from harness.runs.rundir import RunDir
from tasks import DOMAINS
from vrbench.errors import VrbenchError

N_BOOT = 10_000


@dataclass
class Comparison:
    label: str
    n: int
    acc_a: float
    acc_b: float
    diff: float
    ci: tuple[float, float]
    p_bootstrap: float
    mcnemar: tuple[int, int, float] | None  # (A right B wrong, A wrong B right, p)

    def as_dict(self) -> dict:
        return self.__dict__ | {"ci": list(self.ci),
                                "mcnemar": None if self.mcnemar is None else {
                                    "a_only": self.mcnemar[0], "b_only": self.mcnemar[1],
                                    "p": self.mcnemar[2]}}


def mcnemar_exact(a: np.ndarray, b: np.ndarray) -> tuple[int, int, float]:
    """McNemar's exact test for paired 0/1 outcomes: a binomial test of the discordant
    pairs against 1/2."""
    from scipy.stats import binomtest
    a_only = int(np.sum((a == 1) & (b == 0)))
    b_only = int(np.sum((a == 0) & (b == 1)))
    p = 1.0 if a_only + b_only == 0 else binomtest(a_only, a_only + b_only, 0.5).pvalue
    return a_only, b_only, float(p)


def paired_bootstrap(a: list[np.ndarray], b: list[np.ndarray], n_boot: int = N_BOOT,
                     seed: int = 0) -> tuple[float, tuple[float, float], float]:
    """Difference of macro means (b - a) over strata (tasks), with a 95% percentile interval
    and a two-sided p-value (twice the smaller share of resampled differences on either
    side of zero, at most 1). Each stratum is resampled on its own; a and b share draws."""
    rng = np.random.default_rng(seed)
    diff = float(np.mean([np.mean(y) - np.mean(x) for x, y in zip(a, b, strict=True)]))
    boots = np.zeros(n_boot)
    for x, y in zip(a, b, strict=True):
        idx = rng.integers(0, len(x), size=(n_boot, len(x)))
        boots += (y[idx].mean(axis=1) - x[idx].mean(axis=1))
    boots /= len(a)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    p = min(1.0, 2 * min(np.mean(boots <= 0), np.mean(boots >= 0)))
    return diff, (float(lo), float(hi)), float(p)


def _scores(run: Path) -> tuple[dict, dict]:
    """(task, doc_id) -> (per-sample accuracy, number of responses); task -> domain."""
    entry = load_entry(run)
    out = {}
    for r in RunDir(run).records():
        out[r.key] = (r.acc, max(1, len(r.resps)), r.target)
    return out, {t: v["domain"] for t, v in entry.tasks.items()}


def _pair(run_a: Path, run_b: Path) -> tuple[dict, dict, bool]:
    """task -> (A's and B's per-sample scores on the samples both hold), task -> domain,
    and whether every sample has one response in both."""
    a, dom_a = _scores(run_a)
    b, dom_b = _scores(run_b)
    shared = sorted(k for k in a.keys() & b.keys())
    if not shared:
        raise VrbenchError(f"{run_a} and {run_b} share no samples (same task, same doc_id).")
    for k in shared:
        if a[k][2] != b[k][2]:
            raise VrbenchError(f"sample {k[1]} of {k[0]} has different targets in the two runs "
                               "(different task versions?); they cannot be paired.")
    tasks = sorted({t for t, _ in shared})
    per_task = {t: (np.array([a[k][0] for k in shared if k[0] == t]),
                    np.array([b[k][0] for k in shared if k[0] == t])) for t in tasks}
    domains = {t: dom_a[t] for t in tasks if dom_a.get(t) == dom_b.get(t)}
    return per_task, domains, all(a[k][1] == 1 and b[k][1] == 1 for k in shared)


def compare(run_a: str | Path | list, run_b: str | Path | list,
            n_boot: int = N_BOOT) -> list[Comparison]:
    """B - A per task and per domain; lists of runs pair up in order (one pair a seed)."""
    runs_a = run_a if isinstance(run_a, list | tuple) else [run_a]
    runs_b = run_b if isinstance(run_b, list | tuple) else [run_b]
    if len(runs_a) != len(runs_b) or not runs_a:
        raise VrbenchError("name the runs in pairs: A then B, once per seed.")
    pairs = [_pair(Path(x), Path(y)) for x, y in zip(runs_a, runs_b, strict=True)]
    binary = all(p[2] for p in pairs)
    tasks = sorted(set.intersection(*(set(p[0]) for p in pairs)))
    if not tasks:
        raise VrbenchError("the pairs of runs share no task.")
    domains = {t: pairs[0][1].get(t) for t in tasks}

    def strata(ts: list[str]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        return ([p[0][t][0] for p in pairs for t in ts], [p[0][t][1] for p in pairs for t in ts])

    def row(label: str, ts: list[str], mcnemar: bool) -> Comparison:
        xs, ys = strata(ts)
        diff, ci, p = paired_bootstrap(xs, ys, n_boot)
        return Comparison(label, sum(len(x) for x in xs), float(np.mean([x.mean() for x in xs])),
                          float(np.mean([y.mean() for y in ys])), diff, ci, p,
                          mcnemar_exact(np.concatenate(xs), np.concatenate(ys))
                          if mcnemar else None)

    out = [row(t, [t], binary) for t in tasks if domains[t] not in DOMAINS]
    for dom in DOMAINS:  # each domain's tasks, then their average
        ts = [t for t in tasks if domains[t] == dom]
        out += [row(t, [t], binary) for t in ts] + (
            [row(f"[{dom} average]", ts, binary)] if ts else [])
    return out


def to_markdown(rows: list[Comparison], run_a: str, run_b: str) -> str:
    lines = [f"A: {run_a}", f"B: {run_b}", "",
             "| task | n | A % | B % | B - A | 95% CI | p (bootstrap) | McNemar A/B only, p |",
             "|---|---|---|---|---|---|---|---|"]
    for c in rows:
        mc = "-" if c.mcnemar is None else f"{c.mcnemar[0]}/{c.mcnemar[1]}, {c.mcnemar[2]:.3g}"
        lines.append(f"| {c.label} | {c.n} | {100 * c.acc_a:.1f} | {100 * c.acc_b:.1f} | "
                     f"{100 * c.diff:+.1f} | [{100 * c.ci[0]:+.1f}, {100 * c.ci[1]:+.1f}] | "
                     f"{c.p_bootstrap:.3g} | {mc} |")
    return "\n".join(lines)

"""The paper's claims, each measured once, put to a test and stated as a verdict with its
figures (`measure`, `sentences`, `figure`: the quickstart's claims.json, summary and
claims.png), and the analysis of any results store (`write`: `vrbench analyze`).

1. **RL generalises better than SFT**, compared where it is fair: at matched in-domain gain.
   Each method's frontier (OOD change against ID gain, both from the warm start, over its
   learning rates, seeds and checkpoints, with the warm start itself at the origin) is a
   kernel-weighted local-linear fit; the two are compared on a grid of ID gains that both
   reach. A seed's arms share its warm start, so the comparison is paired by seed: RL - SFT
   averaged over the grid, per seed, with Student's t interval over the seeds (the verdict's;
   with three seeds a percentile bootstrap can draw only ten distinct samples and its
   interval is too narrow), and a bootstrap over whole seeds for the bands of the figure.
   Then: does KL to the start predict the OOD change across both methods better than the
   method does (R² of each, and of both together, bootstrap over seeds)?
2. **Response length is sensitive to the seed.** From the long RL arm's training log (the
   mean rollout length of every step), in blocks of steps over the second half of training:
   the share of the variance of a block's length that lies between seeds (one-way ICC, with
   its F-distribution interval and the F test's p).
3. **Reflection correlates with length.** Per checkpoint, response by response and within
   each task, Spearman's correlation of length with the number of reflection words, the
   tasks combined by Fisher's z (Bonett-Wright standard errors) with a 95% interval, and the
   length gap between responses with and without reflection; over training, per run, whether
   its mean length follows its reflective share across checkpoints, and the Spearman
   correlation of the per-checkpoint value with the step.

Besides: how accuracy and length vary over seeds per checkpoint (std and coefficient of
variation, `seed_sensitivity`), and each trained run's ID - OOD gap and change from the
checkpoint it started from, paired by seed (`generalisation`).

Every interval is seeded: the same runs give the same figures (the published ones are
pinned by tests/test_published.py).
"""

from __future__ import annotations

import math
import os
import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np

from harness import stats
from harness.reports.leaderboard import Board, Row, build_from, md, md_code
from harness.reports.plots import plain, pyplot, save
from harness.reports.tables import pct
from harness.runs.index import Entry, checkpoint_results, index
from harness.runs.metrics import summarize_groups
from harness.runs.rundir import RunDir
from harness.runs.store import make_dirs, write_text_atomic
from vrbench.errors import VrbenchError

BOOT = 2000  # bootstrap draws
GRID = 8  # matched ID gains compared
WINDOW = 0.5  # the share of the long RL arm's steps (the last) where length is compared
BLOCK = 10  # steps per block of the length test
LONG_ARM = "rl-arm-long"  # the long RL arm's name in results (the quickstart's)


# ---------------------------------------------------------------- 1. matched gain


def _local_linear(x: np.ndarray, y: np.ndarray, at: np.ndarray, h: float) -> np.ndarray:
    """The local-linear (Gaussian kernel, bandwidth `h`) estimate of y at each of `at`."""
    out = np.empty(len(at))
    for i, g in enumerate(at):
        w = np.exp(-0.5 * ((x - g) / h) ** 2)
        design = np.stack([np.ones_like(x), x - g], 1)
        a = design.T @ (w[:, None] * design)
        b = design.T @ (w * y)
        out[i] = np.linalg.lstsq(a, b, rcond=None)[0][0]
    return out


def _arm_points(points: list[dict]) -> list[dict]:
    return [p for p in points if p.get("ood_change") is not None
            and p.get("trainer") in ("rl", "sft")]


def frontier(points: list[dict], boot: int = BOOT, seed: int = 0) -> dict | None:
    """RL's and SFT's OOD change (points) at the same ID gains: the pooled fits with 95%
    bootstrap bands over seeds, and RL - SFT averaged over the gains per seed with Student's
    t interval over seeds (`mean_diff_ci95`, the verdict's). `points` as in the quickstart's
    pareto.json (seed, trainer, lr, step, id_gain, ood_change). None without both methods,
    two seeds, and an ID gain both reach."""
    arm = _arm_points(points)
    seeds = sorted({p["seed"] for p in arm})
    if {p["trainer"] for p in arm} != {"rl", "sft"} or len(seeds) < 2:
        return None
    gains: dict[tuple, list[float]] = defaultdict(list)
    for p in arm:
        gains[(p["trainer"], p["lr"], p["step"])].append(p["id_gain"])
    reach = {m: max(statistics.fmean(v) for k, v in gains.items() if k[0] == m)
             for m in ("rl", "sft")}
    top = min(reach.values())
    if top <= 0:
        return None
    grid = np.linspace(top / GRID, top, GRID)
    h = top / 3
    by_seed = {(m, s): [(p["id_gain"], p["ood_change"]) for p in arm
                        if p["trainer"] == m and p["seed"] == s]
               for m in ("rl", "sft") for s in seeds}

    def curve(method: str, draw) -> np.ndarray:
        xy = [(0.0, 0.0)] * len(draw) + [q for s in draw for q in by_seed[(method, s)]]
        x, y = np.array(xy).T
        return _local_linear(x, y, grid, h)

    est = {m: curve(m, seeds) for m in ("rl", "sft")}
    rng = np.random.default_rng(seed)
    draws = [list(rng.choice(seeds, len(seeds))) for _ in range(boot)]
    curves = {m: np.array([curve(m, d) for d in draws]) for m in ("rl", "sft")}
    diffs = curves["rl"] - curves["sft"]
    mean_draws = diffs.mean(1)
    diff = est["rl"] - est["sft"]
    per_seed = [float((curve("rl", [s]) - curve("sft", [s])).mean()) for s in seeds]
    mean = statistics.fmean(per_seed)
    half = stats.t_quantile(len(seeds) - 1) * statistics.stdev(per_seed) / math.sqrt(len(seeds))
    return {"seeds": len(seeds), "grid": grid.tolist(), "bandwidth": h,
            "reach": reach, "lrs": {m: sorted({p["lr"] for p in arm if p["trainer"] == m})
                                    for m in ("rl", "sft")},
            "points": {m: sum(p["trainer"] == m for p in arm) for m in ("rl", "sft")},
            "rl": est["rl"].tolist(), "sft": est["sft"].tolist(),
            **{f"{m}_ci95": np.percentile(curves[m], [2.5, 97.5], axis=0).T.tolist()
               for m in ("rl", "sft")},
            "diff": diff.tolist(),
            "diff_ci95": np.percentile(diffs, [2.5, 97.5], axis=0).T.tolist(),
            "per_seed_diff": per_seed, "mean_diff": mean,
            "mean_diff_ci95": [mean - half, mean + half],
            "mean_diff_boot_ci95": np.percentile(mean_draws, [2.5, 97.5]).tolist()}


def _r2(columns: list[np.ndarray], y: np.ndarray) -> float:
    """R² of the least-squares fit of y on the columns and an intercept."""
    design = np.stack([np.ones_like(y), *columns], 1)
    fit = design @ np.linalg.lstsq(design, y, rcond=None)[0]
    total = float(((y - y.mean()) ** 2).sum())
    return 1 - float(((y - fit) ** 2).sum()) / total if total else 0.0


def kl_or_method(points: list[dict], boot: int = BOOT, seed: int = 0) -> dict | None:
    """Across both methods' arm checkpoints: how much of the OOD change KL to the start
    explains (R²), how much the method does, both together, and KL's R² minus the method's
    with a 95% bootstrap interval over seeds; Spearman of KL with the OOD change."""
    arm = [p for p in _arm_points(points) if p.get("kl") is not None]
    seeds = sorted({p["seed"] for p in arm})
    if {p["trainer"] for p in arm} != {"rl", "sft"} or len(seeds) < 2:
        return None

    def fit(sample: list[dict]) -> tuple[float, float, float]:
        y = np.array([p["ood_change"] for p in sample])
        kl = np.array([p["kl"] for p in sample])
        rl = np.array([float(p["trainer"] == "rl") for p in sample])
        return _r2([kl], y), _r2([rl], y), _r2([kl, rl], y)

    r2_kl, r2_method, r2_both = fit(arm)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(boot):
        sample = [p for s in rng.choice(seeds, len(seeds)) for p in arm if p["seed"] == s]
        a, b, _ = fit(sample)
        draws.append(a - b)
    rho = stats.spearman([p["kl"] for p in arm], [p["ood_change"] for p in arm])
    return {"points": len(arm), "seeds": len(seeds), "r2_kl": r2_kl, "r2_method": r2_method,
            "r2_both": r2_both, "r2_diff": r2_kl - r2_method,
            "r2_diff_ci95": np.percentile(draws, [2.5, 97.5]).tolist(),
            "spearman": rho, "spearman_ci95": None if rho is None else
            stats.spearman_ci(rho, len(arm))}


# ---------------------------------------------------------------- 2. length and the seed


def length_trajectories(logs: dict[int, list[dict]]) -> dict[int, list[tuple[int, float]]]:
    """Per seed, (step, mean rollout length in tokens) from an RL run's train_log rows."""
    return {s: [(r["step"], r["length_mean"]) for r in rows if "length_mean" in r]
            for s, rows in logs.items()}


def length_and_seed(trajectories: dict[int, list[tuple[int, float]]]) -> dict | None:
    """Between seeds against within a seed: blocks of `BLOCK` steps over the last `WINDOW`
    of training, the one-way ICC(1) of block-mean length (the share of its variance between
    seeds) with its 95% F interval (Shrout and Fleiss), the F test's p, and per seed the
    mean length of its first and last blocks and over the window."""
    from scipy.stats import f as fdist

    blocks: dict[int, list[float]] = {}
    per_seed = {}
    for s, traj in sorted(trajectories.items()):
        traj = sorted(traj)
        if len(traj) < 2 * BLOCK:
            continue
        last = traj[-1][0]
        window = [v for step, v in traj if step > last * (1 - WINDOW)]
        blocks[s] = [statistics.fmean(window[i:i + BLOCK])
                     for i in range(0, len(window) - BLOCK + 1, BLOCK)]
        per_seed[s] = {"first": statistics.fmean(v for _, v in traj[:BLOCK]),
                       "last": statistics.fmean(v for _, v in traj[-BLOCK:]),
                       "window": statistics.fmean(window), "steps": last}
    k = len(blocks)
    n = sum(len(b) for b in blocks.values())
    if k < 2 or n - k < 1:
        return None
    grand = statistics.fmean(v for b in blocks.values() for v in b)
    means = {s: statistics.fmean(b) for s, b in blocks.items()}
    msb = sum(len(b) * (means[s] - grand) ** 2 for s, b in blocks.items()) / (k - 1)
    msw = sum((v - means[s]) ** 2 for s, b in blocks.items() for v in b) / (n - k)
    m0 = (n - sum(len(b) ** 2 for b in blocks.values()) / n) / (k - 1)
    out = {"seeds": k, "blocks": n, "block_steps": BLOCK, "per_seed": per_seed,
           "sd_between": statistics.stdev(means.values()), "sd_within": math.sqrt(msw)}
    if msw == 0:
        return out | {"icc": 1.0 if msb else None, "icc_ci95": None, "f": None, "p": None}
    f = msb / msw
    lo_f = f / fdist.ppf(0.975, k - 1, n - k)
    hi_f = f * fdist.ppf(0.975, n - k, k - 1)

    def icc(x: float) -> float:
        return (x - 1) / (x + m0 - 1)

    return out | {"icc": icc(f), "icc_ci95": (icc(lo_f), icc(hi_f)), "f": f,
                  "p": float(fdist.sf(f, k - 1, n - k))}


# ---------------------------------------------------------------- 3. reflection and length


def _combined(pairs: list[tuple[float, int]]) -> tuple[float, tuple[float, float]] | None:
    """Spearman correlations (rho, n) of independent samples combined by Fisher's z, each
    weighted by its inverse Bonett-Wright variance; with a 95% interval."""
    ws, zs = [], []
    for rho, n in pairs:
        if n >= 4 and abs(rho) < 1:
            ws.append((n - 3) / (1 + rho * rho / 2))
            zs.append(math.atanh(rho))
    if not ws:
        return None
    z = sum(w * v for w, v in zip(ws, zs, strict=True)) / sum(ws)
    se = 1 / math.sqrt(sum(ws))
    return math.tanh(z), (math.tanh(z - stats.Z95 * se), math.tanh(z + stats.Z95 * se))


def reflection_by_checkpoint(entries: list[Entry]) -> list[dict]:
    """Per (name, seed, step): within each task, Spearman of response length with its
    number of reflection words; combined over the tasks where both vary."""
    groups: dict[tuple, list[Entry]] = defaultdict(list)
    for e in entries:
        groups[(e.name, e.seed, e.step)].append(e)
    out = []
    for (name, seed, step), es in sorted(groups.items(), key=lambda kv: (
            kv[0][0], kv[0][1], kv[0][2] or 0)):
        per_task: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
        for e in es:
            for rec in RunDir(e.run_dir).records():
                for b in rec.behaviour():
                    per_task[rec.task][0].append(b["length"])
                    per_task[rec.task][1].append(b["hits"])
        pairs = [(rho, len(x)) for x, y in per_task.values()
                 if (rho := stats.spearman(x, y)) is not None]
        both = _combined(pairs)
        gaps = [statistics.fmean(v for v, h in zip(x, y, strict=True) if h)
                - statistics.fmean(v for v, h in zip(x, y, strict=True) if not h)
                for x, y in per_task.values() if 0 < sum(h > 0 for h in y) < len(y)]
        lengths = [v for x, _ in per_task.values() for v in x]
        out.append({"name": name, "seed": seed, "step": step, "responses": len(lengths),
                    "length": statistics.fmean(lengths) if lengths else None,
                    "reflective": sum(v > 0 for _, y in per_task.values() for v in y)
                    / len(lengths) if lengths else 0.0,
                    "tasks": len(per_task), "tasks_defined": len(pairs),
                    "rho": None if both is None else both[0],
                    "rho_ci95": None if both is None else both[1],
                    "length_gap": statistics.fmean(gaps) if gaps else None})
    return out


def reflection_trend(rows: list[dict]) -> dict:
    """Over the checkpoints where the correlation is defined: its range, how many have an
    interval above 0, the median length gap (with against without reflection, within task);
    per (name, seed) the Spearman of the correlation with the step (`trend`), and across the
    run's checkpoints of its mean length with its reflective share (`follows`)."""
    defined = [r for r in rows if r["rho"] is not None]
    runs: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        if r["step"] is not None:
            runs[(r["name"], r["seed"])].append(r)

    def label(key: tuple) -> str:
        return f"{key[0]} / seed {key[1]}"

    trends = {label(k): stats.spearman([r["step"] for r in rs if r["rho"] is not None],
                                       [r["rho"] for r in rs if r["rho"] is not None])
              for k, rs in sorted(runs.items())
              if sum(r["rho"] is not None for r in rs) >= 3}
    follows = {label(k): stats.spearman([r["length"] for r in rs],
                                        [r["reflective"] for r in rs])
               for k, rs in sorted(runs.items()) if len(rs) >= 3}
    gaps = [r["length_gap"] for r in rows if r.get("length_gap") is not None]
    return {"checkpoints": len(rows), "defined": len(defined),
            "length_gap_median": statistics.median(gaps) if gaps else None,
            "follows": follows,
            "positive": sum(r["rho_ci95"][0] > 0 for r in defined),
            "negative": sum(r["rho_ci95"][1] < 0 for r in defined),
            "rho_min": min((r["rho"] for r in defined), default=None),
            "rho_median": statistics.median([r["rho"] for r in defined]) if defined else None,
            "rho_max": max((r["rho"] for r in defined), default=None),
            "trend": trends}


# ---------------------------------------------------------------- verdicts


def _pm(x: float) -> str:
    return f"{x:+.1f}"


def _ci(ci, fmt=_pm) -> str:
    return f"[{fmt(ci[0])}, {fmt(ci[1])}]"


def _r(x: float) -> str:
    return f"{x:.2f}"


def _side(ci, above: str, below: str, neither: str) -> str:
    """The words for an interval wholly above 0, wholly below, or spanning it."""
    return above if ci[0] > 0 else below if ci[1] < 0 else neither


def sentences(claims: dict) -> list[str]:
    """Four sentences: the matched-gain comparison, KL against the method as the predictor
    of forgetting, length and the seed, reflection and length; from the figures `measure`
    returns; a claim without its data says so."""
    return [_frontier_sentence(claims.get("frontier")),
            _kl_sentence(claims.get("kl_or_method")), _length_sentence(claims),
            _reflection_sentence(claims.get("reflection"))]


def _frontier_sentence(front: dict | None) -> str:
    if front is None:
        return ("**RL vs SFT at matched ID gain:** not measured (it needs both methods over "
                "several learning rates, `--sweep-lrs`, on at least two seeds, `--seeds`, "
                "each reaching an in-domain gain over the warm start).")
    word = _side(front["mean_diff_ci95"], "keeps more OOD accuracy than SFT",
                 "keeps less OOD accuracy than SFT",
                 "keeps no more OOD accuracy than SFT, within the interval")
    rl_lrs = ", ".join(f"{v:g}" for v in front["lrs"]["rl"])
    sft_lrs = ", ".join(f"{v:g}" for v in front["lrs"]["sft"])
    return (f"**RL vs SFT at matched ID gain:** at the same in-domain gains (up to "
            f"{front['grid'][-1]:.1f} points over the warm start; {front['seeds']} seeds, RL at "
            f"learning rates {rl_lrs}, SFT at {sft_lrs}, {front['points']['rl']} and "
            f"{front['points']['sft']} arm checkpoints), RL's OOD change averages "
            f"{_pm(statistics.fmean(front['rl']))} points and SFT's "
            f"{_pm(statistics.fmean(front['sft']))}: RL − SFT {_pm(front['mean_diff'])} "
            f"{_ci(front['mean_diff_ci95'])} (paired by seed, t interval; per seed "
            + ", ".join(_pm(v) for v in front["per_seed_diff"])
            + f"), so at equal ID gain RL {word}.")


def _kl_sentence(klm: dict | None) -> str:
    if klm is None:
        return ("**Forgetting and KL:** not measured (it needs the KL to the warm start of "
                "both methods' arm checkpoints, on at least two seeds).")
    word = _side(klm["r2_diff_ci95"], "predicts the OOD change better than the method does",
                 "predicts it worse than the method does",
                 "and the method predict it about as well (the interval spans 0)")
    rho = "" if klm["spearman"] is None else (
        f"; Spearman of KL with the OOD change {_r(klm['spearman'])}"
        + ("" if klm["spearman_ci95"] is None else f" {_ci(klm['spearman_ci95'], _r)}"))
    return (f"**Forgetting and KL:** across both methods' {klm['points']} arm checkpoints, KL "
            f"to the warm start explains R² = {_r(klm['r2_kl'])} of the OOD change, the method "
            f"R² = {_r(klm['r2_method'])}, both together {_r(klm['r2_both'])} (KL − method "
            f"{klm['r2_diff']:+.2f} {_ci(klm['r2_diff_ci95'], lambda v: f'{v:+.2f}')}, bootstrap "
            f"over seeds): KL {word}{rho}.")


def _length_sentence(claims: dict) -> str:
    length = claims.get("length")
    if length is None:
        return ("**Length and the seed:** not measured (it needs the long RL arm, "
                "`--long-rl-steps`, on at least two seeds).")
    seeds = length["per_seed"]
    ends = ", ".join(f"{v['first']:.1f} → {v['last']:.1f}" for v in seeds.values())
    greedy = ", ".join(f"{g[0][1]:.1f} → {g[-1][1]:.1f}" for _, g in sorted(
        claims.get("greedy_lengths", {}).items()))
    steps = max(v["steps"] for v in seeds.values())
    icc = length["icc"]
    if length["icc_ci95"] is None:
        verdict = "(no variation within seeds: the ICC has no interval)"
        head = f"ICC {icc}"
    else:
        lo = length["icc_ci95"][0]
        verdict = ("the seed moves length more than the steps within a run do" if lo > 0
                   and length["p"] < 0.05 else
                   "the seeds' spread is not distinguishable from the spread within a run")
        head = (f"{100 * icc:.0f}% of the variance of a {length['block_steps']}-step "
                f"block's mean length lies between seeds (ICC {_r(icc)} "
                f"{_ci(length['icc_ci95'], _r)}, F test p {length['p']:.2g})")
    setting = claims.get("long_setting") or {}
    where = "" if not setting else f" (learning rate {setting['lr']:g}" + (
        ")" if not setting["terse"] else f", from a warm start in which "
        f"{setting['terse']:.0%} of the solutions are the answer alone: a terse habit and a "
        f"worked one to choose between)")
    return (f"**Length and the seed:** over the last {int(WINDOW * 100)}% of {steps} RL steps"
            f"{where}, "
            f"{head}; between-seed SD {length['sd_between']:.1f} tokens against "
            f"{length['sd_within']:.1f} within a seed; mean rollout length from the first to "
            f"the last {length['block_steps']} steps per seed (sampled, T = 1): {ends} tokens"
            + ("" if not greedy else f"; greedy evaluation length from the first to the last "
               f"checkpoint: {greedy}") + f". Verdict: {verdict}.")


def _reflection_sentence(refl: dict | None) -> str:
    if refl is None or not refl["defined"]:
        return ("**Reflection and length:** not measured (no checkpoint has responses that "
                "vary in both length and reflection).")
    trends = [v for v in refl["trend"].values() if v is not None]
    follows = [v for v in refl["follows"].values() if v is not None]
    gap = ("" if refl["length_gap_median"] is None else
           f"responses with a reflection word are longer than those without (median "
           f"{refl['length_gap_median']:+.1f} tokens over checkpoints) and ")
    over = ("" if not follows else
            f" Over training, a run's mean length moves with its share of reflective "
            f"responses in {sum(v > 0 for v in follows)} of {len(follows)} runs (Spearman "
            f"across its checkpoints, median {_r(statistics.median(follows))})")
    trend = ("." if not trends else
             f"{';' if over else ' Over training'} the within-checkpoint correlation "
             f"rises with the step in {sum(v > 0 for v in trends)} of {len(trends)} runs "
             f"(median {_r(statistics.median(trends))}).")
    return (f"**Reflection and length:** within task, {gap}length rises with the number of "
            f"reflection words at {refl['positive']} of the {refl['defined']} checkpoints where "
            f"both vary (95% interval above 0; below 0 at {refl['negative']}), median Spearman "
            f"{_r(refl['rho_median'])} (range {_r(refl['rho_min'])} to {_r(refl['rho_max'])}); "
            f"at {refl['checkpoints'] - refl['defined']} of {refl['checkpoints']} checkpoints "
            f"the correlation is undefined (no response, or every one, reflects).{over}{trend}")


def checkpoint_lengths(entries: list[Entry]) -> list[dict]:
    """One point per (name, step, preset, seed): the mean over its tasks of their mean
    response length."""
    groups: dict[tuple, list[Entry]] = defaultdict(list)
    for e in entries:
        groups[(e.name, e.step, e.preset, e.seed)].append(e)
    points = []
    for (name, step, preset, seed), es in groups.items():
        res, _ = checkpoint_results(es)
        lens = [r["length_mean"] for r, _ in res.values() if r.get("length_mean") is not None]
        if lens:
            points.append({"name": name, "step": step, "preset": preset, "seed": seed,
                           "length": statistics.fmean(lens)})
    return points


def greedy_lengths(entries: list[Entry], name: str) -> dict[int, list[tuple[int, float]]]:
    """Per seed of the run `name`, (step, mean greedy response length over its tasks)."""
    out: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for p in sorted(checkpoint_lengths([e for e in entries if e.name == name and e.step
                                        is not None and e.preset == "greedy"]),
                    key=lambda p: (p["seed"], p["step"])):
        out[p["seed"]].append((p["step"], p["length"]))
    return dict(out)


def measure(points: list[dict], long_logs: dict[int, list[dict]], entries: list[Entry],
            long_name: str = LONG_ARM, setting: dict | None = None) -> dict:
    """Every verdict's figures: `points` as in pareto.json, the long RL arm's train_log rows
    per seed, and the evaluation entries of the trained checkpoints (the long arm's named
    `long_name`; `setting`: its learning rate, `lr`, and the share of answer-alone solutions
    in its warm start, `terse`)."""
    rows = reflection_by_checkpoint([e for e in entries if e.step is not None])
    trajectories = length_trajectories(long_logs)
    return {"frontier": frontier(points), "kl_or_method": kl_or_method(points),
            "length": length_and_seed(trajectories), "trajectories": trajectories,
            **({"long_setting": setting} if setting else {}),
            "greedy_lengths": greedy_lengths(entries, long_name),
            "reflection": reflection_trend(rows) if rows else None,
            "reflection_by_checkpoint": rows}


def figure(claims: dict, points: list[dict], out: str | Path) -> Path:
    """Three panels: the matched-gain frontiers (seed points faint, fits with their
    bootstrap bands), rollout length against step per seed (the long RL arm, 10-step means),
    and the per-checkpoint reflection-length correlation against step, per run and seed."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.6))
    colors = {"rl": "tab:orange", "sft": "tab:blue"}
    ax = axes[0]
    for p in _arm_points(points):
        ax.scatter(p["id_gain"], p["ood_change"], color=colors[p["trainer"]], alpha=0.25, s=14)
    front = claims.get("frontier")
    if front is not None:
        grid = front["grid"]
        for m in ("rl", "sft"):
            lo, hi = np.array(front[f"{m}_ci95"]).T
            ax.plot(grid, front[m], color=colors[m], lw=2, label=f"{m.upper()} (local-linear fit)")
            ax.fill_between(grid, lo, hi, color=colors[m], alpha=0.15)
    ax.axhline(0, color="grey", lw=0.8)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel("ID gain over the warm start (points)")
    ax.set_ylabel("OOD change (points)")
    ax.set_title("forgetting at matched ID gain")
    if front is not None:
        ax.legend(fontsize=8)
    else:
        _not_measured(ax, "it needs SFT and RL over several learning rates (--sweep-lrs) on "
                          "two or more seeds")
    ax = axes[1]
    greedy = [g for _, g in sorted(claims.get("greedy_lengths", {}).items())]
    for i, (s, traj) in enumerate(sorted(claims.get("trajectories", {}).items())):
        if len(traj) >= BLOCK:
            steps, lens = np.array(sorted(traj)).T
            smooth = np.convolve(lens, np.ones(BLOCK) / BLOCK, mode="valid")
            ax.plot(steps[BLOCK - 1:], smooth, color=f"C{i}",
                    label=f"seed {s}: rollouts (T = 1)")
        if i < len(greedy) and greedy[i]:
            ax.plot(*np.array(greedy[i]).T, "o--", color=f"C{i}", ms=4,
                    label=f"seed {s}: greedy evaluation")
    ax.set_xlabel("RL step (long arm)")
    ax.set_ylabel(f"length, tokens (rollouts: {BLOCK}-step mean)")
    ax.set_title("response length per seed")
    if claims.get("trajectories"):
        ax.legend(fontsize=8)
    else:
        _not_measured(ax, "it needs the long RL arm (--long-rl-steps)")
    ax = axes[2]
    runs: dict[tuple, list[dict]] = defaultdict(list)
    for r in claims.get("reflection_by_checkpoint", []):
        if r["rho"] is not None:
            runs[(r["name"], r["seed"])].append(r)
    names = sorted({name for name, _ in runs})
    palette = dict(zip(names, plt.cm.tab10(np.linspace(0, 1, max(10, len(names)))),
                       strict=False))
    for (name, seed), rs in sorted(runs.items()):
        rs = sorted(rs, key=lambda r: r["step"])
        first = seed == min(s for n, s in runs if n == name)
        ax.errorbar([r["step"] for r in rs], [r["rho"] for r in rs],
                    yerr=np.abs(np.array([r["rho_ci95"] for r in rs]).T
                                - np.array([r["rho"] for r in rs])),
                    marker="o", ms=3, capsize=2, color=palette[name], alpha=0.8,
                    label=plain(name) if first else None)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("training step of each run")
    ax.set_ylabel("Spearman: length vs reflection words")
    ax.set_title("reflection and length, per checkpoint (within task)")
    if runs:
        ax.set_xscale("log")
        ax.set_xlabel("training step of each run (log scale)")
        from matplotlib.ticker import ScalarFormatter
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.legend(fontsize=7, ncol=2)
    else:
        _not_measured(ax, "no checkpoint has responses that vary in both length and "
                          "reflection")
    return save(fig, out)


def _not_measured(ax, why: str) -> None:
    """An empty panel that says so, and why."""
    import textwrap
    ax.text(0.5, 0.5, "not measured:\n" + textwrap.fill(why, 40), ha="center", va="center",
            transform=ax.transAxes, color="dimgrey", fontsize=9)


# ---------------------------------------------------------------- the analysis of any runs


def _cv(c) -> float | None:
    return None if c is None or c.std is None or not c.mean else c.std / c.mean


def seed_sensitivity(board: Board) -> list[dict]:
    out = []
    for r in board.rows:
        if len(r.seeds) < 2:
            continue
        item = {"name": r.name, "step": r.step, "preset": r.preset, "seeds": len(r.seeds)}
        for col in ("length", "ID avg", "OOD avg"):
            c = r.cells.get(col)
            item[col] = None if c is None else {"mean": c.mean, "std": c.std, "cv": _cv(c)}
        out.append(item)
    return out


def _domain_means(entries: list[Entry]) -> dict[str, float]:
    res, _ = checkpoint_results(entries)
    groups = summarize_groups({t: r for t, (r, _) in res.items()},
                              {t: d for t, (_, d) in res.items()})
    return {dom: g["acc"] for dom, g in groups.items()}


def generalisation(entries: list[Entry], board: Board) -> list[dict]:
    """For each trained run's last checkpoint: ID, OOD, their gap and, paired by seed, the
    change from the checkpoint it started from."""
    by_model: dict[str, list[Entry]] = defaultdict(list)
    for e in entries:
        by_model[e.model].append(e)
    last: dict[tuple, Row] = {}
    for r in board.rows:
        if r.step is not None and ((r.name, r.preset) not in last
                                   or r.step > last[(r.name, r.preset)].step):
            last[(r.name, r.preset)] = r
    out = []
    for (name, preset), row in sorted(last.items()):
        mine = [e for e in entries if e.name == name and e.step == row.step
                and e.preset == preset]
        gaps, deltas = [], {"id": [], "ood": []}
        for seed in row.seeds:
            own = _domain_means([e for e in mine if e.seed == seed])
            if "id" in own and "ood" in own:
                gaps.append(own["id"] - own["ood"])
            bases = {e.base_model for e in mine if e.seed == seed and e.base_model}
            base_entries = [b for m in bases for b in by_model.get(m, [])
                            if b.preset == preset]
            if base_entries:
                base = _domain_means(base_entries)
                for dom in deltas:
                    if dom in own and dom in base:
                        deltas[dom].append(own[dom] - base[dom])
        trainer = next((e.trainer for e in mine if e.trainer), None)
        out.append({"name": name, "trainer": trainer, "step": row.step, "preset": preset,
                    "seeds": len(row.seeds), "gap": _mean_std(gaps),
                    "delta_id": _mean_std(deltas["id"]), "delta_ood": _mean_std(deltas["ood"])})
    return out


def _mean_std(xs: list[float]) -> tuple[float, float | None] | None:
    if not xs:
        return None
    return (statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else None)


def _step(step) -> str:
    return "-" if step is None else str(step)


def _ms(v, signed: bool = True) -> str:
    if v is None:
        return "-"
    return pct(v[0], signed) + ("" if v[1] is None else f" ± {100 * v[1]:.1f}")


def _figures(lengths: list[dict], rows: list[dict], out: Path) -> list[Path]:
    """seeds_and_reflection.png: mean response length against step, a line per run and seed
    (a colour per run, a dash per seed); and each checkpoint's share of reflective responses
    against its mean length (a colour per run, a marker per seed; a log axis where lengths
    span more than 3x)."""
    if not lengths and not rows:
        return []
    plt = pyplot()
    names = sorted({p["name"] for p in lengths} | {r["name"] for r in rows})
    colors = {n: f"C{i % 10}" for i, n in enumerate(names)}
    seeds = sorted({p["seed"] for p in lengths} | {r["seed"] for r in rows})
    dashes = {s: ("-", "--", ":", "-.")[i % 4] for i, s in enumerate(seeds)}
    markers = {s: "osD^v<>"[i % 7] for i, s in enumerate(seeds)}
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.4))
    runs: dict[tuple, list[dict]] = defaultdict(list)
    for p in lengths:
        if p["step"] is not None:
            runs[(p["name"], p["seed"])].append(p)
    for (name, seed), ps in sorted(runs.items()):
        ps = sorted(ps, key=lambda p: p["step"])
        axes[0].plot([p["step"] for p in ps], [p["length"] for p in ps], dashes[seed],
                     marker="o", ms=3, color=colors[name], label=f"{plain(name)}, seed {seed}")
    axes[0].set(xlabel="training step", ylabel="mean response length (tokens)",
                title="length over training, a line per run and seed")
    for r in rows:
        if r["length"] is not None:
            axes[1].scatter(r["length"], r["reflective"], color=colors[r["name"]],
                            marker=markers[r["seed"]], s=22, alpha=0.8)
    shown = [r["length"] for r in rows if r["length"]]
    if shown and max(shown) > 3 * min(shown):
        from matplotlib.ticker import FuncFormatter
        axes[1].set_xscale("log")
        for axis in (axes[1].xaxis.set_major_formatter, axes[1].xaxis.set_minor_formatter):
            axis(FuncFormatter(lambda v, _: f"{v:g}"))
    axes[1].set(xlabel="mean response length (tokens)", ylabel="share of reflective responses",
                title="reflection against length, a checkpoint and seed a point")
    handles = [plt.Line2D([], [], color=colors[n], lw=2, label=plain(n)) for n in names] + [
        plt.Line2D([], [], color="grey", ls=dashes[s], marker=markers[s], label=f"seed {s}")
        for s in seeds]
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8,
               frameon=False)
    path = out / "seeds_and_reflection.png"
    save(fig, path)
    return [path]


def write(roots: list[str | Path], out: str | Path) -> Path:
    """`vrbench analyze`: analysis.md and its figure, from every finished run under `roots`:
    seed sensitivity, reflection and length (as the verdict measures it), generalisation."""
    entries = [e for root in roots for e in index(root)]
    if not entries:
        raise VrbenchError("no finished runs under " + ", ".join(map(str, roots)) + ".")
    board = build_from(entries, Path(os.path.commonpath([Path(r).resolve() for r in roots])))
    out = make_dirs(out)
    rows = {preset: reflection_by_checkpoint([e for e in entries if e.preset == preset])
            for preset in sorted({e.preset for e in entries})}
    figs = _figures(checkpoint_lengths(entries),
                    [r for preset_rows in rows.values() for r in preset_rows], out)
    lines = ["# Analysis", "", "Runs: " + ", ".join(md_code(r) for r in roots), "",
             *_seed_lines(seed_sensitivity(board)), "", "## Reflection and length", "",
             "Per checkpoint and seed, within each task: Spearman correlation of response "
             "length with the number of reflection words, the tasks combined (Fisher's z); "
             "and the length gap between responses with and without reflection.", "",
             "| model | seed | step | preset | responses | reflective % | length | Spearman "
             "[95% CI] | length gap |", "|---|---|---|---|---|---|---|---|---|"]
    for preset, preset_rows in rows.items():
        for r in preset_rows:
            rho = "-" if r["rho"] is None else (f"{r['rho']:.2f} [{r['rho_ci95'][0]:.2f}, "
                                                f"{r['rho_ci95'][1]:.2f}]")
            lines.append(
                f"| {md(r['name'])} | {r['seed']} | {_step(r['step'])} | {md(preset)} | "
                f"{r['responses']} | {pct(r['reflective'], False)} | "
                + ("-" if r["length"] is None else f"{r['length']:.1f}") + f" | {rho} | "
                + ("-" if r["length_gap"] is None else f"{r['length_gap']:+.1f}") + " |")
    lines += ["", *(_reflection_sentence(reflection_trend(r)) for r in rows.values() if r)]
    lines += ["", *_generalisation_lines(generalisation(entries, board))]
    lines += [""] + [f"![{p.stem}]({p.name})" for p in figs]
    report = out / "analysis.md"
    write_text_atomic(report, "\n".join(lines) + "\n", out)
    return report


def _seed_lines(seeds: list[dict]) -> list[str]:
    lines = ["## Seed sensitivity", "",
             "Std and coefficient of variation (CV = std / mean) over seeds, per checkpoint.",
             "", "| model | step | preset | seeds | length | length CV | ID acc % | ID CV | "
             "OOD acc % | OOD CV |", "|---|---|---|---|---|---|---|---|---|---|"]
    for s in seeds:
        ln, i, o = s["length"], s["ID avg"], s["OOD avg"]
        lines.append(
            f"| {md(s['name'])} | {s['step']} | {md(s['preset'])} | {s['seeds']} | "
            + ("-" if ln is None else f"{ln['mean']:.1f} ± {ln['std']:.1f}") + " | "
            + ("-" if ln is None or ln["cv"] is None else f"{ln['cv']:.3f}") + " | "
            + ("-" if i is None else f"{100 * i['mean']:.1f} ± {100 * i['std']:.1f}") + " | "
            + ("-" if i is None or i["cv"] is None else f"{i['cv']:.3f}") + " | "
            + ("-" if o is None else f"{100 * o['mean']:.1f} ± {100 * o['std']:.1f}") + " | "
            + ("-" if o is None or o["cv"] is None else f"{o['cv']:.3f}") + " |")
    if not seeds:
        lines.append("(no checkpoint was evaluated under more than one seed)")
    return lines


def _generalisation_lines(gen: list[dict]) -> list[str]:
    lines = ["## Generalisation", "",
             "Last checkpoint of each run: ID - OOD gap, and the change from the checkpoint it "
             "started from, paired by seed (mean ± std over seeds, points of accuracy).", "",
             "| model | trainer | step | preset | seeds | ID - OOD | change ID | change OOD |",
             "|---|---|---|---|---|---|---|---|"]
    for g in gen:
        lines.append(f"| {md(g['name'])} | {md(g['trainer'] or '-')} | {g['step']} | "
                     f"{md(g['preset'])} | {g['seeds']} | {_ms(g['gap'])} | "
                     f"{_ms(g['delta_id'])} | {_ms(g['delta_ood'])} |")
    return lines

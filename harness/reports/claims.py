"""The paper's three questions, asked of a results store.

1. Seed sensitivity: how much accuracy and response length vary over seeds, per checkpoint
   step (std and coefficient of variation).
2. Reflection and length: within each checkpoint's responses, the Spearman correlation of
   length with the number of reflection words (95% interval by Fisher's z with the
   Bonett-Wright standard error), the length and the accuracy of responses with and without
   reflection (Wilson intervals); across checkpoints, the correlation of mean length with
   the reflection ratio.
3. Generalisation: the ID - OOD gap per trainer, and each trained run's change on ID and
   OOD from the checkpoint it started from, paired by seed (the "RL vs SFT" comparison).

`write` saves a markdown report and seaborn figures (PNG).
"""

from __future__ import annotations

import os
import statistics
from collections import defaultdict
from pathlib import Path

from harness import stats
from harness.reports.leaderboard import Board, Row, build_from, md, md_code
from harness.reports.plots import plain, pyplot
from harness.reports.tables import pct
from harness.runs.index import Entry, checkpoint_results, index
from harness.runs.metrics import summarize_groups
from harness.runs.rundir import RunDir
from vrbench.errors import VrbenchError


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


def _responses(entries: list[Entry]) -> list[dict]:
    """Every scored response of the runs: length, reflection-word count, correctness."""
    return [b for e in entries for rec in RunDir(e.run_dir).records() for b in rec.behaviour()]


def reflection_length(entries: list[Entry]) -> list[dict]:
    """Per (name, step, preset), pooling seeds and tasks."""
    groups: dict[tuple, list[Entry]] = defaultdict(list)
    for e in entries:
        groups[(e.name, e.step, e.preset)].append(e)
    out = []
    for (name, step, preset), es in sorted(groups.items(), key=lambda kv: (
            kv[0][0], kv[0][1] or 0, kv[0][2])):
        resp = _responses(es)
        if not resp:
            continue
        rho = stats.spearman([r["length"] for r in resp], [r["hits"] for r in resp])
        item = {"name": name, "step": step, "preset": preset, "responses": len(resp),
                "spearman": rho, "spearman_ci95": None if rho is None else
                stats.spearman_ci(rho, len(resp))}
        for key, flag in (("with", True), ("without", False)):
            sub = [r for r in resp if r["reflective"] == flag]
            k = sum(r["correct"] for r in sub)
            item[f"n_{key}"] = len(sub)
            item[f"length_{key}"] = statistics.fmean(r["length"] for r in sub) if sub else None
            item[f"acc_{key}"] = k / len(sub) if sub else None
            item[f"acc_{key}_ci95"] = stats.wilson_interval(k, len(sub)) if sub else None
        out.append(item)
    return out


def checkpoint_points(entries: list[Entry]) -> list[dict]:
    """One point per (name, step, preset, seed): mean length and reflection ratio."""
    groups: dict[tuple, list[Entry]] = defaultdict(list)
    for e in entries:
        groups[(e.name, e.step, e.preset, e.seed)].append(e)
    points = []
    for (name, step, preset, seed), es in groups.items():
        res, _ = checkpoint_results(es)
        lens = [r["length_mean"] for r, _ in res.values() if r.get("length_mean") is not None]
        refl = [r["reflection_ratio"] for r, _ in res.values()
                if r.get("reflection_ratio") is not None]
        if lens and refl:
            points.append({"name": name, "step": step, "preset": preset, "seed": seed,
                           "length": statistics.fmean(lens),
                           "reflection": statistics.fmean(refl)})
    return points


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


# ---------------------------------------------------------------- report

def _step(step) -> str:
    return "-" if step is None else str(step)


def _ms(v, signed: bool = True) -> str:
    if v is None:
        return "-"
    return pct(v[0], signed) + ("" if v[1] is None else f" ± {100 * v[1]:.1f}")


def _figures(points: list[dict], out: Path) -> list[Path]:
    plt = pyplot()
    import pandas as pd
    import seaborn as sns
    paths = []
    if points:
        df = pd.DataFrame(points)
        df["name"] = df["name"].map(plain)
        names = sorted(df["name"].unique())
        colors = dict(zip(names, sns.color_palette(n_colors=len(names)), strict=True))
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        trained = df[df["step"].notna()]
        if not trained.empty:
            sns.lineplot(trained, x="step", y="length", hue="name", units="seed",
                         estimator=None, marker="o", palette=colors, ax=axes[0])
        axes[0].set_title("mean response length, one line per seed")
        sns.scatterplot(df, x="length", y="reflection", hue="name", palette=colors,
                        ax=axes[1])
        axes[1].set_title("reflection ratio vs length (a checkpoint and seed a point)")
        fig.tight_layout()
        paths.append(out / "seeds_and_reflection.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    return paths


def write(roots: list[str | Path], out: str | Path) -> Path:
    entries = [e for root in roots for e in index(root)]
    if not entries:
        raise VrbenchError("no finished runs under " + ", ".join(map(str, roots)) + ".")
    board = build_from(entries, Path(os.path.commonpath([Path(r).resolve() for r in roots])))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = seed_sensitivity(board)
    refl = reflection_length(entries)
    points = checkpoint_points(entries)
    gen = generalisation(entries, board)
    figs = _figures(points, out)
    lines = ["# Analysis", "", "Runs: " + ", ".join(md_code(r) for r in roots), ""]
    lines += ["## Seed sensitivity", "",
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
    lines += ["", "## Reflection and length", "",
              "Within each checkpoint's responses (seeds and tasks pooled): Spearman correlation "
              "of length with the number of reflection words, and responses with / without "
              "reflection.", "",
              "| model | step | preset | responses | Spearman [95% CI] | with refl. (n, len, "
              "acc %) | without refl. (n, len, acc %) |", "|---|---|---|---|---|---|---|"]
    for r in refl:
        rho = "-" if r["spearman"] is None else f"{r['spearman']:.2f}" + (
            "" if r["spearman_ci95"] is None
            else f" [{r['spearman_ci95'][0]:.2f}, {r['spearman_ci95'][1]:.2f}]")
        cols = []
        for key in ("with", "without"):
            n = r[f"n_{key}"]
            cols.append(f"{n}" if not n else
                        f"{n}, {r[f'length_{key}']:.1f}, {pct(r[f'acc_{key}'])} "
                        f"[{pct(r[f'acc_{key}_ci95'][0])}, {pct(r[f'acc_{key}_ci95'][1])}]")
        lines.append(f"| {md(r['name'])} | {_step(r['step'])} | {md(r['preset'])} | "
                     f"{r['responses']} | {rho} | {cols[0]} | {cols[1]} |")
    if len(points) >= 3:
        rho = stats.spearman([p["length"] for p in points], [p["reflection"] for p in points])
        ci = None if rho is None else stats.spearman_ci(rho, len(points))
        lines += ["", f"Across {len(points)} checkpoint evaluations (one per name, step, "
                  "seed), Spearman of mean length with reflection ratio: "
                  + ("undefined (a constant side)" if rho is None else f"{rho:.2f}")
                  + ("" if ci is None else f" [{ci[0]:.2f}, {ci[1]:.2f}]") + "."]
    lines += ["", "## Generalisation", "",
              "Last checkpoint of each run: ID - OOD gap, and the change from the checkpoint "
              "it started from, paired by seed (mean ± std over seeds, points of accuracy).",
              "", "| model | trainer | step | preset | seeds | ID - OOD | change ID | "
              "change OOD |", "|---|---|---|---|---|---|---|---|"]
    for g in gen:
        lines.append(f"| {md(g['name'])} | {md(g['trainer'] or '-')} | {g['step']} | "
                     f"{md(g['preset'])} | {g['seeds']} | {_ms(g['gap'])} | {_ms(g['delta_id'])} | "
                     f"{_ms(g['delta_ood'])} |")
    lines += [""] + [f"![{p.stem}]({p.name})" for p in figs]
    report = out / "analysis.md"
    report.write_text("\n".join(lines) + "\n")
    return report


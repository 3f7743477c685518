"""Plain-text tables of a run's results, for the terminal and for markdown."""

from __future__ import annotations


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def results_table(out: dict) -> str:
    """One row per task and per domain average: accuracy with its 95% interval, the
    majority-answer baseline, mean response length in tokens, truncation, reflection and
    boxed-answer (format) rates."""
    head = ("task", "dom", "n", "acc %", "95% CI", "major %", "len", "clip %", "refl %", "fmt %",
            "err")
    rows = [head]
    cfg_tasks = out["config"]["tasks"]
    for name, r in out["results"].items():
        ci = r.get("acc_ci95")
        rows.append((name, cfg_tasks[name]["domain"], str(r["n_samples"]), _pct(r["acc"]),
                     "-" if not ci else f"{_pct(ci[0])}-{_pct(ci[1])}",
                     _pct(r.get("majority_baseline")),
                     "-" if r.get("length_mean") is None else f"{r['length_mean']:.0f}",
                     _pct(r.get("length_clip_ratio")), _pct(r.get("reflection_ratio")),
                     _pct(r.get("format_ratio")), str(r["n_errors"])))
    for dom, g in out["groups"].items():
        ci = g["acc_ci95"]
        rows.append((f"[{dom} average]", dom, "", _pct(g["acc"]),
                     f"{_pct(ci[0])}-{_pct(ci[1])}", "",
                     "-" if g["length_mean"] is None else f"{g['length_mean']:.0f}",
                     "", "", "", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(r, widths, strict=True))) for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)

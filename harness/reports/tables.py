"""Plain-text tables for the terminal and for markdown."""

from __future__ import annotations

import re

from tasks import DOMAINS


def pct(x: float | None, signed: bool = False) -> str:
    """A ratio as a percentage with one decimal ("-" for none)."""
    if x is None:
        return "-"
    return f"{100 * x:+.1f}" if signed else f"{100 * x:.1f}"


def text_table(rows: list[tuple[str, ...]], right: tuple[int, ...] = (),
               rule: bool = False) -> str:
    """Columns padded to their widest cell; the columns in `right` aligned right; with
    `rule`, a line under the header."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.rjust(w) if i in right else c.ljust(w)
                       for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()
             for r in rows]
    if rule:
        lines.insert(1, "-" * max(len(x) for x in lines))
    return "\n".join(lines)


def for_terminal(markdown: str) -> str:
    """A markdown report as a terminal shows it well: headings as plain lines, tables as
    padded columns, emphasis and images (links to files written beside) left out."""
    out, table = [], []

    def flush() -> None:
        if table:
            rows = [r for r in table if not all(set(c) <= set(":- ") for c in r)]
            width = max(map(len, rows))
            out.append(text_table([r + ("",) * (width - len(r)) for r in rows], rule=True))
            table.clear()

    for line in markdown.splitlines():
        if line.startswith("|"):
            cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))
            table.append(tuple(c.strip().replace("**", "").replace("\\|", "|") for c in cells))
            continue
        flush()
        if line.startswith("!["):
            continue
        out.append(line.lstrip("#").strip().replace("**", "") if line.startswith("#")
                   else line.replace("**", ""))
    flush()
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()


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
        rows.append((name, cfg_tasks[name]["domain"], str(r["n_samples"]), pct(r["acc"]),
                     "-" if not ci else f"{pct(ci[0])}-{pct(ci[1])}",
                     pct(r.get("majority_baseline")),
                     "-" if r.get("length_mean") is None else f"{r['length_mean']:.0f}",
                     pct(r.get("length_clip_ratio")), pct(r.get("reflection_ratio")),
                     pct(r.get("format_ratio")), str(r["n_errors"])))
    for dom, g in out["groups"].items():
        ci = g["acc_ci95"]
        rows.append((f"[{dom} average]", dom if dom in DOMAINS else "", "", pct(g["acc"]),
                     f"{pct(ci[0])}-{pct(ci[1])}", "",
                     "-" if g["length_mean"] is None else f"{g['length_mean']:.0f}",
                     "", "", "", ""))
    return "\n".join([text_table(rows, right=tuple(range(1, len(head))), rule=True),
                      *benchmark_lines(out["results"])])


def benchmark_lines(results: dict) -> list[str]:
    """What a task reports beside accuracy: DynaMath's worst case and consistency, We-Math's
    scores, how much of the answers a benchmark's own matching read, and where responses
    reason in a block, what the reasoning costs."""
    out = []
    for name, r in results.items():
        if "worst_case" in r:
            (lo, hi), sizes = r["worst_case_ci95"], sorted(set(r["variants_per_seed"]))
            out.append(f"{name}: worst case {pct(r['worst_case'])}% [{pct(lo)}-{pct(hi)}] "
                       f"over {r['n_seeds']} seeds ({'-'.join(map(str, sizes))} variants "
                       f"each), consistent {pct(r['consistent'])}%")
        if r.get("diagnosis", {}).get("score_strict") is not None:
            d = r["diagnosis"]
            out.append(f"{name}: score {pct(d['score_strict'])}% strict, "
                       f"{pct(d['score_loose'])}% loose ({d['n_problems']} multi-step problems)")
        if r.get("official_read_ratio") is not None:
            out.append(f"{name}: its own matching read {pct(r['official_read_ratio'])}% of the "
                       "answers; vrbench's grader read the rest")
        if r.get("reasoning_block_ratio"):
            spent = "" if r["reasoning_tokens_mean"] is None else (
                f"; {r['reasoning_tokens_mean']:.0f} tokens reasoning and "
                f"{r['answer_tokens_mean']:.0f} answering on average")
            cost = "none right" if r["tokens_per_correct"] is None else \
                f"{r['tokens_per_correct']:.0f} tokens per right answer"
            out.append(f"{name}: {pct(r['reasoning_block_ratio'])}% reason in a block, "
                       f"{pct(r['cut_in_reasoning_ratio'])}% cut off inside it{spent}; {cost}")
    return out


def shift_table(curves: list[dict]) -> str:
    """Accuracy (%) per source and dial (rows) and distance (columns)."""
    distances = sorted({r["distance"] for r in curves})
    cells: dict[tuple, dict[int, float]] = {}
    for r in curves:
        cells.setdefault((r["source"], r["dial"]), {})[r["distance"]] = r["acc"]
    rows = [("source", "dial", *(f"d={d}" for d in distances))]
    rows += [(s, dial, *(f"{100 * c[d]:.1f}" if d in c else "-" for d in distances))
             for (s, dial), c in sorted(cells.items())]
    return text_table(rows, right=tuple(range(2, 2 + len(distances))))

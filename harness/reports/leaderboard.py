"""Leaderboard tables from the results store: markdown, CSV and one self-contained HTML page.

One row per model under one setting: (run name, checkpoint step, generation preset, sample
limit and token budget); runs of other settings get rows of their own. A row's cells are
per-task accuracies, the ID, OOD and far macro averages (over the suites' own tasks only: a
task of the user's or a published benchmark has its column but is in no average), the
average of the six reasoning benchmarks where a row has all six, mean response length and
reflection ratio.
With one seed a cell shows the accuracy and its 95% interval (Wilson for a task, the
Agresti-Coull bound for an average); with several seeds, the mean over seeds +- its std and
a t interval. Per column the best mean is marked, and so is every entry whose difference
from it is not significant at 5% (a two-sided test on the two means' standard errors,
unpaired and so conservative; `vrbench compare` does the paired test of two runs).

A second table follows the paper's reporting over training: per run name, the mean and
the max over checkpoints of the seed-mean ID and OOD averages. Where rows scored any of the
six reasoning benchmarks, a third is the table papers publish: a row per checkpoint, a
column per benchmark and their average, each with its interval.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import os
import re
import statistics
import string
from collections import defaultdict
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

import tasks as task_registry
from harness import stats
from harness.reports.plots import plain, pyplot, save
from harness.runs.index import Entry, checkpoint_results, index, printable
from harness.runs.metrics import TRACKED, macro_average, summarize_groups, task_variance
from harness.runs.rundir import CONFIG, SAMPLES, RunDir
from harness.runs.store import make_dirs, move, no_link, remove_tree, write_text_atomic
from tasks import DOMAIN_LABELS, DOMAINS
from vrbench.errors import VrbenchError


@dataclass
class Cell:
    mean: float | None
    se: float | None = None
    ci: tuple[float, float] | None = None
    std: float | None = None
    n: int = 1  # seeds behind the mean
    tasks: tuple[str, ...] = ()  # an average's tasks: it ranks against averages of the same
    best: bool = False
    tied: bool = False  # not significantly different from the best
    values: tuple[float, ...] = ()  # the per-seed values, in seed order

    @classmethod
    def over_seeds(cls, values: list[tuple[float, float | None, tuple | None]],
                   bounds: tuple[float, float] | None = None) -> Cell:
        """From (mean, standard error, interval) per seed; the t interval over seeds is
        clipped to `bounds` (a ratio's [0, 1])."""
        if not values:
            return cls(None)
        xs = tuple(v[0] for v in values)
        if len(values) == 1:
            m, se, ci = values[0]
            return cls(m, se, tuple(ci) if ci else None, values=xs)
        m, sd = statistics.fmean(xs), statistics.stdev(xs)
        se = sd / math.sqrt(len(xs))
        half = stats.t_quantile(len(xs) - 1) * se
        lo, hi = bounds or (-math.inf, math.inf)
        return cls(m, se, (max(lo, m - half), min(hi, m + half)), sd, len(xs), values=xs)


@dataclass
class Row:
    name: str
    step: int | None
    epoch: float | None
    preset: str
    setting: str  # the sample limit and token budget
    seeds: list[int]
    cells: dict[str, Cell] = field(default_factory=dict)
    runs: list[Path] = field(default_factory=list)
    # per task, where the row's responses came with another harness's verdicts (rescored):
    # {n, acc, acc_ci95, official, official_ci95, agreement, kappa}
    official: dict[str, dict] = field(default_factory=dict)


@dataclass
class Board:
    root: Path
    columns: list[str]  # cell keys in display order (rows also hold an "ID - OOD" cell)
    domains: dict[str, str]  # task -> domain
    rows: list[Row]
    over_training: list[dict]
    baseline: dict[str, float]  # column -> the accuracy of always giving the most common answer
    splits: dict[str, list[str]] = field(default_factory=dict)  # domain -> the splits scored


DOMAIN_AVERAGES = tuple(f"{DOMAIN_LABELS[d]} avg" for d in DOMAINS)  # "ID avg", "OOD avg"...
SIX = "Reasoning-6 avg"  # the six benchmarks' average, where a row has all six
AVERAGES = (*DOMAIN_AVERAGES, SIX)
# the six as papers' tables head them
SIX_LABELS = dict(zip(task_registry.REASONING6, ("MathVista", "MATH-Vision", "MathVerse",
                                                 "DynaMath", "We-Math", "LogicVista"),
                      strict=True))
COLUMNS = tuple(m for m in TRACKED if m.column)  # behaviour columns: means over the tasks
# with the task columns, ratios in [0, 1]
_RATIO = (*AVERAGES, *(m.column for m in COLUMNS if m.ratio))


def _task_cell_value(r: dict) -> tuple:
    return r["acc"], math.sqrt(task_variance(r)), r.get("acc_ci95")


def _mean_of(results: dict, key: str) -> float | None:
    xs = [r[key] for r, _ in results.values() if r.get(key) is not None]
    return statistics.fmean(xs) if xs else None


def build(root: str | Path, presets: list[str] | None = None) -> Board:
    entries = [e for e in index(root) if presets is None or e.preset in presets]
    if not entries:
        raise VrbenchError(f"no finished runs under {root}"
                           + (f" with preset {', '.join(presets)}" if presets else "") + ".")
    return build_from(entries, Path(root))


def build_from(entries: list[Entry], root: Path) -> Board:
    """The board of these index entries; run paths are shown relative to `root`."""
    groups: dict[tuple, dict[int, list[Entry]]] = defaultdict(lambda: defaultdict(list))
    for e in entries:
        groups[(e.name, e.step, e.preset, e.setting)][e.seed].append(e)
    by_dir = {e.run_dir: e for e in entries}
    suites = {dom: set(task_registry.names(dom)) for dom in DOMAINS}
    domains: dict[str, str] = {}
    baselines: dict[str, float] = {}
    splits: dict[str, set[str]] = defaultdict(set)
    rows = []
    for (name, step, preset, setting), by_seed in groups.items():
        per_seed = {}
        runs: list[Path] = []
        for seed, es in sorted(by_seed.items()):
            res, used = checkpoint_results(es)
            if res:
                per_seed[seed] = res
                runs += used
                for run in used:
                    for t, info in by_dir[run].tasks.items():
                        if t in res:
                            splits[info["domain"]].add(info.get("split") or by_dir[run].split)
        if not per_seed:
            continue
        values: dict[str, list[tuple]] = defaultdict(list)
        averaged: dict[str, tuple[str, ...]] = {}  # an average's tasks
        official: dict[str, dict] = {}
        for res in per_seed.values():
            for task, (r, dom) in res.items():
                domains[task] = dom
                values[task].append(_task_cell_value(r))
                if r.get("other_acc") is not None:
                    official[task] = _against_official(r)
            groups_ = summarize_groups({t: r for t, (r, _) in res.items()},
                                       {t: d for t, (_, d) in res.items() if t in suites[d]})
            for dom, g in groups_.items():
                values[f"{DOMAIN_LABELS[dom]} avg"].append((g["acc"], g["acc_stderr"],
                                                            g["acc_ci95"]))
                averaged[f"{DOMAIN_LABELS[dom]} avg"] = tuple(g["tasks"])
            if all(t in res for t in task_registry.REASONING6):
                six = macro_average({t: res[t][0] for t in task_registry.REASONING6})
                values[SIX].append((six["acc"], six["acc_stderr"], six["acc_ci95"]))
                averaged[SIX] = task_registry.REASONING6
            if "id" in groups_ and "ood" in groups_:
                values["ID - OOD"].append((groups_["id"]["acc"] - groups_["ood"]["acc"], None,
                                           None))
            for task, (r, _) in res.items():
                if r.get("majority_baseline") is not None:
                    baselines.setdefault(task, r["majority_baseline"])
            for m in COLUMNS:
                if (v := _mean_of(res, m.key)) is not None:
                    values[m.column].append((v, None, None))
        epochs = [e.epoch for es in by_seed.values() for e in es if e.epoch is not None]
        cells = {k: replace(Cell.over_seeds(v, (0, 1) if k in _RATIO or k in domains else None),
                            tasks=averaged.get(k, (k,))) for k, v in values.items()}
        rows.append(Row(name, step, epochs[0] if epochs else None, preset, setting,
                        sorted(per_seed), cells, runs, official))
    rows.sort(key=lambda r: (r.name, r.step or 0, r.preset, r.setting))
    six = [*(t for t in task_registry.REASONING6 if t in domains), SIX]
    columns = [c for dom in DOMAINS for c in
               [*(six if dom == "ood" else ()),
                *(t for t in sorted(domains) if domains[t] == dom and t not in six),
                f"{DOMAIN_LABELS[dom]} avg"]] + [m.column for m in COLUMNS]
    columns = [c for c in columns if any(c in r.cells for r in rows)]
    for col in columns:
        if col not in {m.column for m in COLUMNS}:  # accuracy columns: higher is better
            _mark_best(rows, col)
    baseline = dict(baselines)
    for dom in DOMAINS:
        xs = [b for t, b in baselines.items() if domains[t] == dom]
        if xs:
            baseline[f"{DOMAIN_LABELS[dom]} avg"] = statistics.fmean(xs)
    return Board(Path(root), columns, domains, rows, _over_training(rows), baseline,
                 {d: sorted(s) for d, s in splits.items()})


def _against_official(r: dict) -> dict:
    """A rescored task's two scores: vrbench's and the other harness's verdicts' (each over
    the responses that carry one), with Wilson intervals, their agreement and kappa."""
    n = r["n_samples"] - r.get("n_without_verdict", 0)
    hits = round(r["other_acc"] * n)
    return {"n": r["n_samples"], "acc": r["acc"], "acc_ci95": r.get("acc_ci95"),
            "official": r["other_acc"], "official_ci95": list(stats.wilson_interval(hits, n)),
            "agreement": r.get("other_agreement"), "kappa": r.get("other_kappa")}


def _mark_best(rows: list[Row], col: str) -> None:
    """The best of a column, and the entries not significantly worse; an average ranks only
    against averages over the same tasks."""
    by_tasks: dict[tuple, list[Cell]] = defaultdict(list)
    for r in rows:
        if col in r.cells and r.cells[col].mean is not None:
            by_tasks[r.cells[col].tasks].append(r.cells[col])
    for cells in by_tasks.values():
        _mark_best_of(cells)


def _mark_best_of(cells: list[Cell]) -> None:
    if not cells or len({c.mean for c in cells}) == 1:
        return  # nothing to rank: an empty or constant column
    best = max(cells, key=lambda c: c.mean)
    best.best = True
    for c in cells:
        if c is best or best.se is None or c.se is None:
            continue
        df = min(c.n, best.n) - 1
        crit = stats.t_quantile(df) if df > 0 else stats.Z95
        c.tied = best.mean - c.mean <= crit * math.hypot(best.se, c.se)


def _over_training(rows: list[Row]) -> list[dict]:
    """Per (name, preset) with an ID or OOD average: mean and max over checkpoints of the
    seed-mean averages."""
    out = []
    by_name: dict[tuple, list[Row]] = defaultdict(list)
    for r in rows:
        by_name[(r.name, r.preset)].append(r)
    for (name, preset), rs in by_name.items():
        item = {"name": name, "preset": preset, "checkpoints": len(rs)}
        for col in ("ID avg", "OOD avg"):
            xs = [r.cells[col].mean for r in rs if col in r.cells]
            item[col] = (statistics.fmean(xs), max(xs)) if xs else None
        if item["ID avg"] or item["OOD avg"]:
            out.append(item)
    return out


# ---------------------------------------------------------------- rendering

def _fmt(c: Cell | None, col: str, marks: bool = True) -> str:
    if c is None or c.mean is None:
        return "-"
    if col == "length":
        s = f"{c.mean:.0f}" + (f" ± {c.std:.0f}" if c.std is not None else "")
    else:
        s = f"{100 * c.mean:.1f}"
        if c.std is not None:
            s += f" ± {100 * c.std:.1f}"
        elif c.ci is not None:
            s += f" [{100 * c.ci[0]:.0f}, {100 * c.ci[1]:.0f}]"
    if marks and c.best:
        s = f"**{s}**"
    elif marks and c.tied:
        s += " ≈"
    return s


def md(text) -> str:
    """Text that Markdown shows as it is: no raw HTML, no table-cell break, no emphasis."""
    out = str(text).replace("\\", "\\\\").replace("\n", " ").replace("\r", " ")
    for ch in "`*_[]|#!":
        out = out.replace(ch, "\\" + ch)
    return html.escape(out, quote=False)


def md_code(text) -> str:
    return f"<code>{md(text)}</code>"


def csv_cell(value):
    """A cell a spreadsheet will not run: text that starts like a formula gets a quote."""
    if isinstance(value, str) and value.startswith(("=", "+", "-", "@", "\t", "\r")):
        return "'" + value
    return value


def _label(r: Row) -> str:
    return r.name if r.step is None else f"{r.name} @ {r.step}"


def _rel(p: Path, base: Path) -> str:
    return os.path.relpath(p, base)


def to_markdown(board: Board, command: str, figure: str | None) -> str:
    head = ["model", "preset", "setting", "seeds", *board.columns]
    lines = [
        "# Leaderboard", "",
        f"Regenerate: {md_code(command)}", "",
        "Accuracy in %. One seed: accuracy [95% interval]; several seeds: mean ± std over "
        f"seeds. {md(splits_sentence(board))} Averages are over the suites' own tasks. "
        "**Bold**: the best in its column (an average: among averages over the same tasks); "
        "≈: not significantly different from it (5%, two-sided, unpaired). `length`: mean "
        "response tokens; `reflection`: share of responses with a reflection word.", "",
        "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in board.rows:
        lines.append("| " + " | ".join([md(_label(r)), md(r.preset), md(r.setting or "-"),
                                        str(len(r.seeds))]
                                       + [_fmt(r.cells.get(c), c) for c in board.columns])
                     + " |")
    if board.baseline:
        lines.append("| always the most common answer | - | - | - | " + " | ".join(
            _fmt(Cell(board.baseline[c]), c) if c in board.baseline else ""
            for c in board.columns) + " |")
    if board.over_training:
        lines += ["", "## Over training", "", "Mean and max over checkpoints of the seed-mean "
                  "averages, as in the paper's tables.", "",
                  "| model | preset | checkpoints | ID mean | ID max | OOD mean | OOD max |",
                  "|---|---|---|---|---|---|---|"]
    for t in board.over_training:
        cells = [f"{100 * v:.1f}" for col in ("ID avg", "OOD avg")
                 for v in (t[col] or (None, None)) if v is not None]
        cells += ["-"] * (4 - len(cells))
        lines.append(f"| {md(t['name'])} | {md(t['preset'])} | {t['checkpoints']} | "
                     + " | ".join(cells) + " |")
    if (six := six_table(board)) is not None:
        head, rows = six
        lines += ["", "## The reasoning six", "", md(SIX_NOTE), "",
                  "| " + " | ".join(head) + " |", "|" + "---|" * len(head),
                  *("| " + " | ".join(md(c) if i < 2 else c for i, c in enumerate(row)) + " |"
                    for row in rows)]
    if (against := official_table(board)) is not None:
        head, rows = against
        lines += ["", "## Against the official verdicts", "", md(OFFICIAL_NOTE), "",
                  "| " + " | ".join(head) + " |", "|" + "---|" * len(head),
                  *("| " + " | ".join(md(c) for c in row) + " |" for row in rows)]
    if figure:
        lines += ["", f"![ID and OOD accuracy]({figure})"]
    lines += ["", "## Runs", "", f"Run directories (relative to {md_code(board.root)}) behind "
              f"each row: `{CONFIG}` says how, `{SAMPLES}` (gzipped in a bundle) holds "
              "every response.", ""]
    for r in board.rows:
        lines.append(f"- {md(_label(r))} ({md(r.preset)}): "
                     + ", ".join(md_code(printable(_rel(p, board.root))) for p in r.runs))
    return "\n".join(lines) + "\n"


SIX_NOTE = ("As RL-for-VLM papers publish it: accuracy in % on each benchmark's published "
            "split, with its 95% interval (clustered by problem where samples share one: "
            "DynaMath's variants of a seed, We-Math's parts of a problem), and their average "
            "where a row has all six. DynaMath's worst case and We-Math's strict score are in "
            "each run's results.json.")


def six_table(board: Board) -> tuple[list[str], list[list[str]]] | None:
    """The table papers publish, where rows scored any of the six: a row per model and
    setting, a column per benchmark and the average; None where none did."""
    cols = [t for t in task_registry.REASONING6 if t in board.domains]
    if not cols:
        return None
    head = ["model", "preset", *(SIX_LABELS[t] for t in cols), "Avg"]
    rows = [[_label(r), r.preset, *(_fmt(r.cells.get(c), c) for c in [*cols, SIX])]
            for r in board.rows if any(c in r.cells for c in cols)]
    return head, rows


OFFICIAL_NOTE = ("Rows rescored from another harness's responses (vrbench rescore): "
                 "vrbench's accuracy and the official verdicts' over the same responses, in % "
                 "with 95% intervals, and how often the two agree (Cohen's kappa beside). "
                 "Each run's disagreements.jsonl lists the responses where they differ; for "
                 "MathVista and MATH-Vision, python bench/agreement.py sorts them by cause "
                 "(an official extraction that maps a refusal or an unanswered response onto "
                 "an option counts for the official side only).")


def official_table(board: Board) -> tuple[list[str], list[list[str]]] | None:
    """Per rescored row and task, vrbench's score beside the official one; None where no
    row was rescored."""
    if not any(r.official for r in board.rows):
        return None
    head = ["model", "task", "responses", "vrbench", "official", "agreement", "kappa"]

    def pct_ci(v, ci):
        return f"{100 * v:.1f}" + (f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else "")
    rows = [[_label(r), task, str(o["n"]), pct_ci(o["acc"], o["acc_ci95"]),
             pct_ci(o["official"], o["official_ci95"]),
             "-" if o["agreement"] is None else f"{100 * o['agreement']:.1f}",
             "-" if o["kappa"] is None else f"{o['kappa']:.2f}"]
            for r in board.rows for task, o in sorted(r.official.items())]
    return head, rows


def splits_sentence(board: Board) -> str:
    """Which split each domain's tasks were scored on, as the rows' runs were."""
    parts = [f"{DOMAIN_LABELS[d]} tasks on {' and '.join(board.splits[d])}"
             for d in DOMAINS if board.splits.get(d)]
    return ("Scored: " + ", ".join(parts) + ".") if parts else ""


def to_csv(board: Board) -> str:
    head = ["name", "step", "epoch", "preset", "setting", "n_seeds", "seeds"]
    for c in board.columns:
        head += [c, f"{c} std", f"{c} ci95 low", f"{c} ci95 high", f"{c} best",
                 f"{c} not significantly worse"]
    head.append("runs")
    f = io.StringIO()
    w = csv.writer(f)
    w.writerow(head)
    for r in board.rows:
        line = [csv_cell(r.name), r.step, r.epoch, csv_cell(r.preset), csv_cell(r.setting),
                len(r.seeds),
                " ".join(map(str, r.seeds))]
        for col in board.columns:
            c = r.cells.get(col)
            if c is None or c.mean is None:
                line += [""] * 6
                continue
            line += [c.mean, "" if c.std is None else c.std,
                     "" if c.ci is None else c.ci[0], "" if c.ci is None else c.ci[1],
                     int(c.best), int(c.tied)]
        line.append(csv_cell(";".join(printable(_rel(p, board.root)) for p in r.runs)))
        w.writerow(line)
    return f.getvalue()


# a fixed colour per average, so that every board draws ID, OOD and far alike
AVERAGE_COLOURS = dict(zip(AVERAGES, ("tab:blue", "tab:orange", "tab:green", "tab:purple"),
                           strict=True))


def figure(board: Board, path: Path) -> Path:
    """Per row, the domain averages (where the rows have none, as for published benchmarks
    alone, each task's accuracy) as horizontal bars: the mean over seeds, with a whisker of
    one standard deviation over seeds where there are several."""
    plt = pyplot()
    cols = [c for c in AVERAGES if any(c in r.cells for r in board.rows)] or [
        c for c in board.columns if c in board.domains][:6]
    colours = {c: AVERAGE_COLOURS.get(c, f"C{3 + i}") for i, c in enumerate(cols)}
    labels = [plain(_label(r) + ("" if r.preset == "greedy" else f" ({r.preset})"))
              for r in board.rows]
    present = [[c for c in cols if r.cells.get(c) is not None and r.cells[c].mean is not None]
               for r in board.rows]  # a row's bars sit together around its label
    per_row = max(1, *map(len, present))
    width = 0.8 / per_row
    fig, ax = plt.subplots(figsize=(8, 1.4 + 0.3 * len(board.rows) * per_row))
    labelled = set()
    for i, (r, here) in enumerate(zip(board.rows, present, strict=True)):
        for j, col in enumerate(here):
            c = r.cells[col]
            y = i + (j - (len(here) - 1) / 2) * width
            ax.barh(y, 100 * c.mean, height=width, color=colours[col],
                    label=None if col in labelled else col)
            labelled.add(col)
            if c.std is not None:
                ax.errorbar(100 * c.mean, y, xerr=100 * c.std, fmt="none", ecolor="black",
                            capsize=2, lw=1)
    ax.set_yticks(range(len(board.rows)), labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("accuracy % (bar: mean over seeds; whisker: ±1 std over seeds)")
    handles = dict(zip(*reversed(ax.get_legend_handles_labels()), strict=True))
    ax.legend([handles[c] for c in cols if c in handles], [c for c in cols if c in handles],
              loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    return save(fig, path)


MAIN_TASK_COLUMNS = 6  # where no row has an average: the task columns the main table shows


def main_columns(board: Board) -> list[str]:
    """The columns of the page's main table, narrow enough for a laptop: the averages and
    the behaviour columns (the tasks are in each row's details); with no average, the first
    task columns."""
    averages = [c for c in board.columns if c in AVERAGES]
    tasks = [c for c in board.columns if c in board.domains]
    behaviour = [c for c in board.columns if c not in AVERAGES and c not in board.domains]
    return (averages or tasks[:MAIN_TASK_COLUMNS]) + behaviour


def summary_lines(board: Board) -> list[str]:
    """What the board says in a few lines: its rows and, per average, the best row."""
    out = [f"{len(board.rows)} rows (a model under one preset and setting), "
           f"{len({r.name for r in board.rows})} models, "
           f"{max((len(r.seeds) for r in board.rows), default=0)} seeds at most."]
    for col in [c for c in board.columns if c in AVERAGES]:
        best = [r for r in board.rows if (c := r.cells.get(col)) is not None and c.best]
        for r in best:
            out.append(f"Best {col}: {_label(r)} ({r.preset}, {r.setting}), "
                       f"{_fmt(r.cells[col], col, marks=False)}.")
    return out


def to_html(board: Board, command: str, figure_png: Path | None,
            verdicts: list[str] = (), figures: list[str] = ()) -> str:
    """A self-contained page: the summary and the verdicts first, a main table that fits a
    laptop screen (sorted on a click on its header; each row's tasks and runs in a block
    that opens), links to the figures, the board's figure embedded."""
    cols = main_columns(board)
    head = ["model", "preset", "setting", "seeds", *cols, "details"]
    body = []
    for r in board.rows:
        tds = [f'<td data-v="{html.escape(_label(r))}">{html.escape(_label(r))}</td>',
               f'<td data-v="{html.escape(r.preset)}">{html.escape(r.preset)}</td>',
               f'<td data-v="{html.escape(r.setting)}">{html.escape(r.setting or "-")}</td>',
               f'<td data-v="{len(r.seeds)}">{len(r.seeds)}</td>']
        for col in cols:
            tds.append(_html_cell(r.cells.get(col), col))
        tasks = "".join(f"<li>{html.escape(col)}: "
                        f"{html.escape(_fmt(r.cells.get(col), col, marks=False))}"
                        "</li>" for col in board.columns if col in board.domains
                        and col in r.cells)
        runs = "<br>".join(html.escape(printable(_rel(p, board.root))) for p in r.runs)
        tds.append(f'<td data-v="" class=details><details><summary>tasks and runs</summary>'
                   f'<ul>{tasks}</ul><div class=runs>{runs}</div></details></td>')
        body.append("<tr>" + "".join(tds) + "</tr>")
    ths = "".join(f'<th data-col="{i}">{html.escape(h)}</th>' for i, h in enumerate(head))
    img = ""
    if figure_png is not None:
        b64 = base64.b64encode(figure_png.read_bytes()).decode()
        img = f'<img id="figure" alt="accuracy per row" src="data:image/png;base64,{b64}">'
    summary = [*(_md_html(v) for v in verdicts), *map(html.escape, summary_lines(board))]
    tables = ""
    for title, note, table in (("The reasoning six", SIX_NOTE, six_table(board)),
                               ("Against the official verdicts", OFFICIAL_NOTE,
                                official_table(board))):
        if table is not None:
            tables += _html_table(title, note, *table)
    page = string.Template(resources.files("harness.reports").joinpath(
        "templates/leaderboard.html").read_text(encoding="utf-8"))
    return page.substitute(
        command=html.escape(command), ths=ths, rows="\n".join(body), img=img, tables=tables,
        data=html.escape(json.dumps(board.columns)), splits=html.escape(splits_sentence(board)),
        summary="\n".join(f"<li>{line}</li>" for line in summary),
        figures="\n".join(f'<li><a href="{html.escape(f)}">{html.escape(f)}</a></li>'
                          for f in figures) or "<li>leaderboard.png (below)</li>")


def _html_table(title: str, note: str, head: list[str], rows: list[list[str]]) -> str:
    return (f"<h2>{html.escape(title)}</h2><p>{html.escape(note)}</p><table class=plain><thead>"
            "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr></thead>"
            "<tbody>" + "".join("<tr>" + "".join(
                f"<td>{html.escape(c.replace('**', ''))}</td>" for c in row) + "</tr>"
                for row in rows) + "</tbody></table>")


def _html_cell(c: Cell | None, col: str) -> str:
    v = "" if c is None or c.mean is None else c.mean
    cls = " class=best" if c and c.best else (" class=tied" if c and c.tied else "")
    title = "" if not c or c.ci is None else (
        f' title="95% interval {100 * c.ci[0]:.1f} to {100 * c.ci[1]:.1f}"')
    return f'<td data-v="{v}"{cls}{title}>{html.escape(_fmt(c, col, marks=False))}</td>'


def _md_html(text: str) -> str:
    """A verdict sentence's markdown (**bold**, `code`) as HTML, the rest escaped."""
    out = html.escape(text)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", out)


MARK = ".vrbench-leaderboard"  # in a folder the leaderboard wrote: what it wrote there


def write(root: str | Path, out: str | Path, command: str,
          presets: list[str] | None = None, bundle: bool = False,
          force: bool = False, verdicts: list[str] = ()) -> dict[str, Path]:
    """Write README.md, leaderboard.csv, leaderboard.png and index.html into `out`. With
    `bundle`, the runs behind the rows (config.json, results.json, samples.jsonl gzipped) are
    copied to `out/runs/`, so the published folder holds every sample its numbers come from.
    Without `force`, it writes only into a new folder or one a leaderboard without a bundle
    was written to: never over a folder it did not write, nor over a published one."""
    board = build(root, presets)
    out = Path(out)
    _claim(out, force)
    make_dirs(out)
    write_text_atomic(out / MARK, json.dumps({"command": command, "bundle": bundle}) + "\n",
                      out)
    if bundle:
        board = _bundle(board, out / "runs")
    png = figure(board, out / "leaderboard.png")
    paths = {"markdown": out / "README.md", "csv": out / "leaderboard.csv", "figure": png,
             "html": out / "index.html"}
    write_text_atomic(paths["markdown"], to_markdown(board, command, png.name), out)
    write_text_atomic(paths["csv"], to_csv(board), out)
    figures = sorted(str(p.relative_to(out)) for p in out.rglob("*.png")
                     if "runs" not in p.relative_to(out).parts)
    write_text_atomic(paths["html"], to_html(board, command, png, verdicts, figures), out)
    return paths


def _claim(out: Path, force: bool) -> None:
    """Refuse, in one sentence, to write over what is not an unpublished leaderboard."""
    if force or not out.is_dir() or not any(out.iterdir()):
        return
    try:
        mark = json.loads(no_link(out / MARK).read_text())
    except (OSError, ValueError):
        mark = None
    if not isinstance(mark, dict):
        raise VrbenchError(f"{out} holds files vrbench leaderboard did not write; choose "
                           "another --out, or pass --force to write there.")
    if mark.get("bundle"):
        raise VrbenchError(f"{out} is a published leaderboard (its runs are bundled); choose "
                           "another --out, or pass --force to replace it.")


def _bundle(board: Board, dest: Path) -> Board:
    """Copy the rows' run files under `dest` (replacing an earlier bundle whole) and point
    the rows at the copies."""
    tmp = dest.with_name(f".{dest.name}.tmp")
    remove_tree(tmp, dest.parent)  # a kill's leftover; a link planted there is refused
    no_link(dest, dest.parent)
    try:
        _copy_runs(board, tmp)
    except BaseException:
        remove_tree(tmp, dest.parent)  # nothing half-published
        raise
    remove_tree(dest, dest.parent)
    move(tmp, dest, dest.parent)
    rows = [replace(r, runs=[dest / _rel(p, board.root) for p in r.runs]) for r in board.rows]
    return replace(board, root=dest.parent, rows=rows)


def _copy_runs(board: Board, tmp: Path) -> None:
    """The rows' run files, regular files of their runs only (a link is refused), under
    `tmp`."""
    for row in board.rows:
        for run in row.runs:
            RunDir(run).copy_to(tmp / _rel(run, board.root))

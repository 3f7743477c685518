"""Leaderboard tables from the results store: markdown, CSV and one self-contained HTML page.

One row per (run name, checkpoint step, generation preset). A row's cells are per-task
accuracies, the ID and OOD macro averages, mean response length and reflection ratio.
With one seed a cell shows the accuracy and its 95% interval (Wilson for a task, the
Agresti-Coull bound for an average); with several seeds, the mean over seeds +- its std and
a t interval. Per column the best mean is marked, and so is every entry whose difference
from it is not significant at 5% (a two-sided test on the two means' standard errors,
unpaired and so conservative; `vrbench compare` does the paired test of two runs).

A second table follows the paper's reporting over training: per run name, the mean and
the max over checkpoints of the seed-mean ID and OOD averages.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import os
import statistics
import string
from collections import defaultdict
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

from harness import stats
from harness.reports.plots import plain, pyplot, save
from harness.runs.index import Entry, checkpoint_results, index, printable
from harness.runs.metrics import TRACKED, summarize_groups
from harness.runs.rundir import CONFIG, SAMPLES, RunDir
from harness.runs.store import move, no_link, remove_tree, write_text_atomic
from tasks import DOMAIN_LABELS, DOMAINS
from vrbench.errors import VrbenchError


@dataclass
class Cell:
    mean: float | None
    se: float | None = None
    ci: tuple[float, float] | None = None
    std: float | None = None
    n: int = 1  # seeds behind the mean
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
    seeds: list[int]
    cells: dict[str, Cell] = field(default_factory=dict)
    runs: list[Path] = field(default_factory=list)


@dataclass
class Board:
    root: Path
    columns: list[str]  # cell keys in display order (rows also hold an "ID - OOD" cell)
    domains: dict[str, str]  # task -> domain
    rows: list[Row]
    over_training: list[dict]
    baseline: dict[str, float]  # column -> the accuracy of always giving the most common answer


AVERAGES = tuple(f"{DOMAIN_LABELS[d]} avg" for d in DOMAINS)  # "ID avg", "OOD avg", "Far avg"
COLUMNS = tuple(m for m in TRACKED if m.column)  # behaviour columns: means over the tasks
# with the task columns, ratios in [0, 1]
_RATIO = (*AVERAGES, *(m.column for m in COLUMNS if m.ratio))


def _task_cell_value(r: dict) -> tuple:
    return (r["acc"], math.sqrt(stats.agresti_coull_var(r["acc"], r["n_samples"])),
            r.get("acc_ci95"))


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
        groups[(e.name, e.step, e.preset)][e.seed].append(e)
    domains: dict[str, str] = {}
    baselines: dict[str, float] = {}
    rows = []
    for (name, step, preset), by_seed in groups.items():
        per_seed = {}
        runs: list[Path] = []
        for seed, es in sorted(by_seed.items()):
            res, used = checkpoint_results(es)
            if res:
                per_seed[seed] = res
                runs += used
        if not per_seed:
            continue
        values: dict[str, list[tuple]] = defaultdict(list)
        for res in per_seed.values():
            for task, (r, dom) in res.items():
                domains[task] = dom
                values[task].append(_task_cell_value(r))
            groups_ = summarize_groups({t: r for t, (r, _) in res.items()},
                                       {t: d for t, (_, d) in res.items()})
            for dom, g in groups_.items():
                values[f"{DOMAIN_LABELS[dom]} avg"].append((g["acc"], g["acc_stderr"],
                                                            g["acc_ci95"]))
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
        cells = {k: Cell.over_seeds(v, (0, 1) if k in _RATIO or k in domains else None)
                 for k, v in values.items()}
        rows.append(Row(name, step, epochs[0] if epochs else None, preset, sorted(per_seed),
                        cells, runs))
    rows.sort(key=lambda r: (r.name, r.step or 0, r.preset))
    columns = [c for dom in DOMAINS for c in
               [*(t for t in sorted(domains) if domains[t] == dom), f"{DOMAIN_LABELS[dom]} avg"]
               ] + [m.column for m in COLUMNS]
    columns = [c for c in columns if any(c in r.cells for r in rows)]
    for col in columns:
        if col not in {m.column for m in COLUMNS}:  # accuracy columns: higher is better
            _mark_best(rows, col)
    baseline = dict(baselines)
    for dom in DOMAINS:
        xs = [b for t, b in baselines.items() if domains[t] == dom]
        if xs:
            baseline[f"{DOMAIN_LABELS[dom]} avg"] = statistics.fmean(xs)
    return Board(Path(root), columns, domains, rows, _over_training(rows), baseline)


def _mark_best(rows: list[Row], col: str) -> None:
    cells = [r.cells[col] for r in rows if col in r.cells and r.cells[col].mean is not None]
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
    """Per (name, preset): mean and max over checkpoints of the seed-mean averages."""
    out = []
    by_name: dict[tuple, list[Row]] = defaultdict(list)
    for r in rows:
        by_name[(r.name, r.preset)].append(r)
    for (name, preset), rs in by_name.items():
        item = {"name": name, "preset": preset, "checkpoints": len(rs)}
        for col in ("ID avg", "OOD avg"):
            xs = [r.cells[col].mean for r in rs if col in r.cells]
            item[col] = (statistics.fmean(xs), max(xs)) if xs else None
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
    head = ["model", "preset", "seeds", *board.columns]
    lines = [
        "# Leaderboard", "",
        f"Regenerate: {md_code(command)}", "",
        "Accuracy in %. One seed: accuracy [95% interval]; several seeds: mean ± std over "
        "seeds. ID tasks are scored on their validation split, OOD tasks on test. **Bold**: "
        "the best in its column; ≈: not significantly different from it (5%, two-sided, "
        "unpaired). `length`: mean response tokens; `reflection`: share of responses "
        "with a reflection word.", "",
        "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in board.rows:
        lines.append("| " + " | ".join([md(_label(r)), md(r.preset), str(len(r.seeds))]
                                       + [_fmt(r.cells.get(c), c) for c in board.columns])
                     + " |")
    if board.baseline:
        lines.append("| always the most common answer | - | - | " + " | ".join(
            _fmt(Cell(board.baseline[c]), c) if c in board.baseline else ""
            for c in board.columns) + " |")
    lines += ["", "## Over training", "",
              "Mean and max over checkpoints of the seed-mean averages, as in the paper's tables.",
              "", "| model | preset | checkpoints | ID mean | ID max | OOD mean | OOD max |",
              "|---|---|---|---|---|---|---|"]
    for t in board.over_training:
        cells = [f"{100 * v:.1f}" for col in ("ID avg", "OOD avg")
                 for v in (t[col] or (None, None)) if v is not None]
        cells += ["-"] * (4 - len(cells))
        lines.append(f"| {md(t['name'])} | {md(t['preset'])} | {t['checkpoints']} | "
                     + " | ".join(cells) + " |")
    if figure:
        lines += ["", f"![ID and OOD accuracy]({figure})"]
    lines += ["", "## Runs", "", f"Run directories (relative to {md_code(board.root)}) behind "
              f"each row: `{CONFIG}` says how, `{SAMPLES}` (gzipped in a bundle) holds "
              "every response.", ""]
    for r in board.rows:
        lines.append(f"- {md(_label(r))} ({md(r.preset)}): "
                     + ", ".join(md_code(printable(_rel(p, board.root))) for p in r.runs))
    return "\n".join(lines) + "\n"


def to_csv(board: Board) -> str:
    head = ["name", "step", "epoch", "preset", "n_seeds", "seeds"]
    for c in board.columns:
        head += [c, f"{c} std", f"{c} ci95 low", f"{c} ci95 high", f"{c} best",
                 f"{c} not significantly worse"]
    head.append("runs")
    f = io.StringIO()
    w = csv.writer(f)
    w.writerow(head)
    for r in board.rows:
        line = [csv_cell(r.name), r.step, r.epoch, csv_cell(r.preset), len(r.seeds),
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


def figure(board: Board, path: Path) -> Path:
    """ID and OOD averages per row (error bars: std over seeds) as a PNG."""
    plt = pyplot()
    import pandas as pd
    import seaborn as sns
    data = [{"model": plain(_label(r) + ("" if r.preset == "greedy" else f" ({r.preset})")),
             "domain": col.split()[0], "accuracy %": 100 * c.mean}
            for r in board.rows for col in ("ID avg", "OOD avg")
            if (c := r.cells.get(col)) is not None and c.mean is not None]
    height = 1.2 + 0.45 * len(board.rows)
    fig, ax = plt.subplots(figsize=(7, height))
    df = pd.DataFrame(data)
    sns.barplot(df, y="model", x="accuracy %", hue="domain", ax=ax, errorbar=None)
    for r_i, r in enumerate(board.rows):
        for d_i, col in enumerate(("ID avg", "OOD avg")):
            c = r.cells.get(col)
            if c is not None and c.std is not None:
                ax.errorbar(100 * c.mean, r_i + (d_i - 0.5) * 0.4, xerr=100 * c.std,
                            fmt="none", ecolor="black", capsize=2, lw=1)
    ax.set_ylabel("")
    return save(fig, path)


def to_html(board: Board, command: str, figure_png: Path | None) -> str:
    """A self-contained page: the table sorts on a click on its header, the figure is
    embedded. Each row links nothing outside the page; its run directories are listed."""
    head = ["model", "step", "preset", "seeds", *board.columns, "runs"]
    body = []
    for r in board.rows:
        tds = [f'<td data-v="{html.escape(r.name)}">{html.escape(r.name)}</td>',
               f'<td data-v="{r.step if r.step is not None else -1}">'
               f'{"" if r.step is None else r.step}</td>',
               f'<td data-v="{html.escape(r.preset)}">{html.escape(r.preset)}</td>',
               f'<td data-v="{len(r.seeds)}">{len(r.seeds)}</td>']
        for col in board.columns:
            c = r.cells.get(col)
            v = "" if c is None or c.mean is None else c.mean
            cls = " class=best" if c and c.best else (" class=tied" if c and c.tied else "")
            title = "" if not c or c.ci is None else (
                f' title="95% interval {100 * c.ci[0]:.1f} to {100 * c.ci[1]:.1f}"')
            tds.append(f'<td data-v="{v}"{cls}{title}>'
                       f'{html.escape(_fmt(c, col, marks=False))}</td>')
        runs = "<br>".join(html.escape(printable(_rel(p, board.root))) for p in r.runs)
        tds.append(f'<td data-v="" class=runs>{runs}</td>')
        body.append("<tr>" + "".join(tds) + "</tr>")
    ths = "".join(f'<th data-col="{i}">{html.escape(h)}</th>' for i, h in enumerate(head))
    img = ""
    if figure_png is not None:
        b64 = base64.b64encode(figure_png.read_bytes()).decode()
        img = f'<img id="figure" alt="ID and OOD accuracy" src="data:image/png;base64,{b64}">'
    page = string.Template(resources.files("harness.reports").joinpath(
        "templates/leaderboard.html").read_text(encoding="utf-8"))
    return page.substitute(command=html.escape(command), ths=ths, rows="\n".join(body),
                           img=img, data=html.escape(json.dumps(board.columns)))


def write(root: str | Path, out: str | Path, command: str,
          presets: list[str] | None = None, bundle: bool = False) -> dict[str, Path]:
    """Write README.md, leaderboard.csv, leaderboard.png and index.html into `out`. With
    `bundle`, the runs behind the rows (config.json, results.json, samples.jsonl gzipped) are
    copied to `out/runs/`, so the published folder holds every sample its numbers come from."""
    board = build(root, presets)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if bundle:
        board = _bundle(board, out / "runs")
    png = figure(board, out / "leaderboard.png")
    paths = {"markdown": out / "README.md", "csv": out / "leaderboard.csv", "figure": png,
             "html": out / "index.html"}
    write_text_atomic(paths["markdown"], to_markdown(board, command, png.name), out)
    write_text_atomic(paths["csv"], to_csv(board), out)
    write_text_atomic(paths["html"], to_html(board, command, png), out)
    return paths


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

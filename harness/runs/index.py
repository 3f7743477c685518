"""The index: every finished run directory under a root, as an `Entry`.

The store is the directory tree itself. Each `vrbench eval` (and each checkpoint scored
during training) owns one run directory, written under a lock, with an atomic
`results.json`; nothing is shared between runs, so adding runs never rewrites an earlier
one and concurrent writers cannot lose each other's work. The index is read from the tree
on demand: one `Entry` per run directory that holds a `results.json`.

An entry's *name* groups checkpoints into rows of a leaderboard: the run name a vrbench
trainer recorded in the checkpoint (`vrbench_checkpoint.json`), or else the model
directory's name. Its *seed* is the training seed for trained checkpoints, else the
evaluation's sampling seed.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.runs.provenance import NUMBER, check_checkpoint_info, typed
from harness.runs.rundir import RunDir
from tasks import DOMAINS, EVAL_SPLIT
from vrbench.errors import VrbenchError

_METRIC_FIELDS = ("acc", "majority_baseline", "length_mean", "reflection_ratio")


def _check_results(res, where: Path) -> None:
    """The parts of a results.json that the index, leaderboard and analysis read, with their
    types: one malformed run must not take the others down."""
    if not isinstance(res, dict) or not isinstance(res.get("config"), dict):
        raise VrbenchError(f"{where} is not a vrbench results file.")
    cfg = res["config"]
    tasks, results = cfg.get("tasks"), res.get("results")
    if not (isinstance(tasks, dict) and isinstance(cfg.get("generation"), dict)
            and isinstance(results, dict)):
        raise VrbenchError(f"{where} is not a vrbench results file (tasks, generation or "
                           "results missing).")
    if cfg.get("checkpoint") is not None:
        check_checkpoint_info(cfg["checkpoint"], f"{where} (checkpoint)")
    for name in ("model", "preset", "split", "created"):
        if not typed(cfg.get(name), (str,)):
            raise VrbenchError(f"{where}: config {name} is not a string.")
    if not typed(cfg["generation"].get("seed"), (int,)):
        raise VrbenchError(f"{where}: the generation seed is not an integer.")
    for task, r in results.items():
        t = tasks.get(task)
        if not isinstance(t, dict) or t.get("domain") not in DOMAINS:
            raise VrbenchError(f"{where}: task {task!r} has no domain in the config.")
        if not isinstance(r, dict) or not typed(r.get("n_samples"), (int,), optional=False):
            raise VrbenchError(f"{where}: the results of {task!r} are malformed.")
        for key in _METRIC_FIELDS:
            if not typed(r.get(key), NUMBER):
                raise VrbenchError(f"{where}: {key} of {task!r} is not a number.")
        ci = r.get("acc_ci95")
        if ci is not None and not (isinstance(ci, list) and len(ci) == 2
                                   and all(typed(x, NUMBER, False) for x in ci)):
            raise VrbenchError(f"{where}: acc_ci95 of {task!r} is not a pair of numbers.")


# -- the index ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    run_dir: Path
    name: str
    trainer: str | None
    step: int | None
    epoch: float | None
    seed: int
    model: str
    model_sha256: str | None
    preset: str
    split: str
    tasks: dict  # name -> {version, domain, split, n_samples, data_sha256, answer_type}
    results: dict  # task -> metrics, as in results.json
    created: str | None
    base_model: str | None = None  # the checkpoint a trainer started from
    setting: str = ""  # the sample limit and token budget ("" for a rescored run)


# control characters and bidirectional formatting (U+202E makes "abc\u202egnp.exe" read as
# "abcexe.png"): shown escaped wherever a name from a run is displayed or published
_UNSEEN = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069"
                     "\ufeff]")


def printable(text: str) -> str:
    """`text` with control and bidirectional-formatting characters escaped (\\n, \\u202e),
    so a name cannot split a row or reorder what a reader sees."""
    return _UNSEEN.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def load_entry(run_dir: Path) -> Entry:
    """The index entry of one run directory; raises VrbenchError if it is not a finished
    vrbench run."""
    res = RunDir(run_dir).results()
    _check_results(res, run_dir)
    cfg = res["config"]
    ck = cfg.get("checkpoint") or {}
    model = cfg.get("model", "")
    return Entry(
        run_dir=run_dir, name=printable(ck.get("name") or _model_name(model)),
        trainer=ck.get("trainer"),
        step=ck.get("step"), epoch=ck.get("epoch"),
        seed=ck["seed"] if ck.get("seed") is not None else cfg["generation"].get("seed", 0),
        model=model, model_sha256=cfg.get("model_sha256"),
        preset=printable(cfg.get("preset") or preset_of(cfg["generation"])),
        split=cfg.get("split") or "by domain",
        tasks=cfg["tasks"], results=res["results"], created=cfg.get("created"),
        base_model=_base_model(model, ck.get("base_model")), setting=setting_of(cfg))


def setting_of(cfg: dict) -> str:
    """What else makes two runs of one model and preset different experiments: how many
    samples of each task, and how many tokens a response may take."""
    if not cfg["generation"]:
        return ""
    limit = cfg.get("limit")
    return (f"{limit if isinstance(limit, int) else 'all'} samples, "
            f"{cfg['generation'].get('max_new_tokens')} tokens")


def preset_of(generation: dict) -> str:
    """A run's generation settings by name: the preset they are (a plain greedy evaluation is
    "greedy", as the trainers' are), or what they are ("T=0.7, top-p 0.95, n=4")."""
    from harness.runs.config import PRESETS
    for name, settings in PRESETS.items():
        if all(generation.get(k) == v for k, v in settings.items()):
            return name
    if not generation:
        return "custom"
    return (f"T={generation.get('temperature')}, top-p {generation.get('top_p')}, "
            f"n={generation.get('n')}")


def tasks_label(names: list[str]) -> str:
    """A run's task set in a few words: its suite's name where it is one whole suite (or
    several), else its first tasks and how many more."""
    import tasks
    suites = [s for s in DOMAINS if set(tasks.names(s)) <= set(names)]
    if suites and set(names) == {n for s in suites for n in tasks.names(s)}:
        return ",".join(suites)
    return ",".join(names) if len(names) <= 3 else f"{','.join(names[:2])} +{len(names) - 2} more"


def _base_model(model: str, base: str | None) -> str | None:
    """The checkpoint a trainer started from: recorded relative to the evaluated checkpoint
    (it starts with ".."), made absolute as the evaluation's model path is; a Hub id, or an
    older checkpoint's absolute path, as recorded."""
    if base is None or not base.startswith(".") or not os.path.isabs(model):
        return base
    return os.path.normpath(os.path.join(model, base))


def _model_name(model: str) -> str:
    p = Path(model.rstrip("/"))
    # a trainer's checkpoint-N directory is named by its run directory
    return p.parent.name if p.name.startswith("checkpoint-") and p.parent.name else p.name


def index(root: str | Path) -> list[Entry]:
    """Every finished run under `root`, in a stable order. Runs not finished (no
    results.json yet) are not listed; a damaged results.json is named on stderr and left out."""
    root = Path(root)
    if not root.is_dir():
        raise VrbenchError(f"results root {root} does not exist.")
    entries = []
    for link in sorted(p for p in root.rglob("*") if p.is_symlink() and p.is_dir()):
        print(f"vrbench: warning: skipping {link}: a symbolic link to a folder (runs are read "
              "only where they are).", file=sys.stderr)
    for run in RunDir.finished_under(root):  # never descends into a linked folder
        try:
            entries.append(load_entry(run))
        except (VrbenchError, OSError) as e:  # one bad run never takes the index down
            print(f"vrbench: warning: skipping {run}: {e}", file=sys.stderr)
    return sorted(entries, key=lambda e: (e.name, e.step or 0, e.preset, e.seed,
                                          str(e.run_dir)))


def checkpoint_results(entries: list[Entry]) -> tuple[dict, list[Path]]:
    """Merge one seed's runs of one checkpoint into task -> (results, domain), each task taken
    from its preferred split (ID validation, OOD test), then from the run with the most
    samples; and the run directories used."""
    chosen: dict[str, tuple] = {}
    for e in entries:
        for task, r in e.results.items():
            if r.get("acc") is None:
                continue
            dom = e.tasks[task]["domain"]
            split = e.tasks[task].get("split") or e.split
            rank = (split == EVAL_SPLIT.get(dom), r["n_samples"], e.created or "")
            if task not in chosen or rank > chosen[task][0]:
                chosen[task] = (rank, r, dom, e.run_dir)
    return ({t: (r, d) for t, (_, r, d, _) in chosen.items()},
            sorted({run for *_, run in chosen.values()}))

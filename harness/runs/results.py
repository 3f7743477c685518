"""The results store: every run directory under a root, indexed.

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

import hashlib
import json
import platform
import re
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from harness.runs.store import run_file
from tasks import DOMAINS, EVAL_SPLIT
from vrbench.errors import VrbenchError

CHECKPOINT_INFO = "vrbench_checkpoint.json"  # written by the trainers into each checkpoint
PACKAGES = ("vrbench", "torch", "transformers", "tokenizers", "datasets", "pillow",
            "math-verify", "numpy")


# -- provenance: where a run's model and code came from ---------------------------------------
def checkpoint_info(model: str) -> dict | None:
    """What a vrbench trainer recorded about the checkpoint (run name, trainer, step, epoch,
    seed, base model), or None for any other model."""
    path = Path(model) / CHECKPOINT_INFO
    try:
        info = json.loads(path.read_text()) if path.is_file() else None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise VrbenchError(f"{path} is not valid JSON; the checkpoint is damaged.") from e
    if info is not None:
        _check_checkpoint_info(info, path)
    return info


_NUMBER = (int, float)
_CHECKPOINT_FIELDS = {"name": (str,), "trainer": (str,), "step": (int,), "epoch": _NUMBER,
                      "seed": (int,), "base_model": (str,)}
_METRIC_FIELDS = ("acc", "majority_baseline", "length_mean", "reflection_ratio")


def _is(value, types: tuple, optional: bool = True) -> bool:
    return (value is None and optional) or (isinstance(value, types)
                                            and not isinstance(value, bool))


def _check_checkpoint_info(info, where) -> None:
    """What a trainer records about a checkpoint: a JSON object of known fields and types."""
    if not isinstance(info, dict):
        raise VrbenchError(f"{where} is not a JSON object; the checkpoint is damaged.")
    for key, types in _CHECKPOINT_FIELDS.items():
        if not _is(info.get(key), types):
            raise VrbenchError(f"{where}: {key} is {info.get(key)!r}, not a "
                               f"{' or '.join(t.__name__ for t in types)}; the checkpoint "
                               "is damaged.")


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
        _check_checkpoint_info(cfg["checkpoint"], f"{where} (checkpoint)")
    for name in ("model", "preset", "split", "created"):
        if not _is(cfg.get(name), (str,)):
            raise VrbenchError(f"{where}: config {name} is not a string.")
    if not _is(cfg["generation"].get("seed"), (int,)):
        raise VrbenchError(f"{where}: the generation seed is not an integer.")
    for task, r in results.items():
        t = tasks.get(task)
        if not isinstance(t, dict) or t.get("domain") not in DOMAINS:
            raise VrbenchError(f"{where}: task {task!r} has no domain in the config.")
        if not isinstance(r, dict) or not _is(r.get("n_samples"), (int,), optional=False):
            raise VrbenchError(f"{where}: the results of {task!r} are malformed.")
        for key in _METRIC_FIELDS:
            if not _is(r.get(key), _NUMBER):
                raise VrbenchError(f"{where}: {key} of {task!r} is not a number.")
        ci = r.get("acc_ci95")
        if ci is not None and not (isinstance(ci, list) and len(ci) == 2
                                   and all(_is(x, _NUMBER, False) for x in ci)):
            raise VrbenchError(f"{where}: acc_ci95 of {task!r} is not a pair of numbers.")


def model_sha256(path: str) -> str | None:
    """sha256 over a local checkpoint's files (names and bytes); None for a Hub id."""
    p = Path(path)
    if not p.is_dir():
        return None
    h = hashlib.sha256()
    for f in sorted(x for x in p.rglob("*") if x.is_file() and not x.name.startswith(".")):
        h.update(str(f.relative_to(p)).encode())
        with open(f, "rb") as fh:
            while chunk := fh.read(1 << 23):
                h.update(chunk)
    return h.hexdigest()


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=10)
        if out.returncode != 0:
            return None
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions() -> dict:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


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
    try:
        res = json.loads(run_file(run_dir / "results.json", run_dir).read_text())
    except FileNotFoundError as e:
        raise VrbenchError(f"{run_dir} has no results.json; is it a finished vrbench run?"
                           ) from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise VrbenchError(f"{run_dir / 'results.json'} is not valid JSON.") from e
    _check_results(res, run_dir / "results.json")
    cfg = res["config"]
    ck = cfg.get("checkpoint") or {}
    model = cfg.get("model", "")
    return Entry(
        run_dir=run_dir, name=printable(ck.get("name") or _model_name(model)),
        trainer=ck.get("trainer"),
        step=ck.get("step"), epoch=ck.get("epoch"),
        seed=ck["seed"] if ck.get("seed") is not None else cfg["generation"].get("seed", 0),
        model=model, model_sha256=cfg.get("model_sha256"),
        preset=printable(cfg.get("preset") or "custom"), split=cfg.get("split", ""),
        tasks=cfg["tasks"], results=res["results"], created=cfg.get("created"),
        base_model=ck.get("base_model"))


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
    for res in sorted(root.rglob("results.json")):  # never descends into a linked folder
        try:
            entries.append(load_entry(res.parent))
        except (VrbenchError, OSError) as e:  # one bad run never takes the index down
            print(f"vrbench: warning: skipping {res.parent}: {e}", file=sys.stderr)
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
            rank = (e.split == EVAL_SPLIT.get(dom), r["n_samples"], e.created or "")
            if task not in chosen or rank > chosen[task][0]:
                chosen[task] = (rank, r, dom, e.run_dir)
    return ({t: (r, d) for t, (_, r, d, _) in chosen.items()},
            sorted({run for *_, run in chosen.values()}))

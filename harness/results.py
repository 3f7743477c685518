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

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.errors import VrbenchError


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

    def as_row(self) -> dict:
        return {"run_dir": str(self.run_dir), "name": self.name, "trainer": self.trainer,
                "step": self.step, "epoch": self.epoch, "seed": self.seed,
                "model": self.model, "model_sha256": self.model_sha256,
                "preset": self.preset, "split": self.split,
                "tasks": {t: v["version"] for t, v in self.tasks.items()},
                "created": self.created, "base_model": self.base_model}


def load_entry(run_dir: Path) -> Entry:
    """The index entry of one run directory; raises VrbenchError if it is not a finished
    vrbench run."""
    try:
        res = json.loads((run_dir / "results.json").read_text())
    except FileNotFoundError as e:
        raise VrbenchError(f"{run_dir} has no results.json; is it a finished vrbench run?"
                           ) from e
    except json.JSONDecodeError as e:
        raise VrbenchError(f"{run_dir / 'results.json'} is not valid JSON.") from e
    cfg = res.get("config") or {}
    if "tasks" not in cfg or "generation" not in cfg:
        raise VrbenchError(f"{run_dir / 'results.json'} is not a vrbench results file.")
    ck = cfg.get("checkpoint") or {}
    model = cfg.get("model", "")
    return Entry(
        run_dir=run_dir, name=ck.get("name") or _model_name(model), trainer=ck.get("trainer"),
        step=ck.get("step"), epoch=ck.get("epoch"),
        seed=ck["seed"] if "seed" in ck else cfg["generation"].get("seed", 0),
        model=model, model_sha256=cfg.get("model_sha256"),
        preset=cfg.get("preset") or "custom", split=cfg.get("split", ""),
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
    for res in sorted(root.rglob("results.json")):
        try:
            entries.append(load_entry(res.parent))
        except VrbenchError as e:
            print(f"vrbench: skipping {res.parent}: {e}", file=sys.stderr)
    return sorted(entries, key=lambda e: (e.name, e.step or 0, e.preset, e.seed,
                                          str(e.run_dir)))

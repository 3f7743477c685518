"""Experiment trackers (`--report-to tensorboard|wandb`): every train-step field a trainer
logs, and every checkpoint evaluation (the rows of `dynamics.jsonl`), also go there. Both
are optional dependencies (`pip install -e '.[trackers]'`), imported only when asked for.

tensorboard  event files in OUT/tensorboard (`tensorboard --logdir OUT/tensorboard`)
wandb        a run named after the training run, its configuration attached; W&B's own
             settings apply (WANDB_PROJECT, default "vrbench"; WANDB_MODE=offline keeps it
             on disk, in OUT/wandb); online, its key and its server are checked before the
             model loads (`preflight`), so a missing key or an unreachable server is one
             sentence at once, not a traceback or a stall after the model loads

Fields are logged as `train/<field>` at the optimizer step, and each evaluation as
`eval/<task>/<preset>/<metric>` at the checkpoint's step; numbers only (nested mappings,
like the reflection words' frequencies, as `<field>/<key>`).
"""

from __future__ import annotations

import hashlib
import math
import netrc
import os
import socket
import urllib.parse
from pathlib import Path

from harness.runs.store import no_link
from vrbench.errors import VrbenchError

TRACKERS = ("none", "tensorboard", "wandb")
WANDB_HOST = "https://api.wandb.ai"


def preflight(kind: str) -> None:
    """Refuse, in one sentence, a tracker that cannot work: W&B online without a key (the
    environment's WANDB_API_KEY, or `wandb login`'s entry in ~/.netrc) or with its server out
    of reach (a few seconds, not the client's minutes of retries)."""
    if kind != "wandb" or os.environ.get("WANDB_MODE", "").lower() in (
            "offline", "disabled", "dryrun"):
        return
    url = urllib.parse.urlparse(os.environ.get("WANDB_BASE_URL", WANDB_HOST))
    host = url.hostname or ""
    try:
        saved = netrc.netrc().authenticators(host)
    except (OSError, netrc.NetrcParseError):
        saved = None
    if not os.environ.get("WANDB_API_KEY") and not saved:
        raise VrbenchError(f"--report-to wandb has no API key for {host} (WANDB_API_KEY or "
                           "`wandb login`); set one, or WANDB_MODE=offline to log to disk.")
    try:
        socket.create_connection((host, url.port or (443 if url.scheme == "https" else 80)),
                                 timeout=5).close()
    except OSError as e:
        raise VrbenchError(f"--report-to wandb cannot reach {host} ({e.strerror or e}); set "
                           "WANDB_MODE=offline to log to disk (`wandb sync` later).") from e


def scalars(row: dict, prefix: str) -> dict[str, float]:
    """The numbers of a logged row, flattened under `prefix`."""
    out = {}
    for key, value in row.items():
        name = f"{prefix}/{key}"
        if isinstance(value, dict):
            out |= scalars(value, name)
        elif isinstance(value, bool | int | float) and math.isfinite(float(value)):
            out[name] = float(value)
    return out


class Tracker:
    """Sends scalars to TensorBoard or W&B; `train` and `evaluation` take the trainers'
    rows as they write them."""

    def __init__(self, kind: str, out: Path, name: str, config: dict):
        self.kind = kind
        try:
            if kind == "tensorboard":
                from torch.utils.tensorboard import SummaryWriter
                self.writer = SummaryWriter(log_dir=str(no_link(out / "tensorboard", out)))
            else:
                import wandb
                run_id = hashlib.sha256(str(out.resolve()).encode()).hexdigest()[:16]
                no_link(out / "wandb", out)
                self.writer = wandb.init(project=os.environ.get("WANDB_PROJECT", "vrbench"),
                                         name=name, id=run_id, resume="allow", dir=str(out),
                                         config=config)
        except ImportError as e:
            raise VrbenchError(f"--report-to {kind} needs the {kind} package (pip install -e "
                               f"'.[trackers]'): {e}.") from e

    def log(self, values: dict[str, float], step: int) -> None:
        if not values:
            return
        if self.kind == "tensorboard":
            for name, v in values.items():
                self.writer.add_scalar(name, v, step)
            self.writer.flush()
        else:
            self.writer.log(values, step=step)

    def train(self, row: dict) -> None:
        self.log(scalars({k: v for k, v in row.items() if k != "step"}, "train"), row["step"])

    def evaluation(self, rows: list[dict]) -> None:
        for step in sorted({r["step"] for r in rows}):
            values = {}
            for r in rows:
                if r["step"] == step:
                    skip = ("step", "epoch", "seed", "task", "preset", "checkpoint", "trainer",
                            "split", "domain", "run_dir", "acc_ci95")
                    values |= scalars({k: v for k, v in r.items() if k not in skip},
                                      f"eval/{r['task']}/{r['preset']}")
            self.log(values, step)

    def close(self) -> None:
        if self.kind == "tensorboard":
            self.writer.close()
        else:
            self.writer.finish()


def open_tracker(kind: str, out: Path, name: str, config: dict) -> Tracker | None:
    """The tracker of `--report-to` (None for none)."""
    return None if kind == "none" else Tracker(kind, out, name, config)

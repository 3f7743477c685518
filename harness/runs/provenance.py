"""Where a run's model and code came from: what a vrbench trainer recorded in its checkpoint,
a checkpoint's fingerprint, the package versions and the git commit."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from vrbench.errors import VrbenchError

CHECKPOINT_INFO = "vrbench_checkpoint.json"  # written by the trainers into each checkpoint
PACKAGES = ("vrbench", "torch", "transformers", "tokenizers", "datasets", "pillow",
            "math-verify", "numpy")


def checkpoint_info(model: str) -> dict | None:
    """What a vrbench trainer recorded about the checkpoint (run name, trainer, step, epoch,
    seed, base model), or None for any other model."""
    path = Path(model) / CHECKPOINT_INFO
    try:
        info = json.loads(path.read_text()) if path.is_file() else None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise VrbenchError(f"{path} is not valid JSON; the checkpoint is damaged.") from e
    if info is not None:
        check_checkpoint_info(info, path)
    return info


NUMBER = (int, float)
_CHECKPOINT_FIELDS = {"name": (str,), "trainer": (str,), "step": (int,), "epoch": NUMBER,
                      "seed": (int,), "base_model": (str,)}


def typed(value, types: tuple, optional: bool = True) -> bool:
    """`value` is of `types` (a bool is no number), or None where that is allowed."""
    return (value is None and optional) or (isinstance(value, types)
                                            and not isinstance(value, bool))


def check_checkpoint_info(info, where) -> None:
    """What a trainer records about a checkpoint: a JSON object of known fields and types."""
    if not isinstance(info, dict):
        raise VrbenchError(f"{where} is not a JSON object; the checkpoint is damaged.")
    for key, types in _CHECKPOINT_FIELDS.items():
        if not typed(info.get(key), types):
            raise VrbenchError(f"{where}: {key} is {info.get(key)!r}, not a "
                               f"{' or '.join(t.__name__ for t in types)}; the checkpoint "
                               "is damaged.")


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

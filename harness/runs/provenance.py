"""Where a run's model and code came from: what a vrbench trainer recorded in its checkpoint,
a checkpoint's fingerprint, the package versions and the git commit."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from harness.runs.store import no_link, write_json_atomic
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
    """sha256 over a local checkpoint's files (names and bytes); None for a Hub id. Every
    byte is read once per version of the checkpoint: the digest is kept in vrbench's cache
    (`cache_dir()`) with each file's size, modification time and inode, and read from there
    while none of those changed (a rewritten weight file changes them), so a finished run's
    re-invocation on a 70B checkpoint costs a stat per file, not minutes of hashing."""
    p = Path(path)
    if not p.is_dir():
        return None
    files = sorted(x for x in p.rglob("*") if x.is_file() and not x.name.startswith("."))
    stamp = [[str(f.relative_to(p)), st.st_size, st.st_mtime_ns, st.st_ino]
             for f in files for st in [f.stat()]]
    memo = cache_dir() / "checkpoints" / (
        hashlib.sha256(str(p.resolve()).encode()).hexdigest()[:32] + ".json")
    try:
        kept = json.loads(memo.read_text())
        if kept.get("files") == stamp and isinstance(kept.get("sha256"), str):
            return kept["sha256"]
    except (OSError, ValueError, AttributeError):
        pass
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(p)).encode())
        with open(f, "rb") as fh:
            while chunk := fh.read(1 << 23):
                h.update(chunk)
    digest = h.hexdigest()
    with contextlib.suppress(OSError, VrbenchError):  # a cache it cannot write costs time
        write_json_atomic(no_link(memo), {"path": str(p.resolve()), "files": stamp,
                                          "sha256": digest})
    return digest


def cache_dir() -> Path:
    """vrbench's own cache: $VRBENCH_CACHE, else $XDG_CACHE_HOME/vrbench, else
    ~/.cache/vrbench."""
    if os.environ.get("VRBENCH_CACHE"):
        return Path(os.environ["VRBENCH_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vrbench"


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

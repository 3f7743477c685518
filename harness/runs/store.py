"""Files of a run directory: atomic JSON, a JSONL log that survives being killed, and a lock
that keeps two processes from writing one run at once."""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tasks.errors import VrbenchError

LOCK_FILE = ".lock"  # in a run or training folder: held by its one writer


def write_text_atomic(path: Path, text: str) -> None:
    """Write a file so that readers see the old one or the new one, never half of one, and
    the new one is on disk when this returns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, obj) -> None:
    """Write JSON atomically (see `write_text_atomic`)."""
    write_text_atomic(path, json.dumps(obj, indent=2) + "\n")


def read_jsonl(path: Path, own: bool = True) -> list[dict]:
    """Records of a JSONL file; reading never changes the file. In a file vrbench writes
    (`own`), a last line without its newline is one a writer is still writing (or a kill cut
    short) and is left out: its writer drops it when it resumes (`repair_jsonl`). In a file
    from elsewhere the last line needs no newline. A damaged line is an error that names the
    line. A missing file is read from its gzipped copy (`.gz`, as a published bundle holds
    it) where there is one."""
    if not path.exists():
        packed = path.with_name(path.name + ".gz")
        if not packed.exists():
            return []
        data, own = gzip.decompress(packed.read_bytes()), False
    else:
        data = path.read_bytes()
    end = data.rfind(b"\n") + 1 if own else len(data)
    out = []
    for number, line in enumerate(data[:end].splitlines(), 1):
        if not line.strip(b" \t\r\x00"):  # blank, or zeros left by a crash
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise VrbenchError(f"line {number} of {path} is not valid JSON; delete that line "
                               "(the run then redoes its sample) or the whole file.") from e
        if not isinstance(record, dict):
            raise VrbenchError(f"line {number} of {path} is not a JSON object; delete that "
                               "line (the run then redoes its sample) or the whole file.")
        out.append(record)
    return out


def repair_jsonl(path: Path) -> None:
    """Drop a last line that a kill cut short, so the next append starts on a fresh line.
    Only a writer calls this, before it appends, while it is the file's only writer (it
    holds the run's lock, or is the training folder's one main process)."""
    if not path.is_file():
        return
    with open(path, "r+b") as f:
        size = f.seek(0, os.SEEK_END)
        end = size
        while end > 0:  # back to the last newline, a block at a time
            start = max(0, end - 65536)
            f.seek(start)
            block = f.read(end - start)
            cut = block.rfind(b"\n")
            if cut >= 0:
                end = start + cut + 1
                break
            end = start
        if end < size:
            f.truncate(end)


def append_jsonl(path: Path, records: list[dict]) -> None:
    """Append records in one write and make them durable before returning."""
    if not records:
        return
    payload = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    with open(path, "a", encoding="utf-8") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())


def try_lock(path: Path):
    """An exclusive lock on `path` (created if missing), held until the returned file is
    closed or its process dies; None at once when another holder has it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    f = open(path, "a")  # noqa: SIM115 (the caller holds it open: that is the lock)
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        return None
    return f


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if missing): a second process waits here
    until the first is done. The kernel drops the lock when its holder dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)

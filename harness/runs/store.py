"""Files vrbench writes: atomic JSON and text, a JSONL log that survives being killed, a lock
that keeps two processes from writing one run at once, and the one guard every writer uses.

No vrbench command writes, renames or deletes through a symbolic link it did not create,
anywhere under an output folder (the folder a user names may itself be a link: theirs to
make): `no_link` names such a link in one sentence, and `make_dirs`, `remove_tree`,
`move` and `write_text_atomic` call it. A run's own files are never read through a link
either (`run_file`: a contributed run may carry one)."""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from vrbench.errors import VrbenchError

LOCK_FILE = ".lock"  # in a run or training folder: held by its one writer
_UMASK = os.umask(0)
os.umask(_UMASK)  # read once: files are created as the user's umask says (0644 under 022)


def no_link(path: str | Path, root: str | Path | None = None) -> Path:
    """`path`, unless it or a folder between it and `root` (the output folder named by the
    user, which is not checked) is a symbolic link: then one sentence naming the link."""
    path = Path(path)
    stop = None if root is None else Path(os.path.abspath(root))  # links not followed
    here = Path(os.path.abspath(path))
    while here != stop:
        if here.is_symlink():
            raise VrbenchError(f"{here} is a symbolic link (to {os.readlink(here)}); vrbench "
                               "writes nothing through a link it did not create: remove it.")
        if stop is None or here.parent == here:
            break
        here = here.parent
    return path


def make_dirs(path: str | Path, root: str | Path | None = None) -> Path:
    """`path` and the folders above it created as needed (none of them a link, `root` aside)."""
    path = no_link(path, root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def remove_tree(path: str | Path, root: str | Path | None = None) -> None:
    """Delete the folder (or file) at `path`, if there is one, never through a link."""
    path = no_link(path, root)
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def move(src: str | Path, dst: str | Path, root: str | Path | None = None) -> None:
    """Rename `src` to `dst` (replacing a file, or an empty folder), never onto a link."""
    os.replace(src, no_link(dst, root))


def run_file(path: Path, within: Path | None = None) -> Path:
    """`path`, if it is no symbolic link and (given `within`, its run directory) resolves
    inside `within`; else one sentence naming it."""
    if path.is_symlink():
        raise VrbenchError(f"{path} is a symbolic link (to {os.readlink(path)}); a run's files "
                           "are read and written only as regular files of their run.")
    if within is not None and not path.resolve().is_relative_to(within.resolve()):
        raise VrbenchError(f"{path} resolves outside its run directory {within}; refused.")
    return path


def _open_no_follow(path: Path, flags: int) -> int:
    """A file descriptor of `path` opened without following a link at its name."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError:
        if path.is_symlink():
            run_file(path)  # raises the sentence that names the link
        raise


def write_text_atomic(path: Path, text: str, root: str | Path | None = None) -> None:
    """Write a file so that readers see the old one or the new one, never half of one, and
    the new one is on disk when this returns; with the permissions the umask gives, never
    onto a link (nor, given `root`, under one)."""
    no_link(path, root).parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, obj, root: str | Path | None = None) -> None:
    """Write JSON atomically (see `write_text_atomic`)."""
    write_text_atomic(path, json.dumps(obj, indent=2) + "\n", root)


def read_jsonl(path: Path, own: bool = True) -> list[dict]:
    """Records of a JSONL file (see `iter_jsonl`)."""
    return list(iter_jsonl(path, own))


def iter_jsonl(path: Path, own: bool = True) -> Iterator[dict]:
    """Records of a JSONL file, read a line at a time; reading never changes the file. In a
    file vrbench writes (`own`), a last line without its newline is one a writer is still
    writing (or a kill cut short) and is left out: its writer drops it when it resumes
    (`repair_jsonl`). In a file from elsewhere the last line needs no newline. A damaged line
    is an error that names the line. A missing file is read from its gzipped copy (`.gz`, as
    a published bundle holds it) where there is one."""
    if own:
        run_file(path)
    mend = ("; delete that line (the run then redoes its sample) or the whole file." if own
            else " (a JSON Lines file holds one JSON object per line).")
    packed = path.with_name(path.name + ".gz")
    zipped = not path.exists()
    if zipped and not packed.exists():
        return
    with gzip.open(run_file(packed)) if zipped else open(path, "rb") as f:
        own = own and not zipped
        for number, line in enumerate(f, 1):
            if own and not line.endswith(b"\n"):
                return
            if not line.strip(b" \t\r\n\x00"):  # blank, or zeros left by a crash
                continue
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
                raise VrbenchError(f"line {number} of {path} is not valid JSON{mend}") from e
            if not isinstance(record, dict):
                raise VrbenchError(f"line {number} of {path} is not a JSON object{mend}")
            yield record


def repair_jsonl(path: Path) -> None:
    """Drop a last line that a kill cut short, so the next append starts on a fresh line.
    Only a writer calls this, before it appends, while it is the file's only writer (it
    holds the run's lock, or is the training folder's one main process)."""
    if not run_file(path).is_file():
        return
    with os.fdopen(_open_no_follow(path, os.O_RDWR), "r+b") as f:
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


def drop_after(path: Path, step: int) -> None:
    """Drop the records of steps after `step`: those a killed training run wrote past its
    last checkpoint, which the resumed run writes again (a log read later would otherwise
    hold those steps twice). Its caller is the file's only writer, as for `repair_jsonl`."""
    if not run_file(path).is_file():
        return
    rows = read_jsonl(path)
    keep = [r for r in rows if not isinstance(r.get("step"), int) or r["step"] <= step]
    if len(keep) < len(rows):
        write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n"
                                        for r in keep))


def append_jsonl(path: Path, records: list[dict]) -> None:
    """Append records in one write and make them durable before returning."""
    if not records:
        return
    payload = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    fd = _open_no_follow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())


def try_lock(path: Path):
    """An exclusive lock on `path` (created if missing), held until the returned file is
    closed or its process dies; None at once when another holder has it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    f = os.fdopen(_open_no_follow(path, os.O_WRONLY | os.O_CREAT), "a")  # held: the lock
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
    with os.fdopen(_open_no_follow(path, os.O_WRONLY | os.O_CREAT), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)

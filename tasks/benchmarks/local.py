"""Where a benchmark's local copy is and how its split is read: the layouts the Hugging Face
Hub publishes (a repository's files with its dataset card, a `save_to_disk` folder, the hub
cache), under `--data-dir` or $VRBENCH_DATA. Nothing is downloaded."""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from vrbench.errors import VrbenchError

if TYPE_CHECKING:  # imported where a copy is read: listing the benchmarks needs none of it
    import datasets

DATA_ENV = "VRBENCH_DATA"


def data_dir(explicit: str | None = None) -> Path:
    """The folder of local copies: `explicit` (--data-dir), else $VRBENCH_DATA."""
    d = explicit or os.environ.get(DATA_ENV)
    if not d:
        raise VrbenchError(f"benchmarks are read from local copies: pass --data-dir DIR (or set "
                           f"{DATA_ENV}).")
    if not Path(d).is_dir():
        raise VrbenchError(f"data directory {d} does not exist.")
    return Path(d)


def roots(base: Path, repo: str):
    """The folders a local copy of `repo` may be in under `base`."""
    owner, name = repo.split("/")
    yield from (base / owner / name, base / name)
    yield from sorted((base / f"datasets--{owner}--{name}" / "snapshots").glob("*"))


def card_files(root: Path, config: str | None, split: str) -> list[Path] | None:
    """The files the dataset card (README.md's `configs` block) names for this config
    (default: the card's default one) and split; None without such a card."""
    readme = root / "README.md"
    if not readme.is_file():
        return None
    text = readme.read_text(encoding="utf-8", errors="replace")
    if not text.startswith("---"):
        return None
    meta = yaml.safe_load(text.split("---", 2)[1]) or {}
    configs = meta.get("configs") if isinstance(meta, dict) else None
    if not isinstance(configs, list):
        return None
    chosen = [c for c in configs if isinstance(c, dict) and (
        c.get("config_name") == config if config else
        c.get("default") or c.get("config_name") == "default")]
    if not chosen and not config and len(configs) == 1:
        chosen = configs
    out: list[Path] = []
    for c in chosen[:1]:
        files = c.get("data_files")
        entries = files if isinstance(files, list) else [{"split": "train", "path": files}]
        for e in entries:
            if isinstance(e, dict) and e.get("split") == split:
                for pattern in e["path"] if isinstance(e["path"], list) else [e["path"]]:
                    out += sorted(p for p in root.rglob("*") if p.is_file() and fnmatch.fnmatch(
                        p.relative_to(root).as_posix(), pattern))
    return out


def _named_files(root: Path, config: str | None, split: str) -> list[Path]:
    """Without a card: files named by the config or the split (testmini.parquet,
    data/testmini-00000-of-00001.parquet, test/..., MM_Math.jsonl)."""
    def named(p: Path) -> bool:
        stem = p.name.split(".")[0]
        parts = p.relative_to(root).parts
        return any(stem == k or stem.startswith(f"{k}-") or k in parts[:-1]
                   for k in filter(None, (config, split)))
    found = [p for p in sorted(root.rglob("*")) if p.suffix in (".parquet", ".json", ".jsonl")
             and p.name not in _SAVED_FILES and p.is_file() and named(p)]
    parquet = [p for p in found if p.suffix == ".parquet"]
    return parquet or found


_SAVED_FILES = ("dataset_info.json", "state.json", "dataset_dict.json")  # save_to_disk's


def _load_files(files: list[Path]) -> datasets.Dataset:
    import datasets
    kind = {".parquet": "parquet", ".json": "json", ".jsonl": "json"}[files[0].suffix]
    return datasets.load_dataset(kind, data_files=[str(f) for f in files], split="train")


def _read_split(r: Path, split: str, config: str | None) -> datasets.Dataset | None:
    import datasets
    if config and (r / config / "dataset_dict.json").is_file():  # save_to_disk per config
        dd = datasets.load_from_disk(str(r / config))
        if split in dd:
            return dd[split]
    if (r / "dataset_dict.json").is_file():
        dd = datasets.load_from_disk(str(r))
        if split in dd:
            return dd[split]
    if (r / split / "state.json").is_file():
        return datasets.load_from_disk(str(r / split))
    files = card_files(r, config, split)
    if files is None:
        files = _named_files(r, config, split)
    return _load_files(files) if files else None


def open_split(base: Path, repo: str, split: str, config: str | None = None,
               data_files: tuple[str, ...] = ()) -> tuple[datasets.Dataset, Path]:
    """The split of a local copy of `repo`, and the folder it came from."""
    for root in roots(base, repo):
        if not root.is_dir():
            continue
        try:
            found = _read_split(root, split, config)
            if found is None and data_files:
                files = sorted({p for g in data_files for p in root.glob(g) if p.is_file()})
                found = _load_files(files) if files else None
        except Exception as e:  # a corrupt, mis-typed or foreign file
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
            raise VrbenchError(f"the local copy of {repo} at {root} could not be read "
                               f"({first}).") from e
        if found is not None:
            return found, root
    where = f"config {config}, split {split}" if config else f"split {split}"
    raise VrbenchError(f"no local copy of {repo} ({where}) under {base}: download the "
                       f"Hugging Face dataset {repo}, e.g. `hf download {repo} --repo-type "
                       f"dataset --local-dir {base / repo}`, and pass --data-dir {base}.")

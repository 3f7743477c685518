"""A task from the user's own data, as a task YAML's `data` block describes it (the role
lm-eval's `dataset_path` and `doc_to_text` play):

    data:
      splits:                    # where each split's rows are
        test: charts/test.jsonl  # a JSONL or parquet file, a folder of them, or a Hub dataset
        validation: hf:owner/name@validation   # (hf:OWNER/NAME[:CONFIG]@SPLIT, from its cache)
      question: "{question} (in {unit})"  # a column, or a template of columns
      image: image_path          # the image column: a path beside the file, bytes, or a list
      answer: answer
      choices: options           # optional: a list of option texts (multiple choice)
      id: uid                    # optional (default: the row's number)
      precision: decimals        # optional: decimals a number is rounded to before comparing

Paths are relative to the YAML file. A row's image path must lie inside its data file's
folder (never absolute, never through `..` or a link). Every field is checked before a row
is read, and a row that lacks one is one sentence naming it. The grader follows the task's
`answer_type` (multiple choice: the answer as the option's letter, given as a letter or as
the option's text).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tasks.answers import LETTERS
from vrbench.errors import VrbenchError

FIELDS = {"splits": (dict,), "question": (str,), "image": (str,), "answer": (str,),
          "choices": (str,), "id": (str,), "precision": (str,)}
REQUIRED = ("splits", "question", "answer")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def check(spec, where: str, base: Path) -> dict:
    """The `data` block, its fields of the right kinds and its local files present."""
    if not isinstance(spec, dict):
        raise VrbenchError(f"{where}: data must be a mapping of {', '.join(FIELDS)}.")
    unknown = sorted(map(str, set(spec) - set(FIELDS)))
    if unknown:
        raise VrbenchError(f"{where}: data has unknown field(s) {', '.join(unknown)}; its fields "
                           f"are {', '.join(FIELDS)}.")
    for key, types in FIELDS.items():
        if key in REQUIRED and key not in spec:
            raise VrbenchError(f"{where}: data lacks {key!r}.")
        if key in spec and not isinstance(spec[key], types):
            raise VrbenchError(f"{where}: data.{key} must be a "
                               f"{' or '.join(t.__name__ for t in types)}, not {spec[key]!r}.")
    from tasks.spec import SPLITS
    if not spec["splits"] or any(s not in SPLITS or not isinstance(v, str)
                                 for s, v in spec["splits"].items()):
        raise VrbenchError(f"{where}: data.splits must map {', '.join(SPLITS)} to a file, a "
                           "folder or hf:OWNER/NAME@SPLIT.")
    for split, source in spec["splits"].items():
        if not source.startswith("hf:") and not (base / source).exists():
            raise VrbenchError(f"{where}: the {split} data {base / source} does not exist.")
    return spec


def rows(spec: dict, split: str, base: Path, name: str) -> list[dict]:
    """The split's rows as a task's columns (id, images, question, target, choices, ...)."""
    out = []
    for i, (row, home) in enumerate(_read(spec["splits"][split], base)):
        where = f"row {i} of task {name!r} ({split})"
        question = _text(spec["question"], row, where)
        choices = [str(c) for c in _value(row, spec["choices"], where)] if spec.get(
            "choices") else []
        answer = str(_value(row, spec["answer"], where)).strip()
        if choices and answer not in LETTERS[:len(choices)]:
            if answer not in choices:
                raise VrbenchError(f"{where}: the answer {answer!r} is neither an option's "
                                   "letter nor one of its options.")
            answer = LETTERS[choices.index(answer)]
        precision = _value(row, spec["precision"], where) if spec.get("precision") else None
        key = _value(row, spec["id"], where) if spec.get("id") else i
        out.append({"id": f"{name}-{split}-{key}",
                    "images": _images(_value(row, spec["image"], where), home, where)
                    if spec.get("image") else [],
                    "question": question, "target": answer, "choices": choices,
                    "solution": "", "solution_reflective": "",
                    "meta": json.dumps({"precision": precision} if precision is not None
                                       else {})})
    return out


def _read(source: str, base: Path):
    """(row, the folder its image paths are relative to) of a file, a folder or the Hub."""
    if source.startswith("hf:"):
        yield from ((r, None) for r in _hub(source[3:]))
        return
    path = base / source
    files = sorted(p for p in path.rglob("*") if p.suffix in (".jsonl", ".parquet")) \
        if path.is_dir() else [path]
    for f in files:
        if f.suffix == ".parquet":
            import datasets
            try:
                ds = datasets.Dataset.from_parquet(str(f))
            except Exception as e:
                raise VrbenchError(f"{f} could not be read as parquet ({e}).") from e
            yield from ((r, f.parent) for r in ds.with_format("arrow")[:].to_pylist())
            continue
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise VrbenchError(f"line {n} of {f} is not valid JSON.") from e
            if not isinstance(row, dict):
                raise VrbenchError(f"line {n} of {f} is not a JSON object.")
            yield row, f.parent


def _hub(spec: str) -> list[dict]:
    """hf:OWNER/NAME[:CONFIG]@SPLIT, from the local Hub cache (as `datasets` keeps it)."""
    name, _, split = spec.partition("@")
    repo, _, config = name.partition(":")
    import datasets
    try:
        ds = datasets.load_dataset(repo, config or None, split=split or "test")
        return ds.with_format("arrow")[:].to_pylist()  # images stay encoded
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise VrbenchError(f"the Hub dataset {repo} ({split or 'test'}) could not be read "
                           f"({first}).") from e


def _value(row: dict, column: str, where: str):
    if column not in row or row[column] is None:
        raise VrbenchError(f"{where} has no {column!r} (its columns: "
                           f"{', '.join(map(str, row))}).")
    return row[column]


def _text(template: str, row: dict, where: str) -> str:
    """A column's text, or a template's: each {column} replaced by its value (nothing else
    of Python's formatting: a file names columns, not attributes)."""
    if not _PLACEHOLDER.search(template):
        return str(_value(row, template, where))
    return _PLACEHOLDER.sub(lambda m: str(_value(row, m.group(1), where)), template)


def _images(value, home: Path | None, where: str) -> list[dict]:
    """An image cell as raw {bytes, path}: bytes (an Image feature's, or raw), or a path that
    lies inside the data file's folder."""
    out = []
    for v in value if isinstance(value, list) else [value]:
        if isinstance(v, dict) and v.get("bytes"):
            out.append({"bytes": v["bytes"], "path": None})
            continue
        if isinstance(v, bytes):
            out.append({"bytes": v, "path": None})
            continue
        rel = v.get("path") if isinstance(v, dict) else v
        if home is None or not isinstance(rel, str) or not rel:
            raise VrbenchError(f"{where}: its image is neither bytes nor a path.")
        p = home / rel
        if Path(rel).is_absolute() or ".." in Path(rel).parts or not p.resolve(
                ).is_relative_to(home.resolve()):
            raise VrbenchError(f"{where}: its image path {rel!r} leads outside {home}; "
                               "refusing to read it.")
        out.append({"bytes": p.read_bytes() if p.is_file() else None,
                    "path": None if p.is_file() else str(p)})
    return out

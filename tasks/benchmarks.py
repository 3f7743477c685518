"""Published benchmarks, read from local copies in the layouts the Hugging Face Hub publishes.

Nothing is downloaded: point `--data-dir` (or the VRBENCH_DATA environment variable) at a
folder holding the datasets, in any of these forms for a dataset `owner/name`:

    DIR/owner/name/     or DIR/name/     the repository's files as `hf download` writes them
                                         (the dataset card's `configs` say which file holds
                                         which config and split), or a `save_to_disk` folder
    DIR/datasets--owner--name/snapshots/<rev>/   the Hugging Face hub cache

Each row is checked against the columns the benchmark publishes (names and types) before
it becomes a `Task` sample with the official prompt, the target (a letter for multiple
choice), the options, MathVista's rounding precision and the categories its results are
broken down by (`results[task]["by_category"]`).
"""

from __future__ import annotations

import fnmatch
import json
import os
import random
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from tasks.answers import LETTERS, last_boxed
from vrbench.errors import VrbenchError

if TYPE_CHECKING:  # imported where a copy is read: listing the benchmarks needs none of it
    import datasets

DATA_ENV = "VRBENCH_DATA"
BOXED = "\nPut the final answer in \\boxed{}."
IMAGE = "image"  # a column kind: an Image cell ({bytes, path}) or a path in the dataset


@dataclass(frozen=True)
class Benchmark:
    name: str
    repo: str
    split: str  # the published split the task reads
    domain: str
    answer_type: str
    convert: Callable[[dict, Path], dict]  # a published row -> question, target, ...
    skill: str  # what it tests, in a phrase
    columns: dict[str, tuple]  # published column -> its kinds (types, None, IMAGE)
    config: str | None = None  # the published config (subset)
    summarize: Callable[[list[tuple]], dict] | None = None  # extra results from each scored
    # sample's (group, accuracy)
    select: Callable[[list[dict]], list[dict]] | None = None  # rows of a derived split
    optional: tuple[str, ...] = field(default=())  # columns an older copy may lack
    data_files: tuple[str, ...] = ()  # where the rows are when no card or file name says
    task_split: str = ""  # the split the task offers (default: testmini -> test, else the same)

    @property
    def offered_split(self) -> str:
        return self.task_split or {"testmini": "test"}.get(self.split, self.split)


# -- locating a local copy ---------------------------------------------------------------------
def data_dir(explicit: str | None = None) -> Path:
    """The folder of local copies: `explicit` (--data-dir), else $VRBENCH_DATA."""
    d = explicit or os.environ.get(DATA_ENV)
    if not d:
        raise VrbenchError(f"benchmarks are read from local copies: pass --data-dir DIR (or set "
                           f"{DATA_ENV}).")
    if not Path(d).is_dir():
        raise VrbenchError(f"data directory {d} does not exist.")
    return Path(d)


def _roots(base: Path, repo: str):
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
    for root in _roots(base, repo):
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


# -- rows and images -------------------------------------------------------------------------
def _kind_name(k) -> str:
    return {IMAGE: "an image", None: "empty"}.get(k, getattr(k, "__name__", str(k)))


def check_row(row: dict, columns: dict[str, tuple], optional: tuple[str, ...], where: str
              ) -> None:
    """Every published column is present with one of its kinds."""
    for name, kinds in columns.items():
        if name not in row:
            if name in optional:
                continue
            raise VrbenchError(f"{where} lacks the column {name!r}; is it a copy of the "
                               "published dataset?")
        value = row[name]
        ok = any((k is None and value is None)
                 or (k is IMAGE and (isinstance(value, str) or (isinstance(value, dict) and (
                     value.get("bytes") or value.get("path")))))
                 or (isinstance(k, type) and isinstance(value, k) and not isinstance(value, bool))
                 for k in kinds)
        if not ok:
            raise VrbenchError(f"{where}: column {name!r} is {repr(value)[:60]}, not "
                               f"{' or '.join(_kind_name(k) for k in kinds)}.")


def _image(value, root: Path) -> dict | None:
    """A published image cell (an Image feature's {bytes, path}, or a path relative to the
    dataset folder, or inside a zip archive of it) as raw {bytes, path}."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        if value.get("bytes"):
            return {"bytes": value["bytes"], "path": None}
        value = value.get("path")
        if not value:
            return None
    return _inside(root, str(value))


def _inside(root: Path, rel: str) -> dict:
    """The file `rel` names under the dataset folder `root` (or in a zip archive there); a
    path that is absolute or leads outside the dataset (through `..` or a link) is refused,
    so a row can never make vrbench read, and send to a model, a file from elsewhere."""
    home = root.parent.parent if root.parent.name == "snapshots" else root  # hub cache: blobs
    p = root / rel
    if Path(rel).is_absolute() or ".." in Path(rel).parts or not p.resolve().is_relative_to(
            home.resolve()):
        raise VrbenchError(f"an image path in the local copy under {root} leads outside it "
                           f"({rel!r}); refusing to read it.")
    if p.is_file():
        return {"bytes": p.read_bytes(), "path": None}
    for sub in sorted(d for d in root.iterdir() if d.is_dir()):  # an unpacked image folder
        if (sub / rel).is_file() and (sub / rel).resolve().is_relative_to(home.resolve()):
            return {"bytes": (sub / rel).read_bytes(), "path": None}
    for archive in sorted(root.glob("*.zip")):  # images published as a zip (MM_Math, We-Math)
        with zipfile.ZipFile(archive) as z:
            name = next((n for n in z.namelist() if n == rel or n.endswith("/" + rel)), None)
            if name is not None:
                return {"bytes": z.read(name), "path": None}
    return {"bytes": None, "path": str(p)}  # missing: the sample is reported as errored


def _first_image(row: dict, root: Path, *keys: str) -> list[dict]:
    for k in keys:
        v = row.get(k)
        if isinstance(v, list):
            ims = [x for x in (_image(i, root) for i in v) if x]
            if ims:
                return ims
        elif (im := _image(v, root)) is not None:
            return [im]
    return []


# -- options --------------------------------------------------------------------------------
def split_options(text: str) -> list[str]:
    """Options written as "A. 45° B. 60° ;C. 120°", "A:2\\nB:4" or "(A) x (B) y": the text
    between consecutive letter markers, in order from A. A letter the text skips ("C. No.;
    F. ...") gets an empty option, so that the letters keep their places; [] when the text
    holds no such list."""
    pos, spans = 0, []
    while True:
        # a marker is followed by its option's text, not by a separator: "Shape ;C.;" is
        # the end of an option (the text "Shape C." with a stray ";"), not option C
        nxt = [(m.start(), m.end(), letter) for letter in LETTERS[len(spans):len(spans) + 4]
               if (m := re.compile(rf"(?:^|(?<=[\s;；,(]))\(?{letter}\s*(?:[.:：)]|\)\s)"
                                   rf"(?!\s*[;；]|\s*$)").search(text, pos))]
        if not nxt or (not spans and nxt[0][2] != "A"):
            break
        start, end, letter = min(nxt)
        while len(spans) < LETTERS.index(letter):
            spans.append(None)  # a letter the text skips
        spans.append((start, end))
        pos = end
    marks = [x for x in spans if x]
    texts = iter(text[end:nxt[0]].strip().strip(";；").strip()
                 for (_, end), nxt in zip(marks, [*marks[1:], (len(text), None)], strict=True))
    out = ["" if x is None else next(texts) for x in spans]
    return out if len(marks) >= 2 and all(out[i] for i, x in enumerate(spans) if x) else []


def _inline_choices(text: str) -> list[str]:
    """Options written into a MathVerse question after "Choices:" (or "Choice:")."""
    m = re.search(r"Choices?\s*[:：]", text, re.I)
    return split_options(text[m.end():]) if m else []


# -- per-benchmark conversions -------------------------------------------------------------
def mathvista_query(row: dict) -> str:
    """MathVista's zero-shot prompt (the published `query`) from a row's fields."""
    qt, at, precision = row.get("question_type"), row.get("answer_type"), row.get("precision")
    if qt == "multi_choice":
        hint = ("Please answer the question and provide the correct option letter, e.g., A, B, "
                "C, D, at the end.")
    elif at == "integer":
        hint = ("Please answer the question requiring an integer answer and provide the final "
                "value, e.g., 1, 2, 3, at the end.")
    elif at == "float" and precision == 1:
        hint = ("Please answer the question requiring a floating-point number with one decimal "
                "place and provide the final value, e.g., 1.2, 1.3, 1.4, at the end.")
    elif at == "float" and precision == 2:
        hint = ("Please answer the question requiring a floating-point number with two decimal "
                "places and provide the final value, e.g., 1.23, 1.34, 1.45, at the end.")
    else:
        hint = ("Please answer the question requiring a Python list as an answer and provide "
                "the final list, e.g., [1, 2, 3], [1.2, 1.3, 1.4], at the end.")
    text = f"Hint: {hint}\nQuestion: {row['question']}"
    if row.get("unit"):
        text += f" (Unit: {row['unit']})"
    if row.get("choices"):
        text += "\nChoices:\n" + "\n".join(f"({LETTERS[i]}) {c}"
                                           for i, c in enumerate(row["choices"]))
    return text.strip()


def _mathvista(row: dict, root: Path) -> dict:
    choices = [str(c) for c in row.get("choices") or []]
    mc = row["question_type"] == "multi_choice"
    target = str(row["answer"])
    if mc and target in choices:
        target = LETTERS[choices.index(target)]
    meta = row.get("metadata") or {}
    precision = row.get("precision")
    return {
        "id": f"mathvista-{row['pid']}", "question": row.get("query") or mathvista_query(row),
        "images": _first_image(row, root, "decoded_image", "image"), "target": target,
        "choices": choices if mc else [],
        "meta": {"precision": int(precision) if row["answer_type"] == "float"
                 and precision is not None else None,
                 "categories": {"task": meta.get("task"), "context": meta.get("context"),
                                "grade": meta.get("grade"), "skills": meta.get("skills"),
                                "question_type": row["question_type"]}}}


def _mathverse(row: dict, root: Path) -> dict:
    """The CoT query as the prompt; for multiple choice, the options parsed from the
    question and the target as a letter (some rows give "(C)" or the option's text)."""
    choices = _inline_choices(row.get("question_for_eval") or row["question"]) \
        if row["question_type"] == "multi-choice" else []
    target = str(row["answer"]).strip()
    if choices:
        bare = target.strip("()")
        target = bare if bare in LETTERS[:len(choices)] else (
            LETTERS[choices.index(target)] if target in choices else target)
    meta = row.get("metadata") or {}
    return {
        "id": f"mathverse-{row['sample_index']}", "question": row["query_cot"],
        "images": _first_image(row, root, "image"), "target": target, "choices": choices,
        "meta": {"categories": {"version": row["problem_version"],
                                "subject": meta.get("subject"),
                                "subfield": meta.get("subfield")}}}


MATHVISION_PROMPT = ('Please solve the problem and put your answer in one "\\boxed{}". If it is '
                     'a multiple choice question, only one letter is allowed in the '
                     '"\\boxed{}".\n')


def _mathvision(row: dict, root: Path) -> dict:
    """MATH-V's own prompt: the options as "(A) ...", one a line, left out when they are
    just the letters A-E (the figure shows them)."""
    options = [str(o) for o in row.get("options") or []]
    listed = "" if "".join(options) == LETTERS[:len(options)] else "".join(
        f"({LETTERS[i]}) {o}\n" for i, o in enumerate(options))
    return {
        "id": f"mathvision-{row['id']}",
        "question": f"{MATHVISION_PROMPT}{row['question']}\n{listed}",
        "images": _first_image(row, root, "decoded_image", "image"),
        "target": str(row["answer"]).strip(), "choices": options,
        "solution": row.get("solution") or "",
        "meta": {"categories": {"subject": row.get("subject"), "level": row.get("level")}}}


def _geometry3k(row: dict, root: Path) -> dict:
    answer = str(row["answer"]).strip()
    return {
        "id": f"geometry3k-{row.get('id', row['_index'])}",
        "question": row["problem"].replace("<image>", "").strip() + BOXED,
        "images": _first_image(row, root, "images"), "target": answer,
        "choices": [], "solution": f"\\boxed{{{answer}}}", "meta": {"categories": {}}}


def _mm_math(row: dict, root: Path) -> dict:
    """MM_Math publishes the question, the textbook solution and the image file's name;
    the answer is the solution's last \\boxed{} (rows without one are left out)."""
    return {
        "id": f"mm_math-{row['_index']}",
        "question": row["question"].replace("<image>", "").strip() + BOXED,
        "images": _first_image(row, root, "file_name", "image"),
        "target": (last_boxed(row["solution"]) or "").strip() or None, "choices": [],
        "solution": row["solution"],
        "meta": {"categories": {"difficulty": row.get("difficult"), "grade": row.get("year")}}}


def mm_math_split(which: str, n_validation: int = 100, n_train: int = 5000):
    """MM_Math publishes one split; the paper's mm_math5k draws 5000 training and 100
    validation problems from it. A fixed permutation (seed 0) of the answerable rows: the
    first 100 are validation, the next 5000 train."""
    def select(rows: list[dict]) -> list[dict]:
        keep = [r for r in rows if r["target"]]
        order = list(range(len(keep)))
        random.Random(0).shuffle(order)
        picked = order[:n_validation] if which == "validation" else \
            order[n_validation:n_validation + n_train]
        return [keep[i] for i in sorted(picked)]
    return select


WEMATH_PROMPT = (
    "Now, we require you to solve a multiple-choice math question.\n"
    "Please briefly describe your thought process and provide the final answer(option).\n"
    "Question: {question}\nOption: {option}\n"
    "Regarding the format, please answer following the template below, and be sure to "
    "include two <> symbols:\n<Thought process>:<<your thought process>>\n"
    "<Answer>:<<your option>>.")


def _wemath(row: dict, root: Path) -> dict:
    key = str(row["key"])
    return {
        "id": f"wemath-{row['ID']}-{key}",
        "question": WEMATH_PROMPT.format(question=row["question"], option=row["option"]),
        "images": _first_image(row, root, "image_path", "image"),
        "target": str(row["answer"]).strip(), "choices": split_options(str(row["option"])),
        "meta": {"group": {"problem": str(row["ID"]), "key": key},
                 "categories": {"steps": key.split("_")[0],
                                "knowledge concept": row.get("knowledge concept")}}}


def wemath_diagnosis(scored: list[tuple[dict | None, float]]) -> dict:
    """We-Math's four-way diagnosis of each multi-step problem from its one-step parts
    (key `Nsteps_i`) and the whole (`Nsteps_multi`), as the benchmark's own evaluation
    counts them: insufficient knowledge (IK: a part wrong, the whole wrong), inadequate
    generalisation (IG: every part right, the whole wrong), complete mastery (CM strict:
    every part right and the whole; loose: any part right and the whole) and rote
    memorisation (RM strict: a part wrong, the whole right; loose: every part wrong, the
    whole right). Score = (N - 0.5 IG - RM - IK) / N over the N multi-step problems (the
    official script fixes N = 525, testmini's count)."""
    problems: dict[tuple, dict[str, bool]] = {}
    for g, acc in scored:
        steps, _, part = (g or {}).get("key", "").partition("_")
        if steps in ("2steps", "3steps"):
            problems.setdefault((steps, g["problem"]), {})[part] = acc == 1.0
    counts = dict.fromkeys(("IK", "IG", "CM_strict", "CM_loose", "RM_strict", "RM_loose"), 0)
    n = 0
    for (steps, _), answers in problems.items():
        k = int(steps[0])
        parts = [answers.get(str(i)) for i in range(1, k + 1)]
        if "multi" not in answers or None in parts:
            continue  # an incomplete problem is not diagnosed
        n += 1
        whole = answers["multi"]
        counts["IG"] += all(parts) and not whole
        counts["IK"] += (not all(parts)) and not whole
        counts["CM_strict"] += all(parts) and whole
        counts["CM_loose"] += any(parts) and whole
        counts["RM_strict"] += (not all(parts)) and whole
        counts["RM_loose"] += (not any(parts)) and whole
    out: dict = {"n_problems": n, **counts}
    if n:
        for mode in ("strict", "loose"):
            out[f"score_{mode}"] = (n - 0.5 * counts["IG"] - counts[f"RM_{mode}"]
                                    - counts["IK"]) / n
            done = counts[f"CM_{mode}"] + counts[f"RM_{mode}"]
            out[f"rm_rate_{mode}"] = counts[f"RM_{mode}"] / done if done else None
    return out


# the published columns, as each dataset card's dataset_info names them
_S, _N = (str,), (str, None)
MATHVISTA_COLUMNS = {"pid": _S, "question": _S, "image": (str, IMAGE, None),
                     "decoded_image": (IMAGE, None), "choices": (list, None),
                     "unit": _N, "precision": (int, float, None), "answer": _S,
                     "question_type": _S, "answer_type": _S, "metadata": (dict, None),
                     "query": _S}
MATHVERSE_COLUMNS = {"sample_index": (str, int), "problem_index": (str, int),
                     "problem_version": _S, "question": _S, "image": (IMAGE, str, None),
                     "answer": _S, "question_type": _S, "metadata": (dict, None),
                     "query_wo": _S, "query_cot": _S, "question_for_eval": _S}
MATHVISION_COLUMNS = {"id": (str, int), "question": _S, "options": (list,),
                      "image": (str, IMAGE, None), "decoded_image": (IMAGE, None),
                      "answer": _S, "solution": _N, "level": (int,), "subject": _S}
WEMATH_COLUMNS = {"ID": _S, "split": _S, "knowledge concept": _S, "question": _S, "option": _S,
                  "answer": _S, "image_path": (IMAGE, str), "key": _S,
                  "question number": (int,), "knowledge concept description": _N}
GEOMETRY3K_COLUMNS = {"images": (list,), "problem": _S, "answer": _S}
MM_MATH_COLUMNS = {"question": _S, "file_name": (str, IMAGE), "solution": _S}

BENCHMARKS = {b.name: b for b in (
    Benchmark("wemath_testmini", "We-Math/We-Math", "testmini", "ood", "multiple_choice",
              _wemath, "We-Math testmini (1740): the official prompt and answer template "
              "(<Answer>: <<B>>); accuracy by step count and knowledge concept, and the "
              "four-way diagnosis (IK, IG, CM, RM; strict and loose scores)",
              WEMATH_COLUMNS, summarize=wemath_diagnosis),
    Benchmark("mathvista_testmini", "AI4Math/MathVista", "testmini", "ood", "expression",
              _mathvista, "MathVista testmini (1000): the official query prompt; multiple "
              "choice by letter or option text, floats rounded to the given precision; by "
              "task, context, grade, skill", MATHVISTA_COLUMNS,
              optional=("decoded_image", "query", "unit", "metadata")),
    Benchmark("mathverse_testmini", "AI4Math/MathVerse", "testmini", "ood", "expression",
              _mathverse, "MathVerse testmini (3940 = 788 problems x 5 versions): the CoT "
              "query, options parsed from question_for_eval; by problem version, subject "
              "and subfield", MATHVERSE_COLUMNS, config="testmini",
              optional=("question_for_eval", "problem_index", "query_wo")),
    Benchmark("mathverse_testmini_text_only", "AI4Math/MathVerse", "testmini", "ood",
              "expression", _mathverse, "MathVerse testmini, Text Only version (788, no "
              "image): the CoT query", MATHVERSE_COLUMNS, config="testmini_text_only",
              optional=("question_for_eval", "problem_index", "query_wo", "image")),
    Benchmark("mathvision_testmini", "MathLLMs/MathVision", "testmini", "ood", "expression",
              _mathvision, "MathVision testmini (304): MATH-V's prompt; by subject and level",
              MATHVISION_COLUMNS, optional=("decoded_image", "image", "solution")),
    Benchmark("mathvision_test", "MathLLMs/MathVision", "test", "ood", "expression",
              _mathvision, "MathVision test (3040): MATH-V's prompt; by subject and level",
              MATHVISION_COLUMNS, optional=("decoded_image", "image", "solution")),
    *(Benchmark(f"geometry3k_{s}", "hiyouga/geometry3k", s, "id", "expression", _geometry3k,
                f"Geometry3K {s} (the paper's vision-dominant training set)",
                GEOMETRY3K_COLUMNS)
      for s in ("train", "validation", "test")),
    *(Benchmark(f"mm_math_{s}", "THU-KEG/MM_Math", "train", "id", "expression", _mm_math,
                f"MM_Math: the paper's mm_math5k {s} problems (a fixed draw from the one "
                f"published split; answer = the textbook solution's last \\boxed{{}})",
                MM_MATH_COLUMNS, select=mm_math_split(s), data_files=("*.jsonl",),
                task_split=s)
      for s in ("train", "validation")),
)}


def rows(bench: Benchmark, base: str | None = None) -> list[dict]:
    """The benchmark's samples as rows of the task features (tasks.spec.features), read
    from the local copy under `base` (default: $VRBENCH_DATA)."""
    ds, root = open_split(data_dir(base), bench.repo, bench.split, bench.config,
                          bench.data_files)
    out = []
    for i, raw in enumerate(ds.with_format("arrow")[:].to_pylist()):
        where = f"row {i} of the local copy of {bench.repo} at {root}"
        check_row(raw, bench.columns, bench.optional, where)
        raw["_index"] = i
        try:
            r = bench.convert(raw, root)
        except VrbenchError:
            raise
        except Exception as e:  # a value the published data never holds
            raise VrbenchError(f"{where} does not have the published schema "
                               f"({type(e).__name__}: {e}).") from e
        out.append({"id": r["id"], "images": r["images"], "question": r["question"],
                    "target": r["target"], "choices": r["choices"],
                    "solution": r.get("solution", ""), "solution_reflective": "",
                    "meta": json.dumps(r["meta"], sort_keys=True)})
    return bench.select(out) if bench.select else out

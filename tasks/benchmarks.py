"""Published benchmarks, read from local copies in the Hugging Face layouts.

Nothing is downloaded: point `--data-dir` (or the VRBENCH_DATA environment variable) at a
folder holding the datasets, in any of these forms for a dataset `owner/name`:

    DIR/owner/name/     or DIR/name/     a `save_to_disk` folder, or the repository's files
                                         (parquet files named or foldered by split)
    DIR/datasets--owner--name/snapshots/<rev>/   the Hugging Face hub cache

Each benchmark becomes a `Task` whose samples carry the official prompt, the target (a
letter for multiple choice), the options, MathVista's rounding precision, and the
categories its results are broken down by (`results[task]["by_category"]`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import datasets

from tasks.errors import VrbenchError
from tasks.options import LETTERS, lettered

DATA_ENV = "VRBENCH_DATA"
BOXED = "\nPut the final answer in \\boxed{}."


@dataclass(frozen=True)
class Benchmark:
    name: str
    repo: str
    split: str
    domain: str
    answer_type: str
    convert: Callable[[dict, Path], dict]  # a published row -> question, target, ...
    tests: str
    config: str | None = None
    summarize: Callable[[list[dict]], dict] | None = None  # extra results from the records


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


def _parquet_split(p: Path, split: str) -> bool:
    return (p.name == f"{split}.parquet" or p.name.startswith(f"{split}-")
            or p.parent.name == split)


def open_split(base: Path, repo: str, split: str, config: str | None = None
               ) -> tuple[datasets.Dataset, Path]:
    """The split of a local copy of `repo`, and the folder it came from."""
    for root in _roots(base, repo):
        for r in ([root / config] if config else []) + [root]:
            if not r.is_dir():
                continue
            if (r / "dataset_dict.json").is_file():
                dd = datasets.load_from_disk(str(r))
                if split in dd:
                    return dd[split], r
            if (r / split / "state.json").is_file():
                return datasets.load_from_disk(str(r / split)), r
            files = sorted(str(p) for p in r.rglob("*.parquet") if _parquet_split(p, split)
                           and (not config or config in p.relative_to(r).parts or r.name ==
                                config))
            if files:
                return datasets.load_dataset("parquet", data_files=files, split="train"), r
    raise VrbenchError(f"no local copy of {repo} (split {split}) under {base}: download the "
                       f"Hugging Face dataset {repo}, e.g. `hf download {repo} --repo-type "
                       f"dataset --local-dir {base / repo}`, and pass --data-dir {base}.")


def _image(value, root: Path) -> dict | None:
    """A published image cell (an Image feature's {bytes, path}, or a path relative to the
    dataset folder) as raw {bytes, path}."""
    if value is None:
        return None
    if isinstance(value, dict):
        if value.get("bytes"):
            return {"bytes": value["bytes"], "path": None}
        value = value.get("path")
        if not value:
            return None
    p = Path(value) if Path(value).is_absolute() else root / value
    return {"bytes": p.read_bytes(), "path": None} if p.is_file() else {"bytes": None,
                                                                         "path": str(p)}


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


# -- per-benchmark conversions -------------------------------------------------------------
def _mathvista(row: dict, root: Path) -> dict:
    choices = list(row.get("choices") or [])
    mc = row.get("question_type") == "multi_choice"
    target = str(row["answer"])
    if mc and target in choices:
        target = LETTERS[choices.index(target)]
    meta = row.get("metadata") or {}
    precision = row.get("precision")
    return {
        "id": f"mathvista-{row['pid']}", "question": row.get("query") or row["question"],
        "images": _first_image(row, root, "decoded_image", "image"), "target": target,
        "choices": choices if mc else [],
        "meta": {"precision": int(precision) if row.get("answer_type") == "float"
                 and precision not in (None, "") else None,
                 "categories": {"task": meta.get("task"), "context": meta.get("context"),
                                "grade": meta.get("grade"), "skills": meta.get("skills"),
                                "question_type": row.get("question_type")}}}


_OPTION = re.compile(r"^\s*\(?([A-H])\)?\s*[:.)]\s*(.+?)\s*$")


def _inline_choices(text: str) -> list[str]:
    """Options written into a MathVerse question ("Choices:\\nA:2\\nB:4 ...")."""
    if "Choices" not in text:
        return []
    opts = [m.groups() for line in text.split("Choices", 1)[1].splitlines()
            if (m := _OPTION.match(line))]
    letters = [o[0] for o in opts]
    return [o[1] for o in opts] if letters == list(LETTERS[:len(opts)]) and opts else []


def _mathverse(row: dict, root: Path) -> dict:
    mc = row.get("question_type") == "multi-choice"
    choices = _inline_choices(row.get("question_for_eval") or row.get("question") or "") \
        if mc else []
    meta = row.get("metadata") or {}
    return {
        "id": f"mathverse-{row['sample_index']}",
        "question": row.get("query_cot") or row.get("question"),
        "images": _first_image(row, root, "image"), "target": str(row["answer"]).strip(),
        "choices": choices,
        "meta": {"categories": {"version": row.get("problem_version"),
                                "subject": meta.get("subject"),
                                "subfield": meta.get("subfield")}}}


def _mathvision(row: dict, root: Path) -> dict:
    options = [str(o) for o in row.get("options") or []]
    q = row["question"]
    if options:
        q += "\n\nChoices: " + lettered(options)
    return {
        "id": f"mathvision-{row['id']}", "question": q + BOXED,
        "images": _first_image(row, root, "decoded_image", "image"),
        "target": str(row["answer"]).strip(), "choices": options,
        "solution": row.get("solution") or "",
        "meta": {"categories": {"subject": row.get("subject"), "level": row.get("level")}}}


def _geometry3k(row: dict, root: Path) -> dict:
    answer = str(row["answer"]).strip()
    return {
        "id": f"geometry3k-{row.get('id', row['_index'])}",
        "question": row["problem"].replace("<image>", "").strip() + BOXED,
        "images": _first_image(row, root, "images", "image"), "target": answer,
        "choices": [], "solution": f"\\boxed{{{answer}}}", "meta": {"categories": {}}}


def _mm_math(row: dict, root: Path) -> dict:
    answer = str(row["answer"]).strip()
    solution = row.get("solution") or f"\\boxed{{{answer}}}"
    if "\\boxed" not in solution:
        solution += f" \\boxed{{{answer}}}"
    return {
        "id": f"mm_math-{row.get('id', row['_index'])}",
        "question": (row.get("question") or row["problem"]).replace("<image>", "").strip()
        + BOXED, "images": _first_image(row, root, "images", "image"), "target": answer,
        "choices": [], "solution": solution, "meta": {"categories": {}}}


WEMATH_PROMPT = (
    "Now, we require you to solve a multiple-choice math question. Please briefly describe "
    "your thought process and provide the final answer(option).\nQuestion: {question}\n"
    "Option: {option}\nRegarding the format, please answer following the template below, "
    "and be sure to include two <> symbols:\n<Thought process>: <<your thought process>> "
    "Answer: <<your option>>")
_WEMATH_OPTION = re.compile(r"^\s*([A-H])[.:：]\s*(.*?)\s*$")


def _wemath(row: dict, root: Path) -> dict:
    parts = [m.groups() for p in str(row.get("option") or "").split(";")
             if (m := _WEMATH_OPTION.match(p))]
    choices = [text for _, text in parts] if [k for k, _ in parts] == list(
        LETTERS[:len(parts)]) else []
    key = str(row["key"])
    return {
        "id": f"wemath-{row['ID']}-{key}",
        "question": WEMATH_PROMPT.format(question=row["question"], option=row["option"]),
        "images": _first_image(row, root, "image_path", "image"),
        "target": str(row["answer"]).strip(), "choices": choices,
        "meta": {"group": {"problem": str(row["ID"]), "key": key},
                 "categories": {"steps": key.split("_")[0],
                                "knowledge concept": row.get("knowledge concept")}}}


def wemath_diagnosis(records: list[dict]) -> dict:
    """We-Math's four-way diagnosis of each multi-step problem from its one-step parts
    (key `Nsteps_i`) and the whole (`Nsteps_multi`), as the benchmark's own evaluation
    counts them: insufficient knowledge (IK: a part wrong, the whole wrong), inadequate
    generalisation (IG: every part right, the whole wrong), complete mastery (CM strict:
    every part right and the whole; loose: any part right and the whole) and rote
    memorisation (RM strict: a part wrong, the whole right; loose: every part wrong, the
    whole right). Score = (N - 0.5 IG - RM - IK) / N over the N multi-step problems (the
    official script fixes N = 525, testmini's count)."""
    problems: dict[tuple, dict[str, bool]] = {}
    for r in records:
        g = r.get("group") or {}
        steps, _, part = g.get("key", "").partition("_")
        if steps in ("2steps", "3steps"):
            problems.setdefault((steps, g["problem"]), {})[part] = r["acc"] == 1.0
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


BENCHMARKS = {b.name: b for b in (
    Benchmark("wemath_testmini", "We-Math/We-Math", "testmini", "ood", "multiple_choice",
              _wemath, "We-Math testmini (1740): the official answer template; accuracy by "
              "step count and knowledge concept, and the four-way diagnosis (IK, IG, CM, RM; "
              "strict and loose scores)", summarize=wemath_diagnosis),
    Benchmark("mathvista_testmini", "AI4Math/MathVista", "testmini", "ood", "expression",
              _mathvista, "MathVista testmini (1000): official query prompt; multiple choice "
              "by letter or option text, floats rounded to the given precision; by task, "
              "context, grade, skill"),
    Benchmark("mathverse_testmini", "AI4Math/MathVerse", "testmini", "ood", "expression",
              _mathverse, "MathVerse testmini (3940 = 788 problems x 5 versions): the CoT "
              "query; by problem version, subject and subfield", config="testmini"),
    Benchmark("mathvision_testmini", "MathLLMs/MathVision", "testmini", "ood", "expression",
              _mathvision, "MathVision testmini (304): by subject and level"),
    Benchmark("mathvision_test", "MathLLMs/MathVision", "test", "ood", "expression",
              _mathvision, "MathVision test (3040): by subject and level"),
    *(Benchmark(f"geometry3k_{s}", "hiyouga/geometry3k", s, "id", "expression", _geometry3k,
                f"Geometry3K {s} (the paper's vision-dominant training set)")
      for s in ("train", "validation", "test")),
    *(Benchmark(f"mm_math_{s}", "THU-KEG/MM_Math", s, "id", "expression", _mm_math,
                f"MM_Math {s} (the paper's text-dominant training set, textbook solutions)")
      for s in ("train", "validation")),
)}


def rows(bench: Benchmark, base: str | None = None) -> list[dict]:
    """The benchmark's samples as rows of the task features (tasks.spec.FEATURES), read
    from the local copy under `base` (default: $VRBENCH_DATA)."""
    ds, root = open_split(data_dir(base), bench.repo, bench.split, bench.config)
    out = []
    for i, raw in enumerate(ds.with_format("arrow")[:].to_pylist()):
        raw["_index"] = i
        r = bench.convert(raw, root)
        out.append({"id": r["id"], "images": r["images"], "question": r["question"],
                    "target": r["target"], "choices": r["choices"],
                    "solution": r.get("solution", ""), "solution_reflective": "",
                    "meta": json.dumps(r["meta"], sort_keys=True)})
    return out

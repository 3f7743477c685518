"""The paper's training sets: Geometry3K (hiyouga/geometry3k), the vision-dominant set, and
MM_Math (THU-KEG/MM_Math), whose 5000 training and 100 validation problems are a fixed
draw from its one published split."""

from __future__ import annotations

import random
from pathlib import Path

from tasks.answers import last_boxed
from tasks.benchmarks.base import BOXED, IMAGE, Benchmark, S, first_image

GEOMETRY3K_COLUMNS = {"images": (list,), "problem": S, "answer": S}
MM_MATH_COLUMNS = {"question": S, "file_name": (str, IMAGE), "solution": S}


def _geometry3k(row: dict, root: Path) -> dict:
    answer = str(row["answer"]).strip()
    return {
        "id": f"geometry3k-{row.get('id', row['_index'])}",
        "question": row["problem"].replace("<image>", "").strip() + BOXED,
        "images": first_image(row, root, "images"), "target": answer,
        "choices": [], "solution": f"\\boxed{{{answer}}}", "meta": {"categories": {}}}


def _mm_math(row: dict, root: Path) -> dict:
    """MM_Math publishes the question, the textbook solution and the image file's name;
    the answer is the solution's last \\boxed{} (rows without one are left out)."""
    return {
        "id": f"mm_math-{row['_index']}",
        "question": row["question"].replace("<image>", "").strip() + BOXED,
        "images": first_image(row, root, "file_name", "image"),
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


BENCHMARKS = (
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
)

"""MathVista (AI4Math/MathVista): testmini's 1000 problems with the official query prompt;
multiple choice by letter or option text, floats rounded to the given precision."""

from __future__ import annotations

from pathlib import Path

from tasks.answers import LETTERS
from tasks.benchmarks.base import IMAGE, Benchmark, N, S, first_image

COLUMNS = {"pid": S, "question": S, "image": (str, IMAGE, None),
           "decoded_image": (IMAGE, None), "choices": (list, None),
           "unit": N, "precision": (int, float, None), "answer": S,
           "question_type": S, "answer_type": S, "metadata": (dict, None), "query": S}


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


def convert(row: dict, root: Path) -> dict:
    choices = [str(c) for c in row.get("choices") or []]
    mc = row["question_type"] == "multi_choice"
    target = str(row["answer"])
    if mc and target in choices:
        target = LETTERS[choices.index(target)]
    meta = row.get("metadata") or {}
    precision = row.get("precision")
    return {
        "id": f"mathvista-{row['pid']}", "question": row.get("query") or mathvista_query(row),
        "images": first_image(row, root, "decoded_image", "image"), "target": target,
        "choices": choices if mc else [],
        "meta": {"precision": int(precision) if row["answer_type"] == "float"
                 and precision is not None else None,
                 "categories": {"task": meta.get("task"), "context": meta.get("context"),
                                "grade": meta.get("grade"), "skills": meta.get("skills"),
                                "question_type": row["question_type"]}}}


BENCHMARKS = (
    Benchmark("mathvista_testmini", "AI4Math/MathVista", "testmini", "ood", "expression",
              convert, "MathVista testmini (1000): the official query prompt; multiple "
              "choice by letter or option text, floats rounded to the given precision; by "
              "task, context, grade, skill", COLUMNS,
              optional=("decoded_image", "query", "unit", "metadata")),
)

"""MATH-Vision (MathLLMs/MathVision): testmini (304) and test (3040) with MATH-V's own
prompt; by subject and level."""

from __future__ import annotations

from pathlib import Path

from tasks.answers import LETTERS
from tasks.benchmarks.base import IMAGE, Benchmark, N, S, first_image

COLUMNS = {"id": (str, int), "question": S, "options": (list,),
           "image": (str, IMAGE, None), "decoded_image": (IMAGE, None),
           "answer": S, "solution": N, "level": (int,), "subject": S}


PROMPT = ('Please solve the problem and put your answer in one "\\boxed{}". If it is '
                     'a multiple choice question, only one letter is allowed in the '
                     '"\\boxed{}".\n')


def convert(row: dict, root: Path) -> dict:
    """MATH-V's own prompt: the options as "(A) ...", one a line, left out when they are
    just the letters A-E (the figure shows them)."""
    options = [str(o) for o in row.get("options") or []]
    listed = "" if "".join(options) == LETTERS[:len(options)] else "".join(
        f"({LETTERS[i]}) {o}\n" for i, o in enumerate(options))
    return {
        "id": f"mathvision-{row['id']}",
        "question": f"{PROMPT}{row['question']}\n{listed}",
        "images": first_image(row, root, "decoded_image", "image"),
        "target": str(row["answer"]).strip(), "choices": options,
        "solution": row.get("solution") or "",
        "meta": {"categories": {"subject": row.get("subject"), "level": row.get("level")}}}


BENCHMARKS = tuple(
    Benchmark(f"mathvision_{split}", "MathLLMs/MathVision", split, "ood", "expression",
              convert, f"MathVision {split} ({n}): MATH-V's prompt; by subject and level",
              COLUMNS, optional=("decoded_image", "image", "solution"))
    for split, n in (("testmini", 304), ("test", 3040)))

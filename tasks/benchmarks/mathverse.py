"""MathVerse (AI4Math/MathVerse): testmini's 788 problems in five versions each, with the
CoT query; options parsed from the question."""

from __future__ import annotations

import json
from pathlib import Path

from tasks.answers import LETTERS
from tasks.benchmarks.base import IMAGE, Benchmark, S, first_image, inline_choices

COLUMNS = {"sample_index": (str, int), "problem_index": (str, int),
           "problem_version": S, "question": S, "image": (IMAGE, str, None),
           "answer": S, "question_type": S, "metadata": (dict, None),
           "query_wo": S, "query_cot": S, "question_for_eval": S}


def convert(row: dict, root: Path) -> dict:
    """The CoT query as the prompt; for multiple choice, the options parsed from the
    question and the target as a letter (some rows give "(C)" or the option's text)."""
    choices = inline_choices(row.get("question_for_eval") or row["question"]) \
        if row["question_type"] == "multi-choice" else []
    target = str(row["answer"]).strip()
    if choices:
        bare = target.strip("()")
        target = bare if bare in LETTERS[:len(choices)] else (
            LETTERS[choices.index(target)] if target in choices else target)
    meta = row.get("metadata") or {}
    return {
        "id": f"mathverse-{row['sample_index']}", "question": row["query_cot"],
        "images": first_image(row, root, "image"), "target": target, "choices": choices,
        "meta": {"group": None if row.get("problem_index") is None else {
                     "problem": str(row["problem_index"]), "version": row["problem_version"]},
                 "categories": {"version": row["problem_version"],
                                "subject": meta.get("subject"),
                                "subfield": meta.get("subfield")}}}


def _only(version: str):
    """The rows of one problem version (the testmini config holds all five)."""
    def select(rows: list[dict]) -> list[dict]:
        return [r for r in rows if json.loads(r["meta"])["categories"]["version"] == version]
    return select


BENCHMARKS = (
    Benchmark("mathverse_testmini", "AI4Math/MathVerse", "testmini", "ood", "expression",
              convert, "MathVerse testmini (3940 = 788 problems x 5 versions): the CoT "
              "query, options parsed from question_for_eval; by problem version, subject "
              "and subfield", COLUMNS, config="testmini",
              optional=("question_for_eval", "problem_index", "query_wo")),
    Benchmark("mathverse_testmini_vision_only", "AI4Math/MathVerse", "testmini", "ood",
              "expression", convert, "MathVerse testmini, Vision Only version (788: the "
              "problem drawn into the image; OpenCompass's reasoning six): the CoT query",
              COLUMNS, config="testmini", select=_only("Vision Only"),
              optional=("question_for_eval", "problem_index", "query_wo")),
    Benchmark("mathverse_testmini_text_only", "AI4Math/MathVerse", "testmini", "ood",
              "expression", convert, "MathVerse testmini, Text Only version (788, no "
              "image): the CoT query", COLUMNS, config="testmini_text_only",
              optional=("question_for_eval", "problem_index", "query_wo", "image")),
)

"""A benchmark's own matching, where it has one that rules can run: the response read as
the benchmark's official scorer reads it and compared as it compares. Where that reading
finds nothing (the official scorers then ask an LLM to extract the answer), vrbench's
grader reads the free prose instead, and the verdict's rule says so (`fallback:...`), so a
task's results can report the two apart.

    DynaMath   the JSON answer's "short answer": a float within 0.001 of the answer (pi
               written as a multiple, "2π"), a multiple-choice letter (one letter, or the
               only one of A-E in the text), or text the answer contains
    LogicVista the assistant's turn of a transcript; a bare list of letters or a number (what
               the official LLM extraction returns) compared as a set with the answer's
"""

from __future__ import annotations

import dataclasses
import json
import math
import re

from harness.scoring.grader import THINK, Grade, split_reasoning
from harness.scoring.grader import grade as rule_grade

FALLBACK = "fallback:"  # the rule's prefix when vrbench's grader decided instead


def grade(response: str, target: str, choices: list[str] | None, precision: int | None,
          scorer: dict | None, tags: tuple[str, str] = THINK) -> Grade:
    """The verdict on one response: by the benchmark's own matching (`scorer`, a sample's
    {"name": ..., ...}) of the text after the reasoning block where it reads an answer,
    else by vrbench's grader."""
    after = split_reasoning(response, tags)[1]
    if scorer is not None and after is not None and (
            verdict := SCORERS[scorer["name"]](after, target, scorer)) is not None:
        return verdict
    g = rule_grade(response, target, choices, precision, tags)
    return g if scorer is None else dataclasses.replace(g, rule=FALLBACK + g.rule)


# -- DynaMath ----------------------------------------------------------------------------------
def _json_part(response: str) -> str:
    """The official reading's first step: from the first "{" to the last "}", backslashes
    dropped (a LaTeX answer's escapes would break the JSON)."""
    start, end = response.find("{"), response.rfind("}")
    part = response[start:end + 1] if 0 <= start < end else response
    return part.replace("\\", "")


def _short_answer(text: str, kind: str) -> str | None:
    """The short answer as the official scorer parses it for its type; None: unreadable."""
    text = text.strip()
    if kind == "float":
        word = text.split(" ")[0]
        if "π" in word:  # "2π" is a number; "π/2" is not one the official reading takes
            factor, _, rest = word.partition("π")
            value = _number(factor or "1")
            return None if rest or value is None else str(value * math.pi)
        return word if _number(word) is not None else None
    if kind == "multiple choice":
        if len(text) == 1:
            return text.upper()
        named = [c for c in "ABCDE" if c in text.upper()]
        return named[0] if len(named) == 1 else None
    return text or None  # an empty answer is not read (the official check would pass it)


def _number(word: str) -> float | None:
    try:
        value = float(word)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def dynamath(response: str, target: str, scorer: dict) -> Grade | None:
    kind = scorer["answer_type"]
    try:
        answer = json.loads(_json_part(response), strict=False)
    except (ValueError, RecursionError):
        return None
    short = answer.get("short answer") if isinstance(answer, dict) else None
    if short is None or (read := _short_answer(str(short), kind)) is None:
        return None
    if kind == "float":
        expected = _number(target)
        right = expected is not None and abs(float(read) - expected) <= 0.001
    elif kind == "multiple choice":
        right = read == target.strip().upper()
    else:
        right = read.lower() in target.lower()
    return Grade(right, read, "json", "dynamath:" + kind.replace(" ", "_"))


# -- LogicVista -------------------------------------------------------------------------------
_LETTER = r"[(\[]?[A-Ea-e][)\]]?"
_LETTER_LIST = re.compile(rf"{_LETTER}(?:\s*(?:,|;|&|\band\b)?\s*{_LETTER})*")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def logicvista(response: str, target: str, scorer: dict) -> Grade | None:
    """The answer after a transcript's "ASSISTANT:" (the official reading's first step);
    a bare list of letters ("A, C", "C and A") or a number is read as the official LLM
    extraction returns it, and right only as the same set as the answer's; a lone other
    character is no answer, as officially. Anything else: None (vrbench's grader reads it)."""
    entry = response.split("ASSISTANT:")[1] if "ASSISTANT:" in response else response
    entry = entry.strip().rstrip(".").strip()
    truth = sorted(x.strip().upper() for x in target.split(","))
    if _LETTER_LIST.fullmatch(entry):
        read = sorted(set(re.findall(r"[A-E]", re.sub(r"\band\b", " ", entry).upper())))
        return Grade(read == truth, ", ".join(read), "bare", "logicvista:letters")
    if _NUMBER.fullmatch(entry):
        return Grade([entry] == truth, entry, "bare", "logicvista:number")
    if len(entry) == 1:
        return Grade(False, None, "bare", "logicvista:no_option")
    return None


SCORERS = {"dynamath": dynamath, "logicvista": logicvista}

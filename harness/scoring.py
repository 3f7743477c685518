"""Rule-based answer extraction and grading.

`grade(response, target, choices=None)` never raises and stays linear in the response
length. Extraction takes, in order: the last ``\\boxed{...}`` (balanced braces), the last
``<answer>...</answer>``, the last "the answer is ..." / "Final answer: ..." / "Answer: ...",
then the last non-empty line. A ``<think>`` block is dropped first; an unclosed one means no
answer. Equivalence: numbers (fractions, decimals, thousands separators, degrees and units
stripped) compared to 6 significant decimals, then math-verify for expressions. Multiple
choice accepts "(B)", "B.", "Answer: B", ``\\text{B}`` and the option's own value, and never
guesses: an answer that names no option is wrong.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from fractions import Fraction

from tasks.options import LETTERS

MAX_ANSWER_CHARS = 200  # longer "answers" are not sent to the symbolic checker
TAIL_CHARS = 2000  # answer phrases are looked for in the response's tail only

logging.getLogger("math_verify").setLevel(logging.ERROR)


@dataclass(frozen=True)
class Grade:
    correct: bool
    extracted: str | None  # the answer as read from the response; None: nothing to read
    method: str  # boxed | answer_tag | answer_phrase | last_line | none | unclosed_think


# -- extraction ---------------------------------------------------------------------------------
_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
_BOX_BARE = re.compile(r"\\boxed\s+([^\s$]+)")
_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.S | re.I)
_PHRASE = re.compile(r"(?:final answer|the answer|answer)\s*(?:is|:|：|=)\s*:?\s*([^\n]*)", re.I)


def _matching_braces(text: str) -> dict[int, int]:
    """Position of each '{' -> position of its matching '}' (one linear pass)."""
    stack: list[int] = []
    match: dict[int, int] = {}
    for m in re.finditer(r"(?<!\\)[{}]", text):
        if m.group() == "{":
            stack.append(m.start())
        elif stack:
            match[stack.pop()] = m.start()
    return match


def last_boxed(text: str) -> str | None:
    """Content of the last balanced ``\\boxed{...}``."""
    starts = [m.end() - 1 for m in _BOX.finditer(text)]
    if starts:
        match = _matching_braces(text)
        for s in reversed(starts):
            if s in match:
                return text[s + 1:match[s]]
    bare = _BOX_BARE.findall(text)
    return bare[-1] if bare else None


def strip_think(text: str) -> str | None:
    """The text after the reasoning block; None when a ``<think>`` is never closed."""
    last_open, last_close = text.rfind("<think>"), text.rfind("</think>")
    if last_open > last_close:
        return None
    return text[last_close + len("</think>"):] if last_close >= 0 else text


def extract(response: str) -> tuple[str | None, str]:
    """(answer text, method) from a response; (None, reason) when nothing can be read."""
    text = strip_think(response)
    if text is None:
        return None, "unclosed_think"
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed.strip(), "boxed"
    tail = text[-TAIL_CHARS:]
    tags = _ANSWER_TAG.findall(tail)
    if tags:
        return tags[-1].strip(), "answer_tag"
    phrases = _PHRASE.findall(tail)
    if phrases and phrases[-1].strip():
        return phrases[-1].strip().rstrip("."), "answer_phrase"
    lines = [ln.strip() for ln in tail.splitlines() if ln.strip()]
    if lines:
        return lines[-1], "last_line"
    return None, "none"


# -- normalisation ----------------------------------------------------------------------------
_WRAPPERS = re.compile(r"\\(?:text|textbf|mathrm|mathbf|mbox)\s*\{([^{}]*)\}")
_DEGREES = re.compile(
    r"\^\s*\{?\\circ\}?|\^\s*\{?\\degree\}?|\\degree|\\textcirc|°|\\circ|"
    r"\s*\b(?:degrees?|deg)\b", re.I)
_UNIT = re.compile(r"^(-?[\d.,/]+)\s*(?:[a-zA-Z]{1,12}(?:\^?\{?[23]\}?)?|%)$")
_THOUSANDS = re.compile(r"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_FRAC = re.compile(r"^(-?)\\[dt]?frac\{(-?\d+)\}\{(-?\d+)\}$")


def normalize(ans: str) -> str:
    s = ans.strip()
    s = s.replace("\\left", "").replace("\\right", "").replace("\\!", "").replace("\\,", "")
    s = s.strip("$ ").removeprefix("\\(").removesuffix("\\)")
    s = s.removeprefix("\\[").removesuffix("\\]").strip()
    prev = None
    while prev != s:
        prev, s = s, _WRAPPERS.sub(r"\1", s)
    s = _DEGREES.sub("", s).strip()
    s = s.rstrip(".").strip()
    m = _UNIT.match(s)
    if m:
        s = m.group(1)
    if _THOUSANDS.match(s):
        s = s.replace(",", "")
    return s


def to_number(s: str) -> Fraction | None:
    """A plain number in `s` (int, decimal, a/b, \\frac{a}{b}), or None."""
    if len(s) > 64:
        return None
    m = _FRAC.match(s.replace(" ", ""))
    if m:
        num, den = int(m.group(2)), int(m.group(3))
        if den == 0:
            return None
        return Fraction(num, den) * (-1 if m.group(1) else 1)
    try:
        if "/" in s:
            a, b = s.split("/")
            return Fraction(Fraction(a.strip()), Fraction(b.strip()))
        return Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None


def _numbers_equal(a: Fraction, b: Fraction) -> bool:
    if a == b:
        return True
    return abs(float(a) - float(b)) <= 1e-6 * max(1.0, abs(float(a)), abs(float(b)))


def _math_verify(target: str, answer: str) -> bool:
    if len(answer) > MAX_ANSWER_CHARS:
        return False
    try:
        from math_verify import parse, verify
        # math-verify's timeouts use SIGALRM, which only the main thread may set.
        timeout = 5 if threading.current_thread() is threading.main_thread() else None
        gold = parse(f"${target}$", parsing_timeout=timeout)
        pred = parse(f"${answer}$", parsing_timeout=timeout)
        return bool(gold and pred and verify(gold, pred, timeout_seconds=timeout))
    except Exception:  # a checker failure is a wrong answer, never a crash
        return False


def equivalent(answer: str, target: str) -> bool:
    a, t = normalize(answer), normalize(target)
    if a == t and a:
        return True
    na, nt = to_number(a), to_number(t)
    if na is not None and nt is not None:
        return _numbers_equal(na, nt)
    if nt is not None and na is None and not re.search(r"[\d\\]", a):
        return False  # words where a number was due: nothing for the symbolic checker
    return _math_verify(t, a)


# -- multiple choice ----------------------------------------------------------------------------
_LETTER_PATTERNS = [
    re.compile(r"^\(?([A-Z])\)?[.:)]?$"),  # B, (B), B., B), B:
    re.compile(r"^\(([A-Z])\)\s"),  # (B) 5
    re.compile(r"^([A-Z])[.)]\s"),  # B. 5 / B) 5
    re.compile(r"^(?:option|choice)\s*\(?([A-Z])\)?\b", re.I),  # option B
]


def to_letter(answer: str, choices: list[str]) -> str | None:
    """The option an answer names: by letter, else by the option's value; None otherwise.
    We-Math's answer template wraps it in double angle brackets: <<B>>."""
    s = normalize(answer)
    if s.startswith("<<") and s.endswith(">>"):
        s = s[2:-2].strip()
    valid = LETTERS[:len(choices)]
    for pat in _LETTER_PATTERNS:
        m = pat.match(s)
        if m and m.group(1).upper() in valid:
            return m.group(1).upper()
    hits = [LETTERS[i] for i, c in enumerate(choices) if s and equivalent(s, c)]
    return hits[0] if len(hits) == 1 else None


def target_letter(target: str, choices: list[str]) -> str:
    t = target.strip().strip("()")
    if len(t) == 1 and t.upper() in LETTERS[:len(choices)]:
        return t.upper()
    return to_letter(target, choices) or target


def _rounded_equal(answer: str, target: str, precision: int) -> bool | None:
    """MathVista's rule for float answers: equal after rounding both to `precision`
    decimals; None when either side is not a number."""
    a, t = to_number(normalize(answer)), to_number(normalize(target))
    if a is None or t is None:
        return None
    return round(float(a), precision) == round(float(t), precision)


def _list_equal(answer: str, target: str) -> bool | None:
    """Bracketed lists ("[1, 2]") element by element; None when the target is no list."""
    t = normalize(target)
    if not (t.startswith("[") and t.endswith("]")):
        return None
    a = normalize(answer).strip("()[]")
    ta, aa = [x.strip() for x in t[1:-1].split(",")], [x.strip() for x in a.split(",")]
    return len(ta) == len(aa) and all(equivalent(x, y) for x, y in zip(aa, ta, strict=True))


def grade(response: str, target: str, choices: list[str] | None = None,
          precision: int | None = None) -> Grade:
    """Grade one response against its target; with `choices`, as multiple choice; with
    `precision`, numbers compare after rounding to that many decimals."""
    try:
        answer, method = extract(response)
        if answer is None:
            return Grade(False, None, method)
        if choices:
            letter = to_letter(answer, choices)
            return Grade(letter is not None and letter == target_letter(target, choices),
                         answer, method)
        verdict = None if precision is None else _rounded_equal(answer, target, precision)
        if verdict is None:
            verdict = _list_equal(answer, target)
        if verdict is None:
            verdict = equivalent(answer, target)
        return Grade(verdict, answer, method)
    except Exception:  # grading must never take a run down
        return Grade(False, None, "error")

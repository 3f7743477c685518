"""Rule-based answer extraction and grading: one grader, every rule in one place.

`grade(response, target, choices=None)` raises only on a bug of its own (the symbolic
checker's failure is an outcome), stays linear in the response length, and gives the symbolic
checker one time budget per response (`GRADE_SECONDS`). Extraction takes, in order: the last
``\\boxed{...}`` (balanced braces; the innermost of boxes that hold only a box), the last
``<answer>...</answer>``, the last answer phrase ("the answer is ...", "Final answer: ...",
"The correct option letter is ...", "the final value is ...", 答案是 ..., We-Math's
"<Answer>: <<B>>", or display math after one, colon or not), then the last non-empty line, or
the value that ends it when it is prose. A reasoning block (``<think>...</think>`` or the
tags given) is dropped first; an unclosed one means no answer; full-width forms read as
ASCII; digit groups written with ``,\\!`` or thin spaces as plain commas.

Before any comparison, the final statement (the text the answer was read from) is checked:
a value it negates ("not 7", "7 is wrong", "\\neq 7"), a hedge in any position ("4 or 5",
"B (or maybe C)"), several or every option named as the answer, and a false equation
("4 = 5") are wrong. Equivalence: numbers (fractions, decimals, thousands separators, a
decimal comma no grouping would put, degrees, units and currencies stripped; whole numbers
exactly, others to 6 significant digits), intervals and the inequalities that state them,
matrices in any notation, then math-verify for expressions and relations; only answer-shaped
text (short, not prose) reaches math-verify. Where the statement holds more than the span (a
relation, a set, a matrix in a sentence), the statement's math is compared. Several boxes on
the last lines state a set or list target element by element. Multiple choice accepts the
letter in its usual forms or the option's own value, and never guesses.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import signal
import threading
import time
from contextvars import ContextVar
from dataclasses import dataclass
from fractions import Fraction

from tasks.answers import LETTERS, boxed_spans, last_boxed, matching_braces

MAX_ANSWER_CHARS = 200  # longer "answers" are not sent to the symbolic checker
TAIL_CHARS = 2000  # answer phrases are looked for in the response's tail only

logging.getLogger("math_verify").setLevel(logging.ERROR)


@dataclass(frozen=True)
class Grade:
    correct: bool
    extracted: str | None  # the answer as read from the response; None: nothing to read
    method: str  # boxed | answer_tag | answer_phrase | last_line | last_value | sole_number |
    # none | unclosed_think
    rule: str = ""  # how the verdict was reached: no_answer | option | no_option | hedge |
    # echo | rounded | list | boxes | exact | number | not_a_number | prose | math_verify |
    # math_verify_timeout | math_verify_error (the checker failed on this pair: not equal)


# -- extraction ---------------------------------------------------------------------------------
_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.S | re.I)
_PHRASE = re.compile(r"(?:final (?:answer|value)|answer(?: to (?:the|this) question)?|"
                     r"(?:correct |the )(?:option|choice)(?: letter)?|option letter|"
                     r"正确(?:选项|答案)|答案|选项)"
                     r"(?:\s*>)?\s*(?:is|:|=|是|为)\s*:?\s*([^\n]*)", re.I)
# an answer set in display math on the lines after its phrase ("Answer:\n\\[ 9 \\]"), the
# phrase with or without its colon ("Answer \\[ 9 \\]")
_DISPLAY = re.compile(r"\s*(?:\\\[(.+?)\\\]|\$\$(.+?)\$\$)", re.S)
_PHRASE_DISPLAY = re.compile(r"(?:final answer|answer)(?:\s+is)?\s*[:.]?(?=\s*(?:\\\[|\$\$))",
                             re.I)
# full-width forms (（D）, Ｂ, ：) and CJK punctuation read as their ASCII counterparts
_FULL_WIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)} | {
    0x3000: " ", ord("。"): ".", ord("、"): ","}
# two different candidates named as the answer: "(B) ... or (C)", "B and C", "4 or 5"
_OPTION_HEDGE = re.compile(r"\(([A-H])\)[^()\n]{0,60}?(?:\b(?:and|or)\b|或|和)[^()\n]{0,20}?"
                           r"\(([A-H])\)")
_LETTERS_HEDGE = re.compile(r"^\(?([A-H])\)?\s*(?:,|/|&|\band\b|\bor\b|或|和)\s*\(?([A-H])\)?"
                            r"[.\s]*$")
_VALUE_HEDGE = re.compile(r"(?<![\w.])(-?\d+(?:\.\d+)?)\s*\(?\s*(?:\bor\b|或|\\lor\b|\\vee\b|∨)\s*"
                          r"(?:maybe\s+|perhaps\s+)?(-?\d+(?:\.\d+)?)(?![\w.]*\d)")
# "Choices: (A) 3 (B) 4": a marker and the option's text, as a prompt lists them
_MARKER = r"(?:^|(?<=[\s(:]))\(?{letter}[.):]\s*{text}(?=\s|$|[.,;])"
# closing lines that carry no answer: "I hope this helps!", "Do you have other questions?"
_CLOSING = re.compile(r"\?\s*$|^(?:i hope|hope this|let me know|feel free|is there anything)",
                      re.I)
_NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?(?![\w.]*\d)")
# a sentence that declines to answer names no value, whatever numbers it holds
_REFUSAL = re.compile(r"\b(?:cannot|can't|can not|unable|impossible|not possible|not provided|"
                      r"insufficient|not enough|not sufficient|not clear|none of|does not "
                      r"provide|please provide|without seeing|not an option|a mistake in)\b",
                      re.I)
_LEADING_VALUE = re.compile(r"(-?\d[\d,]*(?:\.\d+)?)(?=\s+[A-Za-z]|\s*$)")
# an option named inside a closing sentence: "option (B) no is the correct answer"
_NAMED_OPTION = re.compile(r"(?:option|choice|answer is)\s*\(?([A-Z])\)?(?![\w'])|"
                           r"\(([A-Z])\)\s+\S.{0,40}?is the (?:correct|right) answer")
_BOLD = re.compile(r"\*\*([^*\n]{1,80})\*\*")
# a value and the one it replaces: "7, not 8", "(B) rather than (C)"
_CORRECTION = re.compile(r"^\s*(-?\d[\d,]*(?:\.\d+)?|\(?[A-H]\)?)\s*[,;]?\s*(?:and\s+)?"
                         r"(?:not|rather than|instead of)\b", re.I)
_PROSE_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}")  # a word of prose, not a \command
_END_TOKENS = re.compile(r"(?:</s>|<\|im_end\|>|<\|endoftext\|>|<\|eot_id\|>)\s*$")
# the value that ends a line of prose: a number (unit or degree after it) or an option
_LAST_VALUE = re.compile(r"(?:^|[\s(=$:€£¥])(-?\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+)?|\(?[A-H]\))"
                         r"\s*(?:°|%|[$€£¥]|[a-zA-Z]{1,6}(?:[²³]|\^\{?[23]\}?)?(?![\w^]))?"
                         r"\s*[.!)]?\s*$")
_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}")
_MARKUP = re.compile(r"\*\*|__|`")
_NUMBER_UNITS = re.compile(r"(?<=\d)\s*(?:[a-zA-Z]+\b\s*){1,2}")


THINK = ("<think>", "</think>")  # the reasoning block's tags, as most reasoning models
# write them (others: a pair of the model's own, `--reasoning-tags`)


def split_reasoning(text: str, tags: tuple[str, str] = THINK) -> tuple[str, str | None]:
    """(the reasoning block, tags included, "" without one; the text after it, None when the
    block is never closed). A closing tag with no opening one closes a block that the chat
    template opened in the prompt."""
    opening, closing = tags
    last_open, last_close = text.rfind(opening), text.rfind(closing)
    if last_open > last_close:
        return text, None
    if last_close < 0:
        return "", text
    end = last_close + len(closing)
    return text[:end], text[end:]


def answer_shaped(s: str) -> bool:
    """Short and not prose: at most one word of three letters or more, LaTeX commands, the
    names of environments (a matrix's) and unit words after a number aside ("9 yards", "10
    square units"). Only such strings go to the symbolic checker."""
    s = _NUMBER_UNITS.sub("", _ENVIRONMENT.sub("", s))
    return len(s) <= MAX_ANSWER_CHARS and len(_WORD.findall(s)) <= 1


def extract(response: str, tags: tuple[str, str] = THINK) -> tuple[str | None, str]:
    """(answer text, method) from a response; (None, reason) when nothing can be read."""
    text = _clean(response, tags)
    answer, method, _, _ = (None, "unclosed_think", "", "") if text is None else _read(text)
    return answer, method


# digit groups as prompts and LaTeX write them: "1,\\! 000", "1\\,000", thin spaces
_GROUPS = re.compile(r"(?<=\d)(?:,\\!\s*|\\[,!]|[\u2009\u202f])(?=\d{3}(?!\d))")


def _clean(response: str, tags: tuple[str, str]) -> str | None:
    """The text the answer is read from: after the reasoning block (None when one is never
    closed), end tokens dropped, full-width forms as ASCII, digit groups written as LaTeX or
    thin spaces write them as plain commas."""
    text = split_reasoning(response, tags)[1]
    if text is None:
        return None
    text = _END_TOKENS.sub("", text).translate(_FULL_WIDTH)
    return _GROUPS.sub(lambda m: "," if m.group().startswith(",") else "", text)


def _read(text: str) -> tuple[str | None, str, str, str]:
    """(answer, method, the prose it was cut from or "", the final statement: the text the
    answer was read from, whole) of a cleaned text."""
    spans = boxed_spans(text)
    if spans:
        a, b = spans[-1]
        line = text[text.rfind("\n", 0, a) + 1:(text.find("\n", b) + 1 or len(text) + 1) - 1]
        return text[a:b].strip(), "boxed", "", line
    boxed = last_boxed(text)  # a bare "\\boxed 7"
    if boxed is not None:
        return boxed.strip(), "boxed", "", boxed
    tail = text[-TAIL_CHARS:]
    tags = _ANSWER_TAG.findall(tail)
    if tags:
        return tags[-1].strip(), "answer_tag", "", tags[-1]
    phrases = [m.start(1) for m in _PHRASE.finditer(tail)] + [
        m.end() for m in _PHRASE_DISPLAY.finditer(tail)]
    if phrases:
        start = max(phrases)
        display = _DISPLAY.match(tail, start)
        value = (display.group(1) or display.group(2)) if display else \
            tail[start:].split("\n", 1)[0]
        if value.strip():
            return (*_from_prose(value.strip().rstrip("."), "answer_phrase"), value.strip())
    lines = [ln.strip() for ln in tail.splitlines() if ln.strip()]
    while len(lines) > 1 and _CLOSING.search(lines[-1]):
        lines.pop()  # a closing pleasantry or question is not the answer
    if not lines:
        return None, "none", "", ""
    return (*_from_prose(lines[-1], "last_line"), lines[-1])


def _from_prose(text: str, method: str) -> tuple[str, str, str]:
    """An answer-shaped text as it is; from prose, the value it ends with, its one bold
    span, or the one number of its last sentence; else the prose itself."""
    if m := _CORRECTION.match(text):  # "7, not 8"
        return m.group(1), method, text
    shaped = answer_shaped(_MARKUP.sub("", text))
    if not shaped and method == "answer_phrase" and (
            m := _LEADING_VALUE.match(_MARKUP.sub("", text))):
        return m.group(1), "answer_phrase", text  # "the answer is 1982 with a total of ..."
    if len(_PROSE_WORD.findall(_NUMBER_UNITS.sub(" ", text))) >= 2 and (
            m := _LAST_VALUE.search(text[-80:])) and not _negated(text, m.group(1)):
        return m.group(1), "last_value", text  # "It is not 10, it's 1,22"
    if shaped:
        return text, method, ""
    bold = _BOLD.findall(text)
    if len(bold) == 1 and answer_shaped(bold[0]):
        return bold[0].strip(), "bold", text
    m = _LAST_VALUE.search(text[-80:])
    if m:
        return m.group(1), "last_value", text
    sentence = re.split(r"(?<=[.!?])\s+", text.rstrip(".!"))[-1]
    numbers = {n.replace(",", "") for n in _NUMBER.findall(sentence)}
    if len(numbers) == 1 and not _REFUSAL.search(sentence):  # "There are 10 houses."
        return numbers.pop(), "sole_number", text
    return text, method, text


# -- normalisation ----------------------------------------------------------------------------
_WRAPPER = re.compile(r"\\(?:text|textbf|mathrm|mathbf|mbox)\s*\{")
_DEGREES = re.compile(
    r"\^\s*\{?\\circ\}?|\^\s*\{?\\degree\}?|\\degree|\\textcirc|°|\\circ|"
    r"\s*\b(?:degrees?|deg)\b", re.I)
_UNIT = re.compile(r"^[$€£¥]?\s*(-?[\d.,/]+)\s*(?:(?:[a-zA-Z]{1,12}\s*){1,2}"
                   r"(?:\^?\{?[23]\}?|[²³])?|%|\\%|[$€£¥])?$")
_THOUSANDS = re.compile(r"^-?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?$")
_SPACED_THOUSANDS = re.compile(r"^-?\d{1,3}(?:[ \u2009\u202f]\d{3})+(?:\.\d+)?$")
_WORDS = re.compile(r"^[^\W\d_]{2,}(?: [^\W\d_]{2,})*$")  # words of letters, no math
_DECIMAL_COMMA = re.compile(r"^-?\d+,\d+$")  # a decimal comma, where no grouping would put it
_ENVIRONMENT = re.compile(r"\\(?:begin|end)\s*\{[^{}]*\}(?:\{[^{}]*\})?")
_MATRIX = re.compile(r"\\(begin|end)\{(?:[bBvV]?matrix|array)\}(?:\{[^{}]*\})?")
_FRAC = re.compile(r"^(-?)\\[dt]?frac\{(-?\d+)\}\{(-?\d+)\}$")


def normalize(ans: str) -> str:
    s = _MARKUP.sub("", ans).strip()
    s = s.replace("\\left", "").replace("\\right", "").replace("\\!", "").replace("\\,", "")
    s = s.replace("{,}", ",")
    if "\\begin" in s:  # every matrix notation as pmatrix, on one line
        s = " ".join(_MATRIX.sub(lambda m: f"\\{m.group(1)}{{pmatrix}}", s).split())
        s = re.sub(r"^[(\[]\s*(\\begin\{pmatrix\}.*\\end\{pmatrix\})\s*[)\]]$", r"\1", s)
    s = re.sub(r"(?<!\\)\\ ", " ", s)  # a LaTeX space, not the end of a matrix row
    s = s.replace("~", " ").replace("^{2}", "^2").replace("^{3}", "^3")
    s = s.strip("$ ").removeprefix("\\(").removesuffix("\\)")
    s = s.removeprefix("\\[").removesuffix("\\]").strip()
    s = _unwrap(s)
    s = _DEGREES.sub("", s).strip()
    s = s.rstrip(".").strip()
    m = _UNIT.match(s)
    if m:
        s = m.group(1)
    if _THOUSANDS.match(s):
        s = s.replace(",", "")
    if _SPACED_THOUSANDS.match(s):
        s = re.sub(r"[ \u2009\u202f]", "", s)
    return s


def _unwrap(s: str) -> str:
    """`\\text{...}` and its kin replaced by what they hold, at any depth, in one pass."""
    opens = [m for m in _WRAPPER.finditer(s)]
    if not opens:
        return s
    match = matching_braces(s)
    cuts = sorted([(m.start(), m.end()) for m in opens if m.end() - 1 in match]
                  + [(match[m.end() - 1], match[m.end() - 1] + 1) for m in opens
                     if m.end() - 1 in match])
    out, at = [], 0
    for a, b in cuts:
        out.append(s[at:a])
        at = b
    return "".join(out) + s[at:]


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
    """Equal, or (not both whole) equal to 6 significant digits."""
    if a == b or a.denominator == b.denominator == 1:
        return a == b
    return abs(float(a) - float(b)) <= 1e-6 * max(1.0, abs(float(a)), abs(float(b)))


# Answers given in a requested format (a box or an answer tag), not read off a last line.
FORMATTED = ("boxed", "answer_tag")


def in_format(answer: str | None, method: str) -> bool:
    """Whether an answer `extract` read was given in the asked format: a box or an answer tag
    that holds something (an empty `\\boxed{}` is no answer in any format)."""
    return method in FORMATTED and bool(answer and answer.strip())
GRADE_SECONDS = 1.5  # the symbolic checker's time for one response, all its comparisons
# together (a comparison gets what is left of it; none is left: a time-out, not a wait)
HELPER_SECONDS = 30.0  # from a thread other than the main one, the helper processes' slack
# beyond that: their start-up and the checker's first import
HELPER_PROCESSES = max(1, min(4, os.cpu_count() or 1))
_HELPER: list = []  # the processes that check for threads other than the main one
_HELPER_LOCK = threading.Lock()  # held only to start or end them, never while one checks
_DEADLINE: ContextVar[float | None] = ContextVar("grade_deadline", default=None)


@contextlib.contextmanager
def budget(seconds: float = GRADE_SECONDS):
    """One response's time for the symbolic checker: every comparison made inside shares it
    (an outer budget, where there is one, stands)."""
    token = _DEADLINE.set(time.monotonic() + seconds) if _DEADLINE.get() is None else None
    try:
        yield
    finally:
        if token is not None:
            _DEADLINE.reset(token)


def _math_verify(target: str, answer: str) -> tuple[bool, str]:
    """The symbolic checker, the one guarded call of grading: its time-out or its failure on
    a pair is a recorded outcome (the rule), not an exception. It gets what is left of the
    response's budget, bounded by a timer that only a main thread may set: from any other
    thread (a trainer's reward workers) the pair is checked in the main thread of one of a
    few helper processes, threads never waiting on each other, and a helper that overruns
    is ended."""
    deadline = _DEADLINE.get()
    seconds = GRADE_SECONDS if deadline is None else deadline - time.monotonic()
    if seconds < 0.01:
        return False, "math_verify_timeout"
    if threading.current_thread() is threading.main_thread():
        return _check(target, answer, seconds)
    import multiprocessing
    with _HELPER_LOCK:
        if not _HELPER:
            _HELPER.append(multiprocessing.get_context("spawn").Pool(HELPER_PROCESSES))
            atexit.register(_HELPER[0].terminate)  # ended with the process, quietly
        pool = _HELPER[0]
    try:
        return pool.apply_async(_check, (target, answer, seconds)).get(
            seconds + HELPER_SECONDS)
    except (multiprocessing.TimeoutError, ValueError):  # ValueError: ended by another
        with _HELPER_LOCK:
            if _HELPER and _HELPER[0] is pool:
                _HELPER.pop().terminate()
        return False, "math_verify_timeout"


def _as_math(s: str) -> str:
    """The text math-verify is given: math as it is, anything else between dollars."""
    return s if re.search(r"\\[(\[]|\$|\\boxed", s) else f"${s}$"


def _check(target: str, answer: str, seconds: float) -> tuple[bool, str]:
    """math-verify on one pair, ended after `seconds` by a timer of this (main) thread."""
    from math_verify import parse, verify
    from math_verify.errors import TimeoutException

    def expire(*_):
        raise TimeoutException("the response's time for the symbolic checker is spent")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        gold = parse(_as_math(target), parsing_timeout=None, raise_on_error=True)
        pred = parse(_as_math(answer), parsing_timeout=None, raise_on_error=True)
        return bool(gold and pred and verify(gold, pred, timeout_seconds=None,
                                             raise_on_error=True)), "math_verify"
    except TimeoutException:
        return False, "math_verify_timeout"
    except Exception:  # the checker's own failure on this pair
        return False, "math_verify_error"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def equivalent(answer: str, target: str) -> bool:
    """Whether a free-form answer equals the target (see `judge_equivalent`)."""
    return judge_equivalent(answer, target)[0]


def judge_equivalent(answer: str, target: str) -> tuple[bool, str]:
    """(equal, the rule that decided): the same text, the same number, words where a number
    was due, prose, or the symbolic checker on short answer-shaped text."""
    a, t = normalize(answer), normalize(target)
    if a == t and a:
        return True, "exact"
    na, nt = to_number(a), to_number(t)
    if na is None and nt is not None and _DECIMAL_COMMA.match(a) and not _THOUSANDS.match(a):
        na = to_number(a.replace(",", "."))  # "3,5", "0,111": no grouping puts a comma there
    if na is not None and nt is not None:
        return _numbers_equal(na, nt), "number"
    if (ia := _interval(answer)) is not None and (it := _interval(target)) is not None:
        return ia == it, "interval"  # "[2, 5)" and "2 \\le x < 5" alike
    if nt is not None and na is None and not re.search(r"[\d\\]", a):
        return False, "not_a_number"  # words where a number was due
    if not answer_shaped(a) or len(a) > MAX_ANSWER_CHARS:
        return False, "prose"  # a number in a sentence is not an answer
    wa, wt = bool(_WORDS.match(a)), bool(_WORDS.match(t))
    if (wa or wt) and (wa or na is not None) and (wt or nt is not None):
        # words (and a number against words) compared as text: no symbol algebra makes
        # "red" "blue" (r*e*d, b*l*u*e), nor 1 "green"
        return a.casefold() == t.casefold(), "words"
    return _math_verify(t, a)


# -- multiple choice ----------------------------------------------------------------------------
_LETTER_PATTERNS = [
    re.compile(r"^\(?([A-Z])\)?[.:),]?$"),  # B, (B), B., B), B:
    re.compile(r"^\(([A-Za-z])\)"),  # (B) 5, (B). text, (B), No, (b)
    re.compile(r"^([A-Z])\s*[.:),\]]\s*\S"),  # B. 5, B: 16, B) 5, B, no
    re.compile(r"^([A-Z])\s*\("),  # A (obtuse)
    re.compile(r"^(?:option|choice)\s*\(?([A-Z])\)?(?![A-Za-z])", re.I),  # option B
]


def to_letter(answer: str, choices: list[str]) -> str | None:
    """The option an answer names: by letter, else by the option's value; None otherwise.
    Markdown emphasis is dropped; We-Math's template wraps the letter in <<B>>."""
    s = normalize(_MARKUP.sub("", answer)).strip()
    if s.startswith("<<"):
        s = s[2:].split(">>", 1)[0].strip()
    valid = LETTERS[:len(choices)]
    if (m := re.match(r"\(([A-Z])\)", s)) and m.group(1) not in valid:
        return None  # "(E) 17" for four options: a list of made-up options, not an answer
    for pat in _LETTER_PATTERNS:
        m = pat.match(s)
        if m and m.group(1).upper() in valid:
            letter = m.group(1).upper()
            rest = s[m.end(1):].strip(" ().:,]")
            if s[m.end(1):].lstrip().startswith(":") and rest and not answer_shaped(rest):
                break  # "A: The triangle is ..." labels a line, it names no option
            named = _by_value(rest, choices, strict=True) if rest and answer_shaped(rest) else []
            # "(B) 1800" where 1800 is option E: the letter and the value disagree
            return None if named and letter not in named else letter
    if not s:
        return None
    in_parens = {x for x in re.findall(r"\(([A-Z])\)", s) if x in valid}
    if len(in_parens) == 1 and len(s) <= 80:  # "∠2 = (C) 15°"
        return in_parens.pop()
    named = _by_value(s, choices) if answer_shaped(s) else _mentioned(s, choices)
    return named[0] if len(named) == 1 else None


def _by_value(s: str, choices: list[str], strict: bool = False) -> list[str]:
    """The options whose value `s` is; `strict`: the same text or the same number only."""
    exact = [LETTERS[i] for i, c in enumerate(choices) if s.casefold() == normalize(c).casefold()]
    if strict:
        n = to_number(normalize(s))
        return exact or [LETTERS[i] for i, c in enumerate(choices)
                         if n is not None and to_number(normalize(c)) == n]
    equal = [LETTERS[i] for i, c in enumerate(choices) if equivalent(s, c)]
    named = equal if len(equal) > 1 else exact or equal  # a value of several options: none
    if not named and to_number(normalize(s)) is not None:  # 31 for "Around 31%"
        named = [LETTERS[i] for i, c in enumerate(choices)
                 if [to_number(n) for n in _NUMBER.findall(c)] == [to_number(normalize(s))]]
    return named


def _mentioned(text: str, choices: list[str]) -> list[str]:
    """The options whose text a closing sentence of prose names ("...the most affected
    would be the grasshoppers."); Yes / No only as the sentence's first word."""
    sentences = re.split(r"(?<=[.!?])\s+", text.strip())
    sentence = sentences[-1].casefold()
    if _REFUSAL.search(sentence) or re.match(r"\([a-z]\)", sentence):
        return []  # declines, or lists options under letters of its own
    letters = {a or b for a, b in _NAMED_OPTION.findall(sentences[-1])} & set(
        LETTERS[:len(choices)])
    if letters:
        return sorted(letters)
    out = []
    for i, c in enumerate(choices):
        c = normalize(c).casefold()
        if c in ("yes", "no"):  # the first word of the answer or its last sentence, or
            # concluded at its end ("..., so no.")
            hit = any(re.match(rf"{c}\b", x) for x in (sentence, sentences[0].casefold())) or (
                re.search(rf"\b(?:so|thus|hence|therefore)\b[ ,]*(?:the answer is )?{c}[.!]*$",
                          sentence) is not None)
        else:
            hit = len(c) > 1 and re.search(rf"(?<!\w){re.escape(c)}(?!\w)", sentence) is not None
        if hit:
            out.append(LETTERS[i])
    return out


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
          precision: int | None = None, tags: tuple[str, str] = THINK) -> Grade:
    """Grade one response against its target; with `choices`, as multiple choice; with
    `precision`, numbers compare after rounding to that many decimals; the answer is read
    after the reasoning block `tags` delimit. Nothing is caught
    here but the symbolic checker's own failure: a grader bug raises, for the caller to
    record, rather than passing for a wrong answer. The symbolic checker has `GRADE_SECONDS`
    for the whole response."""
    with budget():
        return _grade(response, target, choices, precision, tags)


def _grade(response: str, target: str, choices: list[str] | None, precision: int | None,
           tags: tuple[str, str]) -> Grade:
    text = _clean(response, tags)
    answer, method, prose, statement = (None, "unclosed_think", "", "") if text is None \
        else _read(text)
    if answer is None:
        return Grade(False, None, method, "no_answer")
    if _negated(statement, answer):  # "not 7", "7 is wrong", "\\neq 7", "7? No."
        return Grade(False, answer, method, "negated")
    if choices:
        return _grade_choice(text, answer, method, prose, statement, target, choices)
    if precision is not None and (v := _rounded_equal(answer, target, precision)) is not None:
        return Grade(v, answer, method, "rounded")
    boxes, line = _final_boxes(text) if method == "boxed" else ([], "")
    elements = _elements(target)
    if len(elements) > 1 and len(boxes) >= len(elements):  # "\\boxed{1}, \\boxed{2}"
        return Grade(_same_elements(boxes[-len(elements):], elements, target),
                     ", ".join(boxes), method, "boxes")
    if (v := _list_equal(answer, target)) is not None:
        return Grade(v, answer, method, "list")
    if len(elements) == 1 and _hedges_values(answer, prose or statement, boxes, line):
        return Grade(False, answer, method, "hedge")
    if _false_equation(answer):  # "\\boxed{4 = 5}" states nothing
        return Grade(False, answer, method, "false_equation")
    # where the final statement holds more than the span read from it (a relation, a
    # matrix, a set), the statement is what is compared: the verdict does not depend on
    # which rule found the span
    math = _statement_math(statement, answer, target)
    if math and _RELATION.search(math) and not _RELATION.search(answer):
        verdict, rule = judge_equivalent(math, target)  # "x \\geq 5" is not its bound, 5
        return Grade(verdict, answer, method, "statement_" + rule)
    verdict, rule = judge_equivalent(answer, target)
    if not verdict and math:
        verdict, rule = judge_equivalent(math, target)
        rule = "statement_" + rule
    return Grade(verdict, answer, method, rule)


def _grade_choice(text: str, answer: str, method: str, prose: str, statement: str,
                  target: str, choices: list[str]) -> Grade:
    """Multiple choice: the one option the answer names, never a guess between several."""
    if method not in ("boxed", "answer_tag") and _echoes_options(text, choices):
        return Grade(False, answer, method, "echo")
    named = _options_named(answer, choices) | _options_named(prose, choices)
    want = _target_letters(target, choices)
    if len(named) > 1:  # "A, B, C or D", "B (or maybe C)", "Option B. Option C."
        return Grade(named == want, answer, method, "options" if named == want else "hedge")
    if _hedges_options(normalize(answer), prose):
        return Grade(False, answer, method, "hedge")
    letter = to_letter(answer, choices)
    if letter is None and len(named) == 1 and len(_OPTION_MARKER.findall(answer)) > 1:
        letter = next(iter(named))  # "It is (B), not (C)."
    if letter is None and prose:  # "...the highest is Rec, which is 30%."
        found = _mentioned(prose, choices)
        letter = found[0] if len(found) == 1 else None
    if letter is not None and any(_negated(statement, v) for v in (
            f"({letter})", choices[LETTERS.index(letter)])):
        return Grade(False, answer, method, "negated")  # "It is not (B).", "Not hawks."
    return Grade(letter is not None and {letter} == want, answer, method,
                 "no_option" if letter is None else "option")


# a negation of the value that follows ("not 7", "isn't (B)", "不是 7", "\\neq 7"), or of the
# value before ("7 is wrong", "7? No.")
_NEGATION_BEFORE = re.compile(r"(?:\b(?:not|never|isn't|aren't|wasn't|cannot be|can't be)|"
                              r"不是|并非|不为)\s*(?:\w+\s+){0,1}$", re.I)
_NEGATION_AFTER = re.compile(r"^[\s$)}\]]*(?:(?:is|are|was)\s+(?:(?:definitely|clearly|"
                             r"certainly)\s+)?(?:wrong|incorrect|false|not\b)|\?\s*(?:no|nope)"
                             r"\b|[,.]?\s*(?:is\s+)?(?:wrong|incorrect)\b)", re.I)


def _negated(statement: str, value: str) -> bool:
    """The final statement negates the value it names: a negation right before the value's
    last mention (in its clause), or a verdict of "wrong" right after it; an answer that
    is a bare relation of inequality (``\\neq 7``) names no value either."""
    value = value.strip()
    if re.match(r"(?:\\neq?\b|≠|!=|\\not\s*=)", value):
        return True
    if not statement or not value:
        return False
    # the value as the statement writes it: whole, normalised, or its first or last number
    numbers = _NUMBER.findall(value)
    for v in dict.fromkeys([value, normalize(value), *numbers[:1], *numbers[-1:]]):
        at = statement.rfind(v) if v else -1
        if at < 0:
            continue
        before = re.split(r"[,;:!?。，；]|\bbut\b|\bit(?:'s| is)\b", statement[:at])[-1]
        if _NEGATION_BEFORE.search(before) or _NEGATION_AFTER.match(statement[at + len(v):]):
            return True
    return False


_OPTION_MARKER = re.compile(r"\(([A-Z])\)|(?:option|choice)\s*\(?([A-Z])\b\)?", re.I)
# a list of letters and nothing else: "A, B, C, or D", "B/C", "\\text{A,B,C or D}"
_LETTER_LIST = re.compile(r"^[\s(]*[A-Z]\)?(?:(?:[\s,;/&(]|\b(?:or|and|maybe|perhaps|possibly|"
                          r"either)\b|或|和)+[A-Z]\)?)+[\s.)]*$")


# a list of two or more letters that ends a sentence: "... are A and C.", "...: B, D"
_TRAILING_LETTERS = re.compile(r"(?:^|[\s:])((?:\(?[A-Z]\)?\s*(?:,|;|/|&|\band\b|\bor\b|或|和)\s*)+"
                               r"\(?[A-Z]\)?)[\s.]*$")


def _options_named(text: str, choices: list[str]) -> set[str]:
    """The option letters a stated answer names as its own: under a marker ("(B)",
    "option B"), or as a list of letters alone; a letter the text negates ("not (C)") is not
    named."""
    if not text:
        return set()
    valid = LETTERS[:len(choices)]
    s = _unwrap(_MARKUP.sub("", text))
    found = {(a or b).upper(): m.start() for m in _OPTION_MARKER.finditer(s)
             for a, b in [m.groups()] if (a or b).upper() in valid}
    if _LETTER_LIST.match(s):
        found |= {c: s.rfind(c) for c in re.findall(r"\b[A-Z]\b", s) if c in valid}
    elif m := _TRAILING_LETTERS.search(s):  # "The answers are A and C."
        found |= {c: m.start(1) + m.group(1).rfind(c)
                  for c in re.findall(r"\b[A-Z]\b", m.group(1)) if c in valid}
    return {c for c, at in found.items() if not _NEGATION_BEFORE.search(
        re.split(r"[,;:!?]|\bbut\b", s[:at])[-1])}


def _target_letters(target: str, choices: list[str]) -> set[str]:
    """The right option, or options where a target names several ("A, C")."""
    letters = re.findall(r"[A-Z]", target)
    valid = LETTERS[:len(choices)]
    if len(letters) > 1 and re.fullmatch(r"[\sA-Z,;&/]*(?:and)?[\sA-Z,;&/]*", target) and \
            all(c in valid for c in letters):
        return set(letters)
    return {target_letter(target, choices)}


_LESS = {"<": False, "\\lt": False, "<=": True, "\\le": True, "\\leq": True, "≤": True}
_MORE = {">": False, "\\gt": False, ">=": True, "\\ge": True, "\\geq": True, "≥": True}
_OP = r"(<=|>=|\\l[te]q?|\\g[te]q?|[<>≤≥])"
_BOUND = r"(-?\s*\\infty|-?\s*\\inf\b|[^<>≤≥\\]+?|-?\\frac\{[^{}]*\}\{[^{}]*\})"
_CHAIN = re.compile(rf"^{_BOUND}\s*{_OP}\s*([a-zA-Z])\s*{_OP}\s*{_BOUND}$")
_ONE_SIDE = re.compile(rf"^([a-zA-Z])\s*{_OP}\s*{_BOUND}$|^{_BOUND}\s*{_OP}\s*([a-zA-Z])$")
_INTERVAL = re.compile(r"^(?:[a-zA-Z]\s*\\in\s*)?([(\[])\s*([^,]+?)\s*,\s*([^,]+?)\s*([)\]])$")


def _bound(s: str) -> Fraction | float | None:
    s = s.replace(" ", "")
    if s in ("\\infty", "+\\infty", "\\inf", "oo"):
        return float("inf")
    if s in ("-\\infty", "-\\inf", "-oo"):
        return float("-inf")
    return to_number(normalize(s))


def _interval(s: str) -> tuple | None:
    """(low, low included, high, high included) of an interval or of the inequality (or
    chain of two) that states one: "[2, 5)", "x \\in (1, \\infty)", "-1 < x \\le 3",
    "x \\geq 2"; None for anything else."""
    s = normalize(s).replace("\\left", "").replace("\\right", "").strip()
    if m := _INTERVAL.match(s):
        lo, hi = _bound(m.group(2)), _bound(m.group(3))
        return None if lo is None or hi is None else (
            lo, m.group(1) == "[", hi, m.group(4) == "]")
    if m := _CHAIN.match(s):
        a, op1, _, op2, b = m.groups()
        lo, hi = _bound(a), _bound(b)
        if lo is None or hi is None:
            return None
        if op1 in _LESS and op2 in _LESS:
            return lo, _LESS[op1], hi, _LESS[op2]
        if op1 in _MORE and op2 in _MORE:
            return hi, _MORE[op2], lo, _MORE[op1]
        return None
    if m := _ONE_SIDE.match(s):
        left = m.group(1) is not None
        op, value = (m.group(2), m.group(3)) if left else (m.group(5), m.group(4))
        v = _bound(value)
        if v is None:
            return None
        below = (op in _LESS) == left  # x < v, or v > x
        closed = _LESS.get(op, _MORE.get(op))
        return (float("-inf"), False, v, closed) if below else (v, closed, float("inf"), False)
    return None


def _false_equation(answer: str) -> bool:
    """An equation whose sides are plain numbers that differ ("4 = 5") states no value."""
    sides = [to_number(normalize(x)) for x in normalize(answer).split("=")]
    numbers = [x for x in sides if x is not None]
    return len(sides) > 1 and len(numbers) > 1 and any(
        not _numbers_equal(x, numbers[0]) for x in numbers)


_RELATION = re.compile(r"\\(?:[lg]eq?|[lg]t|neq?|le|ge|in|cup|cap|infty)\b|[<>≤≥≠]|!=|"
                       r"\\begin\{|\\\{")
_INLINE_MATH = re.compile(r"\$\$(.+?)\$\$|\$([^$]+)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", re.S)


def _statement_math(statement: str, answer: str, target: str) -> str | None:
    """The math of the final statement, for the symbolic checker to see whole, where it
    holds more than the answer read from it: the last math span of the statement when it
    (or the target) is a relation, an interval, a set or a matrix; None otherwise (a number
    in prose stays a number in prose)."""
    spans = [next(g for g in m.groups() if g is not None)
             for m in _INLINE_MATH.finditer(statement)]
    math = spans[-1].strip() if spans else (answer if _RELATION.search(answer) else "")
    if not math or math == answer.strip() and not _RELATION.search(target + math):
        return None
    if not (_RELATION.search(math) or _RELATION.search(target)) or len(math) > MAX_ANSWER_CHARS:
        return None
    return math


def _echoes_options(text: str, choices: list[str]) -> bool:
    """The (cleaned) response ends by listing every option under its letter, as the prompt
    does: it repeats the question, it does not answer it."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if len(choices) < 2 or not lines:
        return False
    tail, end = " ".join(lines[-len(choices):]), 0
    for i, c in enumerate(choices):  # every option, in order, each after the one before
        m = re.compile(_MARKER.format(letter=LETTERS[i], text=re.escape(c.strip()))).search(
            tail, end)
        if m is None:
            return False
        end = m.end()
    return len(tail) - end <= 2  # nothing after the list but its punctuation


def _hedges_options(answer: str, prose: str) -> bool:
    """The stated answer names two different options ("B and C", "(B) ... or (C) ...")."""
    for text in (answer, prose):
        for m in (_LETTERS_HEDGE.match(text.strip()), _OPTION_HEDGE.search(text)):
            if m and m.group(1) != m.group(2):
                return True
    return False


def _hedges_values(answer: str, prose: str, boxes: list[str], line: str) -> bool:
    """The stated answer is one value or another ("4 or 5", "\\boxed{4} or \\boxed{5}")."""
    m = _VALUE_HEDGE.search(prose or answer)
    if m and to_number(m.group(1)) != to_number(m.group(2)):
        return True
    return len({normalize(b) for b in boxes}) > 1 and re.search(r"\bor\b", line) is not None


def _final_boxes(text: str) -> tuple[list[str], str]:
    """The boxes of the (cleaned) response's last lines that hold boxes, one line after
    another ("x = \\boxed{1}, \\boxed{2}"; "(a) \\boxed{3}" then "(b) \\boxed{5}"), and
    those lines."""
    spans = boxed_spans(text)
    if not spans:
        return [], ""
    start = text.rfind("\n", 0, spans[-1][0]) + 1
    i = len(spans) - 1
    while i > 0 and text.rfind("\n", 0, spans[i - 1][0]) + 1 >= text.rfind(
            "\n", 0, start - 1) + 1:  # the box before is on this line or the one above
        i -= 1
        start = text.rfind("\n", 0, spans[i][0]) + 1
    end = text.find("\n", spans[-1][1])
    return ([text[a:b].strip() for a, b in spans[i:]],
            text[start:end if end >= 0 else len(text)])


def _elements(target: str) -> list[str]:
    """The elements of a set or list target ("{1, 2}", "\\{1,2\\}", "[3, -1]", "1, 2"); a
    single value gives one."""
    t = normalize(target).replace("\\{", "{").replace("\\}", "}")
    if t[:1] + t[-1:] in ("{}", "[]", "()"):
        t = t[1:-1]
    return [x.strip() for x in t.split(",")] if "," in t else [t]


def _same_elements(boxes: list[str], elements: list[str], target: str) -> bool:
    """Boxes against a target's elements: in order for a list or a tuple ("[...]", "(...)"),
    as sets otherwise."""
    if normalize(target)[:1] in ("[", "("):
        return all(equivalent(b, e) for b, e in zip(boxes, elements, strict=True))
    left = list(elements)
    for b in boxes:
        hit = next((e for e in left if equivalent(b, e)), None)
        if hit is None:
            return False
        left.remove(hit)
    return True

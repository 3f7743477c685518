"""Rule-based answer extraction and grading.

`grade(response, target, choices=None)` raises only on a bug of its own (the symbolic
checker's failure is an outcome), stays linear in the response length and takes well under
a second. Extraction takes, in order: the last ``\\boxed{...}`` (balanced braces), the last
``<answer>...</answer>``, the last answer phrase ("the answer is ...", "Final answer: ...",
"The correct option letter is ...", "the final value is ...", 答案是 ..., We-Math's
"<Answer>: <<B>>", or display math on the lines after one), then the last non-empty line,
or the value that ends it when it is prose (the published prompts ask for the final value
or option letter "at the end"). A ``<think>`` block is dropped first; an unclosed one means
no answer; full-width forms read as ASCII.

Equivalence: numbers (fractions, decimals, thousands separators by comma or space, a
decimal comma no grouping would put, degrees and units stripped) compared to 6 significant
decimals, matrices in any notation as pmatrix, then math-verify for expressions and
relations; only answer-shaped text (short, not prose) reaches math-verify. Several boxes on
the last line state a set or list target element by element. Multiple choice accepts the
letter in its usual forms ("(B)", "B.", "**B**", "B: 16", "A (obtuse)", "(A). The fish...",
"option B", ``\\text{B}``, "<<B>>") or the option's own value, and never guesses: an answer
that names no option, a value several options share, a hedge between two options or values
("(B) or (C)", "4 or 5") and an echo of the option list are wrong; "A:" labelling a line of
prose names no option.
"""

from __future__ import annotations

import atexit
import logging
import re
import threading
from dataclasses import dataclass
from fractions import Fraction

from tasks.answers import LETTERS, boxed_spans, last_boxed

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
# an answer set in display math on the lines after its phrase ("Answer:\n\\[ 9 \\]")
_DISPLAY = re.compile(r"\s*(?:\\\[(.+?)\\\]|\$\$(.+?)\$\$)", re.S)
# full-width forms (（D）, Ｂ, ：) and CJK punctuation read as their ASCII counterparts
_FULL_WIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)} | {
    0x3000: " ", ord("。"): ".", ord("、"): ","}
# two different candidates named as the answer: "(B) ... or (C)", "B and C", "4 or 5"
_OPTION_HEDGE = re.compile(r"\(([A-H])\)[^()\n]{0,60}?(?:\b(?:and|or)\b|或|和)[^()\n]{0,20}?"
                           r"\(([A-H])\)")
_LETTERS_HEDGE = re.compile(r"^\(?([A-H])\)?\s*(?:,|/|&|\band\b|\bor\b|或|和)\s*\(?([A-H])\)?"
                            r"[.\s]*$")
_VALUE_HEDGE = re.compile(r"(?<![\w.])(-?\d+(?:\.\d+)?)\s*(?:\bor\b|或)\s*(?:maybe\s+)?"
                          r"(-?\d+(?:\.\d+)?)(?![\w.]*\d)")
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
_END_TOKENS = re.compile(r"(?:</s>|<\|im_end\|>|<\|endoftext\|>|<\|eot_id\|>)\s*$")
# the value that ends a line of prose: a number (unit or degree after it) or an option
_LAST_VALUE = re.compile(r"(?:^|[\s(=$:])(-?\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+)?|\(?[A-H]\))"
                         r"\s*(?:°|%|[a-zA-Z]{1,6}\b)?\s*[.!)]?\s*$")
_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}")
_MARKUP = re.compile(r"\*\*|__|`")
_NUMBER_UNITS = re.compile(r"(?<=\d)\s*(?:[a-zA-Z]+\b\s*){1,2}")


def strip_think(text: str) -> str | None:
    """The text after the reasoning block; None when a ``<think>`` is never closed."""
    last_open, last_close = text.rfind("<think>"), text.rfind("</think>")
    if last_open > last_close:
        return None
    return text[last_close + len("</think>"):] if last_close >= 0 else text


def answer_shaped(s: str) -> bool:
    """Short and not prose: at most one word of three letters or more, LaTeX commands, the
    names of environments (a matrix's) and unit words after a number aside ("9 yards", "10
    square units"). Only such strings go to the symbolic checker."""
    s = _NUMBER_UNITS.sub("", _ENVIRONMENT.sub("", s))
    return len(s) <= MAX_ANSWER_CHARS and len(_WORD.findall(s)) <= 1


def extract(response: str) -> tuple[str | None, str]:
    """(answer text, method) from a response; (None, reason) when nothing can be read."""
    answer, method, _ = _extract(response)
    return answer, method


def _clean(response: str) -> str | None:
    """The text the answer is read from: after the reasoning block (None when one is never
    closed), end tokens dropped, full-width forms as ASCII."""
    text = strip_think(response)
    return None if text is None else _END_TOKENS.sub("", text).translate(_FULL_WIDTH)


def _extract(response: str) -> tuple[str | None, str, str]:
    """(answer, method, the prose the answer was read from, or "")."""
    text = _clean(response)
    return (None, "unclosed_think", "") if text is None else _read(text)


def _read(text: str) -> tuple[str | None, str, str]:
    """`_extract` on a cleaned text."""
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed.strip(), "boxed", ""
    tail = text[-TAIL_CHARS:]
    tags = _ANSWER_TAG.findall(tail)
    if tags:
        return tags[-1].strip(), "answer_tag", ""
    phrases = list(_PHRASE.finditer(tail))
    if phrases:
        display = _DISPLAY.match(tail, phrases[-1].start(1))
        value = (display.group(1) or display.group(2)) if display else phrases[-1].group(1)
        if value.strip():
            return _from_prose(value.strip().rstrip("."), "answer_phrase")
    lines = [ln.strip() for ln in tail.splitlines() if ln.strip()]
    while len(lines) > 1 and _CLOSING.search(lines[-1]):
        lines.pop()  # a closing pleasantry or question is not the answer
    if not lines:
        return None, "none", ""
    return _from_prose(lines[-1], "last_line")


def _from_prose(text: str, method: str) -> tuple[str, str, str]:
    """An answer-shaped text as it is; from prose, the value it ends with, its one bold
    span, or the one number of its last sentence; else the prose itself."""
    if answer_shaped(_MARKUP.sub("", text)):
        return text, method, ""
    if method == "answer_phrase" and (m := _LEADING_VALUE.match(_MARKUP.sub("", text))):
        return m.group(1), "answer_phrase", text  # "the answer is 1982 with a total of ..."
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
_WRAPPERS = re.compile(r"\\(?:text|textbf|mathrm|mathbf|mbox)\s*\{([^{}]*)\}")
_DEGREES = re.compile(
    r"\^\s*\{?\\circ\}?|\^\s*\{?\\degree\}?|\\degree|\\textcirc|°|\\circ|"
    r"\s*\b(?:degrees?|deg)\b", re.I)
_UNIT = re.compile(r"^(-?[\d.,/]+)\s*(?:(?:[a-zA-Z]{1,12}\s*){1,2}(?:\^?\{?[23]\}?)?|%)$")
_THOUSANDS = re.compile(r"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_SPACED_THOUSANDS = re.compile(r"^-?\d{1,3}(?:[ \u2009\u202f]\d{3})+(?:\.\d+)?$")
_WORDS = re.compile(r"^[^\W\d_]{2,}(?: [^\W\d_]{2,})*$")  # words of letters, no math
_DECIMAL_COMMA = re.compile(r"^-?\d+,(?:\d{1,2}|\d{4,})$")  # a comma no grouping would put
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
    s = s.replace("\\ ", " ").replace("~", " ").replace("^{2}", "^2").replace("^{3}", "^3")
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
    if _SPACED_THOUSANDS.match(s):
        s = re.sub(r"[ \u2009\u202f]", "", s)
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


# Answers given in a requested format (a box or an answer tag), not read off a last line.
FORMATTED = ("boxed", "answer_tag")


def in_format(answer: str | None, method: str) -> bool:
    """Whether an answer `extract` read was given in the asked format: a box or an answer tag
    that holds something (an empty `\\boxed{}` is no answer in any format)."""
    return method in FORMATTED and bool(answer and answer.strip())
CHECK_SECONDS = 5  # the symbolic checker's bound on parsing and on comparing one pair
# ... and, from a thread other than the main one, on the helper process's whole answer (the
# helper's own alarm ends a slow parse or comparison; this bounds the rest: its start-up,
# the first import of the checker)
HELPER_SECONDS = 4 * CHECK_SECONDS + 30
_HELPER: list = []  # the process that checks for threads other than the main one
_HELPER_LOCK = threading.Lock()


def _math_verify(target: str, answer: str) -> tuple[bool, str]:
    """The symbolic checker, the one guarded call of grading: its time-out or its failure on
    a pair is a recorded outcome (the rule), not an exception. math-verify bounds itself with
    SIGALRM, which only a main thread may set: from any other thread (a trainer's reward
    worker) the pair is checked in the main thread of a helper process, and a check that
    overruns is ended with that process."""
    if threading.current_thread() is threading.main_thread():
        return _check(target, answer)
    import multiprocessing
    with _HELPER_LOCK:
        if not _HELPER:
            _HELPER.append(multiprocessing.get_context("spawn").Pool(1))
            atexit.register(_HELPER[0].terminate)  # ended with the process, quietly
        job = _HELPER[0].apply_async(_check, (target, answer))
        try:
            return job.get(HELPER_SECONDS)
        except multiprocessing.TimeoutError:
            _HELPER.pop().terminate()
            return False, "math_verify_timeout"


def _check(target: str, answer: str) -> tuple[bool, str]:
    from math_verify import parse, verify
    from math_verify.errors import TimeoutException
    try:
        gold = parse(f"${target}$", parsing_timeout=CHECK_SECONDS, raise_on_error=True)
        pred = parse(f"${answer}$", parsing_timeout=CHECK_SECONDS, raise_on_error=True)
        return bool(gold and pred and verify(gold, pred, timeout_seconds=CHECK_SECONDS,
                                             raise_on_error=True)), "math_verify"
    except TimeoutException:
        return False, "math_verify_timeout"
    except Exception:  # the checker's own failure on this pair
        return False, "math_verify_error"


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
    if na is None and nt is not None and _DECIMAL_COMMA.match(a):
        na = to_number(a.replace(",", "."))  # "3,5" for 3.5: no thousands separator
    if na is not None and nt is not None:
        return _numbers_equal(na, nt), "number"
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
          precision: int | None = None) -> Grade:
    """Grade one response against its target; with `choices`, as multiple choice; with
    `precision`, numbers compare after rounding to that many decimals. Nothing is caught
    here but the symbolic checker's own failure: a grader bug raises, for the caller to
    record, rather than passing for a wrong answer."""
    text = _clean(response)
    answer, method, prose = (None, "unclosed_think", "") if text is None else _read(text)
    if answer is None:
        return Grade(False, None, method, "no_answer")
    if choices:
        if method not in ("boxed", "answer_tag") and _echoes_options(text, choices):
            return Grade(False, answer, method, "echo")
        if _hedges_options(normalize(answer), prose):
            return Grade(False, answer, method, "hedge")
        letter = to_letter(answer, choices)
        if letter is None and prose:  # "...the highest is Rec, which is 30%."
            named = _mentioned(prose, choices)
            letter = named[0] if len(named) == 1 else None
        return Grade(letter is not None and letter == target_letter(target, choices),
                     answer, method, "no_option" if letter is None else "option")
    if precision is not None and (v := _rounded_equal(answer, target, precision)) is not None:
        return Grade(v, answer, method, "rounded")
    boxes, line = _final_boxes(text) if method == "boxed" else ([], "")
    elements = _elements(target)
    if len(elements) > 1 and len(boxes) >= len(elements):  # "\\boxed{1}, \\boxed{2}"
        return Grade(_same_elements(boxes[-len(elements):], elements, target),
                     ", ".join(boxes), method, "boxes")
    if (v := _list_equal(answer, target)) is not None:
        return Grade(v, answer, method, "list")
    if _hedges_values(answer, prose, boxes, line):
        return Grade(False, answer, method, "hedge")
    verdict, rule = judge_equivalent(answer, target)
    return Grade(verdict, answer, method, rule)


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
    """The boxes of the (cleaned) response's last line that has any ("x = \\boxed{1},
    \\boxed{2}"), and that line."""
    spans = boxed_spans(text)
    if not spans:
        return [], ""
    start = text.rfind("\n", 0, spans[-1][0]) + 1
    end = text.find("\n", spans[-1][1])
    return ([text[a:b].strip() for a, b in spans if a >= start],
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

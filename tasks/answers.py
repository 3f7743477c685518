"""How answers are written: option letters, how a prompt lists the options, and the
boxed final answer (read by the grader and by the loaders of solutions that box theirs)."""

import re

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
_BOX_BARE = re.compile(r"\\boxed\s+([^\s$]+)")


def lettered(choices: list[str]) -> str:
    """ "(A) red (B) green" """
    return " ".join(f"({LETTERS[i]}) {c}" for i, c in enumerate(choices))


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


def boxed_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of the content of every balanced ``\\boxed{...}`` or ``\\fbox{...}``, in
    order."""
    starts = [m.end() - 1 for m in _BOX.finditer(text)]
    if not starts:
        return []
    match = _matching_braces(text)
    return [(s + 1, match[s]) for s in starts if s in match]


def last_boxed(text: str) -> str | None:
    """Content of the last balanced ``\\boxed{...}`` (or ``\\fbox{...}``, or a bare
    ``\\boxed 7``)."""
    spans = boxed_spans(text)
    if spans:
        return text[spans[-1][0]:spans[-1][1]]
    bare = _BOX_BARE.findall(text)
    return bare[-1] if bare else None

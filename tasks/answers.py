"""How answers are written: option letters, how a prompt lists the options, and the
boxed final answer (read by the grader and by the loaders of solutions that box theirs)."""

import re

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
_BOX_BARE = re.compile(r"\\boxed\s+([^\s$]+)")


def lettered(choices: list[str]) -> str:
    """ "(A) red (B) green" """
    return " ".join(f"({LETTERS[i]}) {c}" for i, c in enumerate(choices))


def matching_braces(text: str) -> dict[int, int]:
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
    """(start, end) of the content of every balanced ``\\boxed{...}`` or ``\\fbox{...}`` that
    is not inside another (a box that holds only a box: the innermost's), in order, in linear
    time (boxes nested a million deep cost no more than one)."""
    starts = [m.end() - 1 for m in _BOX.finditer(text)]
    if not starts:
        return []
    match = matching_braces(text)
    out: list[tuple[int, int]] = []
    for s in starts:
        if s in match and (not out or s > out[-1][1]):
            a, b = s + 1, match[s]
            while (m := _BOX.match(text, a)) and match.get(m.end() - 1) == b - 1:
                a, b = m.end(), b - 1  # a box that holds only a box: its content
            out.append((a, b))
    return out


def last_boxed(text: str) -> str | None:
    """Content of the last balanced ``\\boxed{...}`` (or ``\\fbox{...}``, or a bare
    ``\\boxed 7``) that is not inside another."""
    spans = boxed_spans(text)
    if spans:
        return text[spans[-1][0]:spans[-1][1]]
    bare = _BOX_BARE.findall(text)
    return bare[-1] if bare else None

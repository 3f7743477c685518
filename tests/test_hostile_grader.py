"""The grader cannot be stalled or talked into "correct": every grading path is linear in the
response (a megabyte of each shape grades in bounded memory), the symbolic checker has one
time budget per response (not per comparison), and a response that negates its value, lists
every option, hedges in any position or states a false equation is wrong."""

import signal
import tracemalloc

import pytest

from harness.scoring import grade, grader

ABCD = ["3", "4", "5", "6"]
MB = 1 << 20


@pytest.fixture
def guard():
    """A test that hangs fails instead (a quadratic grader took minutes at this size)."""
    def stop(*_):
        raise TimeoutError("grading hung")
    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _n(unit: str) -> int:
    return MB // len(unit)


def _shapes(size: int) -> dict[str, str]:
    def n(unit: str) -> int:
        return size // len(unit)
    return {
        "nested boxes": "\\boxed{" * n("\\boxed{}") + "5" + "}" * n("\\boxed{}"),
        "nested text": "\\boxed{" + "\\text{" * n("\\text{}") + "5" + "}" * n("\\text{}") + "}",
        "nested braces": "\\boxed{" + "{" * (size // 2) + "5" + "}" * (size // 2) + "}",
        "boxes on a line": "\\boxed{5} \\quad " * n("\\boxed{5} \\quad "),
        "boxes on lines": "(a) \\boxed{5}\n" * n("(a) \\boxed{5}\n"),
        "one long box": "\\boxed{" + "1+" * (size // 2) + "1}",
        "prose": "the answer may be 5 or not " * n("the answer may be 5 or not "),
        "digits": "1" * size,
        "digit groups": "1,\\! 000" * n("1,\\! 000"),
        "options": "(A) (B) " * n("(A) (B) "),
        "hedges": "4 or " * n("4 or ") + "5",
        "negations": "not " * n("not ") + "5",
        "think": "<think>" + "wait " * n("wait ") + "</think> \\boxed{5}",
        "relations": "$x \\geq 5$ " * n("$x \\geq 5$ "),
    }


def _peak(text: str, choices) -> int:
    tracemalloc.start()
    try:
        g = grade(text, "B" if choices else "5", choices)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(g.correct, bool)
    return peak


@pytest.mark.parametrize("shape", sorted(_shapes(64)))
def test_a_megabyte_of_each_shape_grades_in_linear_memory(shape, guard):
    """A quarter of a megabyte, then a megabyte: the memory grading takes grows with the
    response, not with its square (a quadratic path held 406 MB at 80 KB)."""
    grade("\\boxed{5}", "5")  # the checker's own first import is not the response's cost
    small, big = _shapes(MB // 4)[shape], _shapes(MB)[shape]
    for choices in (None, ABCD):
        a, b = _peak(small, choices), _peak(big, choices)
        assert b < 6 * max(a, len(small)), f"{shape}: {a} then {b} bytes at 4x the size"
        assert b < 100 * len(big), f"{shape}: {b / len(big):.0f}x the response"


def test_one_time_budget_per_response_not_per_comparison(monkeypatch):
    """A value the symbolic checker cannot settle, against eight options: the first
    comparison spends the response's budget, and the others are not made."""
    calls = []
    real = grader._check

    def counted(target, answer, seconds):
        calls.append(seconds)
        return real(target, answer, seconds)
    monkeypatch.setattr(grader, "_check", counted)
    options = [f"{i}^{{{i}}}" for i in range(2, 10)]
    g = grade("\\boxed{10^{9}!}", "C", options)
    assert not g.correct
    assert 1 <= len(calls) < len(options) and calls[0] <= grader.GRADE_SECONDS
    calls.clear()
    assert grade("\\boxed{10^{9}!}", "7").rule == "math_verify_timeout"
    assert len(calls) == 1
    # the next response has a budget of its own
    calls.clear()
    assert grade("so \\boxed{\\frac{1}{2}x^2}", "x^2/2").correct and len(calls) == 1


@pytest.mark.parametrize("response,target,choices", [
    # negations: of the value that follows, or of the one before
    ("The answer is definitely not 7.", "7", None),
    ("7 is wrong.", "7", None),
    ("The answer is 7? No.", "7", None),
    ("It can't be 12.", "12", None),
    ("\\boxed{\\neq 7}", "7", None),
    ("\\boxed{\\ne 3.5}", "3.5", None),
    ("答案不是 7。", "7", None),
    ("It is not (B).", "B", ABCD),
    ("Definitely not 4.", "B", ABCD),
    ("Definitely not hawks.", "A", ["hawks", "owls"]),
    ("So (C) is incorrect.", "C", ABCD),
    # every option, or several: a guess is no answer
    ("A, B, C, or D", "B", ABCD),
    ("(A) (B) (C) (D)", "B", ABCD),
    ("\\boxed{\\text{A,B,C or D}}", "B", ABCD),
    ("The answer is A/B/C/D.", "C", ABCD),
    # hedges in any position, repeated
    ("(B) or (B) or (C)", "B", ABCD),
    ("B (or maybe C)", "B", ABCD),
    ("Option B. Option C.", "B", ABCD),
    ("Either C or D.", "D", ABCD),
    ("\\boxed{4 \\lor 5}", "5", None),
    ("\\boxed{4 \\vee 5}", "4", None),
    ("5 (or 4)", "5", None),
    ("The value is 9 or perhaps 10.", "10", None),
    # an equation that is false states no value
    ("\\boxed{4 = 5}", "5", None),
    ("\\boxed{3 = 3.5}", "3.5", None),
])
def test_it_cannot_be_talked_into_correct(response, target, choices):
    assert not grade(response, target, choices).correct


@pytest.mark.parametrize("response,target,choices", [
    ("The answer is 7, not 8.", "7", None),
    ("It is (B), not (C).", "B", ABCD),
    ("The answer is not 8; it is 7.", "7", None),
    ("Not (A): the answer is (C).", "C", ABCD),
    ("\\boxed{x = 5}", "5", None),
    ("\\boxed{2 + 3 = 5}", "5", None),
    ("\\boxed{5 = 5}", "5", None),
    ("Thus $a \\neq 0$.", "a \\neq 0", None),
    ("The answers are A and C.", "A, C", ["1", "2", "3", "4"]),
    ("x = 4 or x = 5, so \\boxed{4} or \\boxed{5}.", "4, 5", None),
    ("I used option B.", "B", ABCD),
])
def test_the_same_forms_that_do_answer_are_right(response, target, choices):
    assert grade(response, target, choices).correct

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.scoring import Grade, extract, grade, last_boxed, split_reasoning

CASES = [
    ("so the count is \\boxed{16}", "16", True),
    ("\\boxed{3} was a slip; recounting gives \\boxed{5}", "5", True),  # the last box wins
    ("\\boxed{3} was a slip; recounting gives \\boxed{5}", "3", False),
    ("\\boxed{\\frac{1}{2}}", "0.5", True),  # nested braces
    ("\\boxed{\\dfrac{3}{4}}", "3/4", True),
    ("\\boxed{2^3}", "2^5", False),  # not "equal leading integers"
    ("\\boxed{2^3}", "8", True),
    ("\\boxed{70^\\circ}", "70", True),
    ("\\boxed{70^{\\circ}}", "70", True),
    ("The third angle is 70°.\n\\boxed{70°}", "70", True),
    ("\\boxed{\\text{70 degrees}}", "70", True),
    ("\\boxed{16 cm}", "16", True),
    ("\\boxed{16\\text{ units}}", "16", True),
    ("\\boxed{1,000}", "1000", True),
    ("\\boxed{3.0}", "3", True),
    ("\\boxed{0.50}", "1/2", True),
    ("\\boxed{-2}", "-2", True),
    ("\\boxed{17}", "16", False),
    ("\\boxed{x+1}", "1+x", True),  # math-verify equivalence
    ("<answer>3</answer>", "3", True),
    ("I think it through. The answer is 7.", "7", True),
    ("Final answer: 12", "12", True),
    ("counting...\n12", "12", True),  # last line
    ("<think>let me see \\boxed{3}", "3", False),  # unclosed think: no answer
    ("<think>maybe \\boxed{2}</think> so \\boxed{3}", "3", True),
    ("<think>\\boxed{3}</think> The answer is 2", "3", False),
    ("\\boxed{}", "0", False),
    ("\\boxed{seven}", "7", False),
]


@pytest.mark.parametrize("response,target,correct", CASES)
def test_grade_free_form(response, target, correct):
    assert grade(response, target).correct is correct


MC = ["blue", "green", "yellow"]


@pytest.mark.parametrize("response,correct", [
    ("\\boxed{C}", True), ("(C)", True), ("C.", True), ("Answer: C", True),
    ("The answer is (C) yellow", True), ("\\boxed{\\text{C}}", True),
    ("\\boxed{yellow}", True),  # the option's value maps to its letter
    ("\\boxed{A}", False), ("\\boxed{purple}", False),  # no snapping to a near option
    ("A yellow bar is the tallest.", True),  # names yellow; the article "A" is not option A
    ("\\boxed{D}", False),  # not an option
])
def test_grade_multiple_choice(response, correct):
    assert grade(response, "C", MC).correct is correct


def test_the_article_a_is_not_option_a():
    assert not grade("A yellow bar is the tallest.", "A", MC).correct


def test_unparseable_answer_is_reported_not_guessed():
    g = grade("\\boxed{purple}", "C", MC)
    assert g == Grade(False, "purple", "boxed", "no_option")
    assert grade("<think>never closed", "1").extracted is None
    assert extract("<think>never closed") == (None, "unclosed_think")


def test_last_boxed_with_unbalanced_tail():
    assert last_boxed("\\boxed{4} and then \\boxed{5") == "4"
    assert last_boxed("\\boxed{a{b}c}") == "a{b}c"
    assert last_boxed("\\boxed 7") == "7"


TOKENS = st.sampled_from(["\\boxed{", "{", "}", "\\frac{", "<think>", "</think>", "answer is ",
                          "Final answer:", "7", "\n", "$", "(B)", "\\text{", "°", " ", "x^"])


@settings(max_examples=300, deadline=500)  # milliseconds per example
@given(st.one_of(st.text(max_size=300), st.lists(TOKENS, max_size=3000).map("".join)),
       st.sampled_from([("7", None), ("C", ["1", "7", "x"]), ("\\frac{1}{2}", None)]))
def test_a_final_boxed_answer_is_read_after_any_text(prefix, case):
    """Whatever comes before (unbalanced braces, stray boxes, answer phrases), a response
    that ends by boxing the target is graded right, unless a <think> is left open (then
    there is no answer at all), and grading stays fast."""
    target, choices = case
    text = f"{prefix}\n\\boxed{{{target}}}"
    g = grade(text, target, choices)
    assert g.correct is (split_reasoning(text)[1] is not None)
    assert g.extracted == (target if g.correct else None)


@pytest.mark.parametrize("text,correct", [
    ("\\boxed{" * 100_000, False),  # a box never closed: nothing is boxed
    ("{" * 300_000 + "\\boxed{7}", True),
    ("\\boxed{" + "}" * 300_000, False),  # an empty box
    ("answer is " * 50_000, False),
    ("<think>" * 50_000 + "</think>\\boxed{7}", True),
])
def test_grade_handles_huge_adversarial_input(text, correct):
    # Quadratic brace matching or a backtracking regex would take seconds to minutes here.
    t0 = time.perf_counter()
    g = grade(text, "7")
    assert time.perf_counter() - t0 < 0.5
    assert g.correct is correct

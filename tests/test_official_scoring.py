"""A benchmark's own matching, as its official scorer reads and compares (DynaMath's JSON
short answer), with vrbench's grader where that reading finds nothing, said apart; and
DynaMath's own figures (worst case, consistency) on constructed verdicts."""

import pytest

from harness.analyzers import Reading
from harness.runs.metrics import summarize_task
from harness.runs.rundir import graded
from harness.scoring import official
from harness.stats import wilson_interval
from tasks.benchmarks.dynamath import metrics

FLOAT = {"name": "dynamath", "answer_type": "float"}
CHOICE = {"name": "dynamath", "answer_type": "multiple choice"}
TEXT = {"name": "dynamath", "answer_type": "text"}


def _json(short: str, solution: str = "Reading the figure.") -> str:
    return f'```json\n{{\n  "solution": "{solution}",\n  "short answer": "{short}"\n}}\n```'


@pytest.mark.parametrize("response,target,scorer,right,read", [
    (_json("27.000"), "27.0", FLOAT, True, "27.000"),
    (_json("27.0009"), "27.0", FLOAT, True, "27.0009"),
    (_json("27.002"), "27.0", FLOAT, False, "27.002"),
    (_json("2π"), "6.283", FLOAT, True, None),  # read as 2 * pi = 6.2832
    (_json("0.4 (the ratio)"), "0.4", FLOAT, True, "0.4"),  # the first word
    (_json("B"), "B", CHOICE, True, "B"),
    (_json("b"), "B", CHOICE, True, "B"),
    (_json("Option C"), "C", CHOICE, True, "C"),  # the only letter of A-E in it
    (_json("(-2.777, -1.136)"), "(-2.777, -1.136)", TEXT, True, "(-2.777, -1.136)"),
    (_json("11/02/2006"), "11/02/2006", TEXT, True, "11/02/2006"),
    (_json("11/03/2006"), "11/02/2006", TEXT, False, "11/03/2006"),
    # a LaTeX escape in the solution does not break the JSON (backslashes are dropped)
    (_json("3.000", "Area = \\\\frac{1}{2} b h"), "3", FLOAT, True, "3.000"),
])
def test_the_json_short_answer_is_matched_as_the_official_scorer_does(response, target, scorer,
                                                                        right, read):
    g = official.grade(response, target, None, None, scorer)
    assert g.correct is right and g.method == "json" and g.rule.startswith("dynamath:")
    if read is not None:
        assert g.extracted == read


@pytest.mark.parametrize("response,target,choices,scorer,right", [
    ("The area is \\boxed{27}.", "27.0", None, FLOAT, True),  # prose: vrbench's reading
    ("So the answer is (B) No.", "B", ["Yes", "No"], CHOICE, True),
    (_json("A or B"), "B", ["Yes", "No"], CHOICE, False),  # two letters: not read officially
    (_json(""), "11/02/2006", None, TEXT, False),  # empty: officially "in" any answer
    (_json("pi/2"), "1.571", None, FLOAT, False),
])
def test_what_the_official_reading_misses_falls_back_to_the_grader(response, target, choices,
                                                                    scorer, right):
    g = official.grade(response, target, choices, None, scorer)
    assert g.rule.startswith(official.FALLBACK) and g.correct is right


def test_a_task_reports_the_official_reading_and_the_fallback_apart():
    recs = [graded("dynamath", f"s{i}", "5", [], None, "", [(text, 10, "stop")], Reading(),
                   scorer=FLOAT, group={"problem": str(i // 2), "variant": i % 2 + 1})
            for i, text in enumerate([_json("5.0"), _json("6.0"), "It is \\boxed{5}.",
                                      "no idea"])]
    r = summarize_task(recs, 1)
    assert r["official_read_ratio"] == 0.5
    assert r["acc_official_read"] == 0.5 and r["acc_fallback"] == 0.5 and r["acc"] == 0.5
    assert [x.to_json()["scorer"] for x in recs] == [FLOAT] * 4


def test_worst_case_and_consistency_of_constructed_verdicts():
    # seed a: all right; b: all wrong; c: 2 of 3 right
    scored = [({"problem": p}, a) for p, accs in (("a", [1, 1, 1]), ("b", [0, 0, 0]),
                                                  ("c", [1, 1, 0])) for a in accs]
    m = metrics(scored, wilson_interval)
    assert m["average"] == pytest.approx(5 / 9) and m["worst_case"] == pytest.approx(1 / 3)
    assert m["consistent"] == pytest.approx(2 / 3) and m["n_seeds"] == 3
    assert m["variants_per_seed"] == [3, 3]
    assert m["reasoning_robustness"] == pytest.approx((1 / 3) / (5 / 9))


LOGICVISTA = {"name": "logicvista"}


@pytest.mark.parametrize("response,target,right", [
    ("A, C", "A, C", True), ("C and A", "A, C", True), ("(C), (A).", "A, C", True),
    ("c, a", "A, C", True),
    ("A", "A, C", False),  # a part of the set is not the set
    ("A, C, D", "A, C", False),  # nor is more than it
    ("B", "B", True), ("B, D", "B", False),
    ("3", "3", True), ("4", "3", False),
    ("USER: question: ... answer:  ASSISTANT: B", "B", True),  # a transcript's answer
    ("F", "A", False),  # a lone letter that is no option: no answer, as officially
])
def test_logicvista_answers_are_sets_of_letters(response, target, right):
    g = official.grade(response, target, None, None, LOGICVISTA)
    assert g.correct is right and g.rule.startswith("logicvista:")


def test_logicvista_prose_is_read_by_the_grader_and_said_so():
    g = official.grade("Looking at the figures, the answer is B.", "B", None, None, LOGICVISTA)
    assert g.correct and g.rule.startswith(official.FALLBACK)

"""Scoring: reading the answer out of a response and grading it against the target.

    >>> from harness.scoring import grade
    >>> grade("... so the answer is \\boxed{70^\\circ}", "70").correct
    True

`grader` holds the rule-based grader (the RL reward and every leaderboard score), `judge` an
optional LLM judge whose verdicts are stored beside it. The boxed-answer reader it shares
with the task loaders is `tasks.answers.last_boxed`.
"""

from harness.scoring.grader import (
    THINK,
    Grade,
    equivalent,
    extract,
    grade,
    normalize,
    split_reasoning,
)
from tasks.answers import last_boxed

__all__ = ["THINK", "Grade", "equivalent", "extract", "grade", "last_boxed", "normalize",
           "split_reasoning"]

"""vrbench's evaluation harness.

    >>> from harness import evaluate
    >>> results = evaluate("path/to/checkpoint", "id,ood", limit=64)

`harness.scoring.grade` and `harness.analyzers.analyze` work on plain text.
"""

__all__ = ["evaluate"]


def __getattr__(name):
    if name == "evaluate":
        from harness.runs.runner import evaluate
        return evaluate
    raise AttributeError(name)

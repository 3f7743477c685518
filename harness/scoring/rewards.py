"""vrbench's grader as the reward of the RL trainers people use, called as each calls it.

It imports only the grader (no torch, no transformers), so a trainer's reward workers load it
at once; `vrbench rewards --path` prints this file's path. One function, `compute_score`,
answers every call shape:

verl (`custom_reward_function.path=<this file>`, `.name=compute_score`, or
`path=pkg://harness.scoring.rewards`):
    compute_score(data_source=, solution_str=, ground_truth=, extra_info=, **kw) -> float
    (the naive manager and the reward loop, from a worker thread, with the reward router's
    keywords or any `reward_kwargs`; the prime manager positionally, in a process pool)
    compute_score(data_sources=, solution_strs=, ground_truths=, extra_infos=, **kw) -> list
    (the batch manager)
EasyR1 (`worker.reward.reward_function=<this file>:compute_score`; batch, `REWARD_TYPE`):
    compute_score([{"response", "response_length", "ground_truth"}, ...], **kw)
        -> [{"overall", "accuracy", "format"}, ...]
    compute_score({"response", ...}) -> {"overall", ...}  (a sequential reward function)

`ground_truth` is the target as text or a number, a list of targets (any of them is right),
or a mapping `{"target", "choices", "precision"}` (or that mapping as JSON text, as a parquet
column keeps it); verl's `extra_info` may carry `choices` and `precision` too. Choices may
be any sequence (a numpy array from parquet); a precision that is NaN, or 1.0 for 1, is
cleaned. The reward is 1.0 for an answer vrbench grades right, else 0.0; `format` (EasyR1)
is 1.0 when the answer is given in a box or an answer tag. The symbolic checker is bounded
in time from any thread (`harness.scoring.grader`). Picklable by reference, also when loaded
from this file under another module name.
"""

from __future__ import annotations

import importlib
import json
import math

from harness.scoring.grader import FORMATTED, extract, grade

REWARD_TYPE = "batch"  # EasyR1: compute_score takes the batch's list of reward inputs


def _plain(x):
    """A numpy array or scalar (what a parquet column gives) as Python values."""
    return x.tolist() if hasattr(x, "tolist") else x


def _precision(p) -> int | None:
    p = _plain(p)
    if p is None or isinstance(p, bool):
        return None
    try:
        p = float(p)
    except (TypeError, ValueError):
        return None
    return int(p) if math.isfinite(p) and p.is_integer() and p >= 0 else None


def _truth(ground_truth, extra: dict | None) -> tuple[list[str], list[str] | None, int | None]:
    """(the right answers, the choices, the precision) of a ground truth in any of its forms."""
    gt = _plain(ground_truth)
    if isinstance(gt, str) and gt.lstrip().startswith("{"):
        try:
            parsed = json.loads(gt)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and "target" in parsed:
            gt = parsed
    extra = dict(extra) if isinstance(extra, dict) else {}
    if isinstance(gt, dict):
        extra = {**extra, **{k: v for k, v in gt.items() if k != "target"}}
        gt = _plain(gt.get("target"))
    targets = [str(_plain(t)) for t in gt] if isinstance(gt, list | tuple) else [str(gt)]
    choices = _plain(extra.get("choices"))
    choices = [str(c) for c in choices] if isinstance(choices, list | tuple) and choices else None
    return targets, choices, _precision(extra.get("precision"))


def score(response, ground_truth, extra_info: dict | None = None) -> float:
    """1.0 when the response's answer is right (any of the targets), else 0.0."""
    targets, choices, precision = _truth(ground_truth, extra_info)
    text = "" if response is None else str(response)
    return float(any(grade(text, t, choices, precision).correct for t in targets))


def _easyr1(item: dict) -> dict:
    answer, method = extract(str(item.get("response") or ""))
    accuracy = score(item.get("response"), item.get("ground_truth"))
    return {"overall": accuracy, "accuracy": accuracy,
            "format": float(answer is not None and method in FORMATTED)}


class Reward:
    """The callable behind `compute_score` (see the module's text for its call shapes)."""

    def __call__(self, *args, **kw):
        if args and isinstance(args[0], list | tuple) and all(
                isinstance(x, dict) for x in args[0]):
            return [_easyr1(x) for x in args[0]]  # EasyR1, batch
        if args and isinstance(args[0], dict):
            return _easyr1(args[0])  # EasyR1, sequential
        if "solution_strs" in kw:  # verl's batch manager: lists in, a list out
            n = len(kw["solution_strs"])
            extras = kw.get("extra_infos")
            extras = [None] * n if extras is None else list(extras)
            return [score(s, g, e) for s, g, e in zip(
                kw["solution_strs"], kw["ground_truths"], extras, strict=True)]
        names = ("data_source", "solution_str", "ground_truth", "extra_info")
        call = dict(zip(names, args, strict=False)) | {k: v for k, v in kw.items()
                                                       if k in names}
        return score(call.get("solution_str"), call.get("ground_truth"),
                     call.get("extra_info"))

    def __reduce__(self):
        # pickled as "this module's compute_score", found again by importing it: a trainer's
        # process pool gets the function whatever name the file was loaded under
        return getattr, (_Module(MODULE), "compute_score")


class _Module:
    """Pickles as the import of a module by name."""

    def __init__(self, name: str):
        self.name = name

    def __reduce__(self):
        return importlib.import_module, (self.name,)


MODULE = "harness.scoring.rewards"
compute_score = Reward()

"""The reward, defined once: vrbench's grader with its format, language and length terms
(`reward`). vrbench's RL trainer, `--reward vrbench`, the TRL adapter and the verl and EasyR1
entry point below all call it, so training and the leaderboard never disagree on "correct".

It imports only the grader (no torch, no transformers), so a trainer's reward workers load it
at once; `vrbench rewards --path` prints this file's path. One function, `compute_score`,
answers every call shape of the trainers people use:

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
from typing import NamedTuple

from harness.scoring.grader import THINK, extract, grade, in_format

REWARD_TYPE = "batch"  # EasyR1: compute_score takes the batch's list of reward inputs


class RewardTerms(NamedTuple):
    """The terms added to the grader's verdict (the paper's: `RLConfig`'s reward fields). A
    named tuple, not a dataclass: verl loads this file under a module name of its own."""

    correct: float = 1.0  # reward of a correct final answer
    format: float = 0.0  # added when the answer is given in a box or an answer tag
    language: float = 0.0  # minus this times the share of CJK characters
    no_eos: float | None = None  # the whole reward of a response cut at the token limit or
    # shorter than `min_tokens` (None: no such rule)
    min_tokens: int = 0
    tags: tuple[str, str] = THINK  # the reasoning block's tags: the answer is read after it


GRADER_ONLY = RewardTerms()  # 1 for a right answer, else 0


def cjk_share(text: str) -> float:
    """The share of a text's characters that are Chinese, Japanese kana or Korean."""
    if not text:
        return 0.0
    cjk = sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff" or "\u3040" <= ch <= "\u30ff"
              or "\uac00" <= ch <= "\ud7af")
    return cjk / len(text)


def reward(text: str, targets: str | list[str], choices: list[str] | None = None,
           precision: int | None = None, terms: RewardTerms = GRADER_ONLY,
           n_tokens: int | None = None, finish_reason: str | None = None) -> dict:
    """The reward of a response and its parts: `correct` (the grader's verdict against any of
    the targets), `format`, `language` (the CJK share), `penalty` (1 where `terms.no_eos`
    replaced the whole reward: a response cut at the limit, or shorter than
    `terms.min_tokens`), and `reward`."""
    targets = [targets] if isinstance(targets, str) else targets
    parts = {"correct": float(any(grade(text, t, choices or None, precision, terms.tags).correct
                                  for t in targets)),
             "format": 0.0, "language": 0.0, "penalty": 0.0}
    cut = finish_reason is not None and finish_reason != "stop"
    if terms.no_eos is not None and (cut or (n_tokens or 0) < terms.min_tokens):
        return parts | {"penalty": 1.0, "reward": terms.no_eos}
    parts["format"] = float(in_format(*extract(text, terms.tags)))
    parts["language"] = cjk_share(text)
    return parts | {"reward": terms.correct * parts["correct"] + terms.format * parts["format"]
                    - terms.language * parts["language"]}


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


def _parts(response, ground_truth, extra_info: dict | None = None) -> dict:
    targets, choices, precision = _truth(ground_truth, extra_info)
    return reward("" if response is None else str(response), targets, choices, precision)


def score(response, ground_truth, extra_info: dict | None = None) -> float:
    """1.0 when the response's answer is right (any of the targets), else 0.0."""
    return _parts(response, ground_truth, extra_info)["reward"]


def _easyr1(item: dict) -> dict:
    parts = _parts(item.get("response"), item.get("ground_truth"))
    return {"overall": parts["reward"], "accuracy": parts["correct"], "format": parts["format"]}


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

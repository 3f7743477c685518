"""Reward functions `vrbench rl --reward` adds up: vrbench's grader and any of the user's.

A spec is `NAME[=WEIGHT]`: `vrbench` (the grader with the paper's penalties,
`harness.scoring.rewards.reward`),
`package.module:function`, or `path/to/file.py:function`. A user's function is called as
TRL calls one, once per generation chunk:

    fn(prompts=[...], completions=[...], completion_ids=[...], target=[...], choices=[...],
       precision=[...], task=[...], doc_id=[...], finish_reason=[...], n_tokens=[...])
       -> one number per completion

(it may take only the keywords it needs and `**kwargs`). A function that cannot be loaded,
raises, or returns the wrong number of rewards stops training with one sentence naming it.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vrbench.errors import VrbenchError

BUILTIN = "vrbench"


@dataclass(frozen=True)
class RewardFn:
    name: str  # as the user wrote it, without the weight; logged as reward_<short name>
    weight: float
    fn: Callable | None  # None: vrbench's own reward

    @property
    def key(self) -> str:
        return self.name.rsplit(":", 1)[-1] if self.fn is not None else BUILTIN


def parse(spec: str) -> tuple[str, float]:
    """`NAME=WEIGHT` -> (NAME, WEIGHT); a plain NAME weighs 1."""
    name, sep, weight = spec.rpartition("=")
    if not sep:
        return spec, 1.0
    try:
        w = float(weight)
    except ValueError:
        raise VrbenchError(f"--reward {spec!r}: the weight after '=' must be a number.") from None
    if not math.isfinite(w):
        raise VrbenchError(f"--reward {spec!r}: the weight must be finite.")
    return name, w


def code_named(specs: tuple[str, ...]) -> str | None:
    """What `--reward` specs name beyond the built-in reward: code to import (None: none)."""
    specs = (specs,) if isinstance(specs, str) else specs
    code = [s for s in specs if not isinstance(s, str) or parse(s)[0] != BUILTIN]
    return f"code to import ({', '.join(map(repr, code))})" if code else None


def _load(name: str) -> Callable:
    where, sep, attr = name.rpartition(":")
    if not sep or not where or not attr:
        raise VrbenchError(f"--reward {name!r} must be {BUILTIN}, module:function or "
                           "file.py:function.")
    try:
        if where.endswith(".py"):
            path = Path(where)
            if not path.is_file():
                raise VrbenchError(f"--reward {name!r}: {path} does not exist.")
            spec = importlib.util.spec_from_file_location(f"vrbench_reward_{path.stem}", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    except VrbenchError:
        raise
    except Exception as e:  # the user's module failed to import: say so in one sentence
        raise VrbenchError(f"--reward {name!r}: its module failed to load "
                           f"({type(e).__name__}: {e}).") from e
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise VrbenchError(f"--reward {name!r}: {where} has no function {attr!r}.")
    return fn


def load(specs: tuple[str, ...]) -> list[RewardFn]:
    """The reward functions of `--reward`, loaded (errors before any training)."""
    if not specs:
        raise VrbenchError(f"--reward needs at least one function (e.g. {BUILTIN}).")
    out = []
    for spec in specs:
        name, weight = parse(spec)
        out.append(RewardFn(name, weight, None if name == BUILTIN else _load(name)))
    keys = [r.key for r in out]
    if len(set(keys)) != len(keys):
        raise VrbenchError(f"--reward names a function twice ({', '.join(keys)}).")
    return out


def call(r: RewardFn, fields: dict[str, list]) -> list[float]:
    """The user's rewards of one chunk of completions, checked."""
    params = inspect.signature(r.fn).parameters
    takes_all = any(p.kind is p.VAR_KEYWORD for p in params.values())
    kw = fields if takes_all else {k: v for k, v in fields.items() if k in params}
    n = len(fields["completions"])
    try:
        values = list(r.fn(**kw))
    except Exception as e:
        raise VrbenchError(f"the reward function {r.name} raised {type(e).__name__}: {e}"
                           ) from e
    if len(values) != n:
        raise VrbenchError(f"the reward function {r.name} returned {len(values)} rewards for "
                           f"{n} completions.")
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError) as e:
        raise VrbenchError(f"the reward function {r.name} returned a reward that is not a "
                           f"number ({e}).") from e
    if not all(math.isfinite(v) for v in out):
        raise VrbenchError(f"the reward function {r.name} returned a reward that is not "
                           "finite.")
    return out

"""The paper's training configurations as files: one YAML per run it reports.

    vrbench rl --recipe maye_qwen25vl_7b_mmmath5k --dry-run     # the resolved configuration
    vrbench rl --recipe maye_qwen25vl_7b_mmmath5k --lr 3e-6     # any field overridden by a flag

A recipe names its trainer and sets fields of that trainer's config (nested `optim:` and
`eval:` blocks for theirs); a path to a YAML file of the same shape works as a name.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import yaml

from tasks.errors import VrbenchError

HERE = Path(__file__).parent


def names() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.yaml"))


def load(name: str, cls, trainer: str):
    """The config of `cls` that recipe `name` describes (its trainer must be `trainer`)."""
    path = HERE / f"{name}.yaml" if (HERE / f"{name}.yaml").is_file() else Path(name)
    if not path.is_file():
        raise VrbenchError(f"unknown recipe {name!r}; the recipes are {', '.join(names())} "
                           "(or pass a YAML file's path).")
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise VrbenchError(f"recipe {path} is not valid YAML ({e}).") from e
    if not isinstance(spec, dict) or spec.pop("trainer", None) != trainer:
        raise VrbenchError(f"recipe {path} is not a `trainer: {trainer}` recipe.")
    spec.setdefault("out", f"runs/{path.stem}")
    return _build(cls, spec, str(path))


def _build(cls, spec: dict, where: str, default=None):
    """`cls` with the recipe's fields set (over `default`, an instance, for nested configs)."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(spec) - set(fields))
    if unknown:
        raise VrbenchError(f"recipe {where} sets unknown field(s) {', '.join(unknown)} of "
                           f"{cls.__name__}.")
    kwargs = {}
    for name, value in spec.items():
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, dict):
                raise VrbenchError(f"recipe {where}: {name} must be a mapping of its fields.")
            f = fields[name]
            inner = f.default_factory() if f.default_factory is not dataclasses.MISSING else tp()
            kwargs[name] = _build(tp, value, where, inner)
        else:
            kwargs[name] = tuple(value) if isinstance(value, list) else value
    try:
        return dataclasses.replace(default, **kwargs) if default is not None else cls(**kwargs)
    except TypeError as e:
        raise VrbenchError(f"recipe {where}: {e}.") from e

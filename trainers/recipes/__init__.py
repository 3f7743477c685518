"""The paper's training configurations as files: one YAML per run it reports.

    vrbench rl --recipe maye_qwen25vl_7b_mmmath5k --dry-run     # the resolved configuration
    vrbench rl --recipe maye_qwen25vl_7b_mmmath5k --lr 3e-6     # any field overridden by a flag

A recipe names its trainer and sets fields of that trainer's config (nested `optim:` and
`eval:` blocks for theirs); a path to a YAML file of the same shape works as a name.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from harness import flags
from vrbench.errors import VrbenchError

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
    return flags.from_mapping(cls, spec, f"recipe {path}")

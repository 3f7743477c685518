"""Task registry: tasks are YAML files (data) naming a generator (python) and its knobs.

    >>> import tasks
    >>> t = tasks.load("count_shapes")
    >>> t.samples("test", limit=2)[0].question
"""

from __future__ import annotations

from pathlib import Path

import yaml

from harness.errors import VrbenchError
from tasks.spec import Sample, Task

DEFS = Path(__file__).parent / "defs"
SUITES = {"id": "all in-domain tasks", "ood": "all out-of-domain tasks", "all": "every task"}

__all__ = ["Sample", "Task", "load", "names", "resolve", "from_yaml"]


def from_yaml(path: str | Path) -> Task:
    spec = yaml.safe_load(Path(path).read_text())
    return Task(**spec)


def _registry() -> dict[str, Path]:
    return {p.stem: p for p in sorted(DEFS.glob("*.yaml"))}


def names(domain: str | None = None) -> list[str]:
    """Registered task names, optionally only those of one domain ("id" or "ood")."""
    reg = _registry()
    if domain is None:
        return list(reg)
    return [n for n, p in reg.items() if yaml.safe_load(p.read_text())["domain"] == domain]


def benchmark_task(name: str) -> Task:
    """A published benchmark (read from the local copy under --data-dir) as a task. Its one
    split is named as the trainers and the runner expect: test, validation or train."""
    from tasks.benchmarks import BENCHMARKS
    b = BENCHMARKS[name]
    split = {"testmini": "test"}.get(b.split, b.split)
    return Task(name=name, version=f"{b.repo}:{b.split}", domain=b.domain,
                answer_type=b.answer_type, prompt_template="{question}", splits={split: 0},
                tests=b.tests, benchmark=name)


def load(name: str) -> Task:
    """A fresh `Task` by registered name (a task YAML or a published benchmark), or a path
    to a task YAML file."""
    from tasks.benchmarks import BENCHMARKS
    reg = _registry()
    if name in reg:
        return from_yaml(reg[name])
    if name in BENCHMARKS:
        return benchmark_task(name)
    if name.endswith((".yaml", ".yml")):
        if not Path(name).is_file():
            raise VrbenchError(f"task file {name} does not exist.")
        return from_yaml(name)
    raise VrbenchError(f"unknown task {name!r}; known tasks: {', '.join(reg)}; benchmarks: "
                       f"{', '.join(BENCHMARKS)} (suites: {', '.join(SUITES)}).")


def resolve(spec: str | list[str]) -> list[Task]:
    """Tasks from names, suites ("id", "ood", "all") and commas: "id,bar_chart"."""
    parts = spec.split(",") if isinstance(spec, str) else [p for s in spec for p in s.split(",")]
    out: list[str] = []
    for part in (p.strip() for p in parts if p.strip()):
        if part in SUITES:
            out += names(None if part == "all" else part)
        else:
            out.append(part)
    if not out:
        raise VrbenchError("no task named; pass task names or a suite (id, ood, all).")
    return [load(n) for n in dict.fromkeys(out)]

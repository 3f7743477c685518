"""Task registry: tasks are YAML files (data) naming a generator (python) and its knobs.

    >>> import tasks
    >>> t = tasks.load("count_shapes")
    >>> t.samples("test", limit=2)[0].question

This is the bottom layer: it imports nothing of the harness or the trainers. Importing the
package is cheap (`vrbench.errors` and `tasks.answers` pull in nothing heavy); the data classes
load on first use.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from vrbench.errors import VrbenchError

DEFS = Path(__file__).parent / "defs"
DOMAINS = ("id", "ood", "far")  # in-domain, the OOD macro's near shifts, far shifts
DOMAIN_LABELS = {"id": "ID", "ood": "OOD", "far": "Far"}
# the split each domain is scored on (the paper's scheme): the ID tasks on validation (their
# test split stays untouched), the held-out shifts on test
EVAL_SPLIT = {"id": "validation", "ood": "test", "far": "test"}
SUITES = {"id": "the in-domain tasks (their train split trains)",
          "ood": "the OOD macro: near shifts of the in-domain tasks, one factor each",
          "far": "far shifts: new figures, skills or answer formats (not in the OOD macro)",
          "shifts": "every dial of every in-domain task at distances 1-3 (accuracy curves)",
          "all": "id, ood and far",
          "reasoning6": "the six published reasoning benchmarks RL-for-VLM papers report "
                        "(local copies: --data-dir)"}
# the six, in the order papers' tables give them
REASONING6 = ("mathvista_testmini", "mathvision_test", "mathverse_testmini_vision_only",
              "dynamath", "wemath_testmini", "logicvista")

__all__ = ["Sample", "Task", "decode_images", "load", "names", "resolve", "from_yaml"]


def __getattr__(name: str):
    if name in ("Sample", "Task", "decode_images"):
        from tasks import spec
        return getattr(spec, name)
    raise AttributeError(f"module 'tasks' has no attribute {name!r}")


def from_yaml(path: str | Path):
    from tasks.spec import task_from_yaml
    return task_from_yaml(path)


def _registry() -> dict[str, Path]:
    return {p.stem: p for p in sorted(DEFS.glob("*.yaml"))}


def names(domain: str | None = None) -> list[str]:
    """Registered task names (the task files and the OOD macro's shifts), optionally only
    those of one domain ("id", "ood" or "far")."""
    import yaml

    from tasks.shifts import MACRO
    files = {n: yaml.safe_load(p.read_text())["domain"] for n, p in _registry().items()}
    ordered = [n for dom in ("id", "ood", "far") for n in
               [*(n for n, d in files.items() if d == dom), *(MACRO if dom == "ood" else ())]]
    return [n for n in ordered if domain is None or files.get(n, "ood") == domain]


def benchmark_task(name: str, data_dir: str | None = None):
    """A published benchmark (read from the local copy under `data_dir`, default
    $VRBENCH_DATA) as a task. Its one split is named as the trainers and the runner expect:
    test, validation or train."""
    from tasks.benchmarks import BENCHMARKS
    from tasks.spec import Task
    b = BENCHMARKS[name]
    version = ":".join(filter(None, (b.repo, b.config, b.split, b.task_split)))
    return Task(name=name, version=version, domain=b.domain,
                answer_type=b.answer_type, prompt_template="{question}",
                splits={b.offered_split: 0},
                skill=b.skill, benchmark=name, data_dir=data_dir)


def load(name: str, data_dir: str | None = None):
    """A fresh `Task` by registered name (a task YAML or a published benchmark), or a path
    to a task YAML file. `data_dir` holds the local copies of published benchmarks."""
    from tasks import shifts
    from tasks.benchmarks import BENCHMARKS
    reg = _registry()
    if name in reg:
        return from_yaml(reg[name])
    if name in BENCHMARKS:
        return benchmark_task(name, data_dir)
    if name.endswith((".yaml", ".yml")):
        if not Path(name).is_file():
            raise VrbenchError(f"task file {name} does not exist.")
        return from_yaml(name)
    if (shift := shifts.parse(name)) is not None:
        return shifts.shifted(from_yaml(reg[shift[0]]), shift[1])
    close = difflib.get_close_matches(name, [*reg, *BENCHMARKS, *SUITES, *shifts.grid()], n=1)
    hint = f" did you mean {close[0]!r}?" if close else ""
    raise VrbenchError(f"unknown task {name!r};{hint} known tasks: {', '.join(reg)}; shifts of "
                       f"{', '.join(shifts.SOURCES)} such as count_shapes.grid2 (dials: "
                       f"{', '.join(shifts.DIALS)}; distances 1-3); benchmarks: "
                       f"{', '.join(BENCHMARKS)} (suites: {', '.join(SUITES)}).")


def resolve(spec: str | list[str], data_dir: str | None = None) -> list:
    """Tasks from names, suites (id, ood, far, shifts, all) and commas: "id,bar_chart"."""
    from tasks.shifts import grid
    parts = spec.split(",") if isinstance(spec, str) else [p for s in spec for p in s.split(",")]
    out: list[str] = []
    for part in (p.strip() for p in parts if p.strip()):
        if part in SUITES:
            out += (grid() if part == "shifts" else list(REASONING6) if part == "reasoning6"
                    else names(None if part == "all" else part))
        else:
            out.append(part)
    if not out:
        raise VrbenchError(f"no task named; pass task names or a suite ({', '.join(SUITES)}).")
    return [load(n, data_dir) for n in dict.fromkeys(out)]

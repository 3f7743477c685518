"""Published benchmarks, read from local copies in the layouts the Hugging Face Hub publishes.

Nothing is downloaded: point `--data-dir` (or the VRBENCH_DATA environment variable) at a
folder holding the datasets, in any of these forms for a dataset `owner/name`:

    DIR/owner/name/     or DIR/name/     the repository's files as `hf download` writes them
                                         (the dataset card's `configs` say which file holds
                                         which config and split), or a `save_to_disk` folder
    DIR/datasets--owner--name/snapshots/<rev>/   the Hugging Face hub cache

Each row is checked against the columns the benchmark publishes (names and types) before
it becomes a `Task` sample with the official prompt, the target (a letter for multiple
choice), the options, MathVista's rounding precision and the categories its results are
broken down by (`results[task]["by_category"]`).

The loaders live a family to a module (`mathvista`, `mathverse`, `mathvision`, `wemath`,
`dynamath`, `logicvista`, `training`), each with its published columns, its conversion of a
row and its `BENCHMARKS`; a new benchmark is a new module and its line in `FAMILIES`.
"""

from __future__ import annotations

import json

from tasks.benchmarks import (
    dynamath,
    logicvista,
    mathverse,
    mathvision,
    mathvista,
    training,
    wemath,
)
from tasks.benchmarks.base import Benchmark, check_row
from tasks.benchmarks.local import DATA_ENV, data_dir, open_split
from vrbench.errors import VrbenchError

__all__ = ["BENCHMARKS", "DATA_ENV", "Benchmark", "data_dir", "rows"]

FAMILIES = (wemath, mathvista, mathverse, mathvision, dynamath, logicvista, training)
BENCHMARKS = {b.name: b for family in FAMILIES for b in family.BENCHMARKS}


def rows(bench: Benchmark, base: str | None = None) -> list[dict]:
    """The benchmark's samples as rows of the task features (tasks.spec.features), read
    from the local copy under `base` (default: $VRBENCH_DATA)."""
    if bench.read is not None:
        published = bench.read(data_dir(base))
    else:
        ds, root = open_split(data_dir(base), bench.repo, bench.split, bench.config,
                              bench.data_files)
        published = ((raw, root) for raw in ds.with_format("arrow")[:].to_pylist())
    out = []
    for i, (raw, root) in enumerate(published):
        where = f"row {i} of the local copy of {bench.repo} at {root}"
        check_row(raw, bench.columns, bench.optional, where)
        raw["_index"] = i
        try:
            r = bench.convert(raw, root)
        except VrbenchError:
            raise
        except Exception as e:  # a value the published data never holds
            raise VrbenchError(f"{where} does not have the published schema "
                               f"({type(e).__name__}: {e}).") from e
        out.append({"id": r["id"], "images": r["images"], "question": r["question"],
                    "target": r["target"], "choices": r["choices"],
                    "solution": r.get("solution", ""), "solution_reflective": "",
                    "meta": json.dumps(r["meta"], sort_keys=True)})
    return bench.select(out) if bench.select else out

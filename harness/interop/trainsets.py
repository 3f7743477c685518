"""vrbench's tasks as training data for verl and EasyR1 (`vrbench export-verl DIR`,
`vrbench export-easyr1 DIR`).

Each writes `DIR/train.parquet` (the tasks' train splits) and `DIR/validation.parquet`
(their validation splits; a task without a train split, an OOD one, gives only validation
rows), in the layout the trainer reads, with the prompt vrbench sends and `<image>` where
each image goes (both trainers split the text there):

verl     data_source (the task), prompt ([{"role": "user", "content": "<image>..."}]),
         images, ability, reward_model ({"style": "rule", "ground_truth": target}),
         extra_info (split, index, id, choices, precision): what `compute_score` receives
EasyR1   problem ("<image>..."), answer, images (data.prompt_key=problem,
         data.answer_key=answer, data.image_key=images); the answer is the target, or for a
         multiple-choice or rounded answer `{"target", "choices", "precision"}` as JSON text,
         since EasyR1 passes the reward only that column

vrbench's reward module (`vrbench rewards`) reads both, so a model trained with either is
rewarded as vrbench grades, and its checkpoints are scored by `vrbench eval` as any other.
"""

from __future__ import annotations

import json
from pathlib import Path

import tasks as task_registry
from harness.runs.store import make_dirs, move, no_link, remove_tree
from vrbench.errors import VrbenchError

FORMATS = ("verl", "easyr1")
PLACEHOLDER = "<image>"
SPLITS = ("train", "validation")


def _row(fmt: str, task, sample, split: str, index: int) -> dict:
    prompt = PLACEHOLDER * len(sample.images) + task.prompt(sample)
    precision = sample.meta.get("precision")
    if fmt == "verl":
        return {"data_source": task.name, "prompt": [{"role": "user", "content": prompt}],
                "images": sample.images, "ability": task.skill or "visual reasoning",
                "reward_model": {"style": "rule", "ground_truth": sample.target},
                "extra_info": {"split": split, "index": index, "id": sample.id,
                               "choices": sample.choices, "precision": precision}}
    answer = sample.target
    if sample.choices or precision is not None:
        answer = json.dumps({"target": sample.target, "choices": sample.choices,
                             "precision": precision})
    return {"problem": prompt, "answer": answer, "images": sample.images}


def _features(fmt: str):
    import datasets
    text = datasets.Value("string")
    images = datasets.List(datasets.Image())
    if fmt == "easyr1":
        return datasets.Features({"problem": text, "answer": text, "images": images})
    return datasets.Features({
        "data_source": text, "prompt": datasets.List({"role": text, "content": text}),
        "images": images, "ability": text,
        "reward_model": {"style": text, "ground_truth": text},
        "extra_info": {"split": text, "index": datasets.Value("int64"), "id": text,
                       "choices": datasets.List(text), "precision": datasets.Value("int64")}})


def export(out: str | Path, fmt: str, spec: str, limit: int | None = None,
           data_dir: str | None = None) -> dict[str, int]:
    """Write the tasks' train and validation rows for `fmt`; returns the rows per file."""
    import datasets
    if fmt not in FORMATS:
        raise VrbenchError(f"the export format must be one of {', '.join(FORMATS)}, not "
                           f"{fmt!r}.")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise VrbenchError(f"{out} is a file; name a folder to write the parquet files in.")
    rows: dict[str, list[dict]] = {split: [] for split in SPLITS}
    for t in task_registry.resolve(spec, data_dir):
        for split in SPLITS:
            if split in t.splits:
                rows[split] += [_row(fmt, t, s, split, i)
                                for i, s in enumerate(t.samples(split, limit))]
    if not any(rows.values()):
        raise VrbenchError(f"the tasks {spec!r} have no train or validation split to export.")
    make_dirs(out)
    # the files this command owns, written as a set: each to a temporary name first, then
    # all renamed, and a split this export lacks removed (no old file stays beside new ones)
    written, staged = {}, []
    try:
        for split in SPLITS:
            path = no_link(out / f"{split}.parquet", out)
            if rows[split]:
                tmp = no_link(out / f".{path.name}.tmp", out)
                datasets.Dataset.from_list(rows[split], features=_features(fmt)).to_parquet(
                    str(tmp))
                staged.append((tmp, path))
                written[path.name] = len(rows[split])
        for split in SPLITS:
            if not rows[split]:
                remove_tree(out / f"{split}.parquet", out)
        for tmp, path in staged:
            move(tmp, path, out)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
    return written

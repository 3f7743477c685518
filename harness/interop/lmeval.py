"""Export tasks for lm-evaluation-harness (`vrbench export-lmeval DIR`).

Each task becomes a parquet file of its samples (images, the exact prompt vrbench sends,
target, options) and a task YAML for lm-eval's `hf-multimodal` model: `generate_until`
with `until` left empty, so only the model's end-of-sequence stops a chain of thought (lm-eval
otherwise stops at a blank line), and a `process_results` that scores with vrbench's own
grader, so the two tools disagree only where their generations do.

    lm_eval --model hf-multimodal --model_args pretrained=M --apply_chat_template \\
        --include_path DIR --tasks vrbench_count_shapes --batch_size 1
"""

from __future__ import annotations

import json
from pathlib import Path

import datasets

import tasks as task_registry
from harness.runs.store import make_dirs, no_link, write_text_atomic
from vrbench.errors import VrbenchError

FEATURES = datasets.Features({
    "doc_id": datasets.Value("string"), "images": datasets.List(datasets.Image()),
    "text": datasets.Value("string"), "target": datasets.Value("string"),
    "choices": datasets.List(datasets.Value("string")),
})

UTILS = '''"""Scoring for the vrbench task exports: vrbench's own grader."""

from harness.scoring import grade


def process_results(doc, results):
    return {"acc": float(grade(results[0], doc["target"], list(doc["choices"]) or None).correct)}
'''

PLACEHOLDER = "<image>"  # lm-eval's image placeholder, replaced by each model's image token


def task_yaml(name: str, version: str, data: Path, max_new_tokens: int) -> str:
    return f"""task: vrbench_{name}
dataset_path: parquet
dataset_kwargs:
  data_files:
    test: {json.dumps(str(data.resolve()))}
test_split: test
output_type: generate_until
doc_to_text: "{{{{text}}}}"
doc_to_image: images
doc_to_target: target
process_results: !function vrbench_lmeval.process_results
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
generation_kwargs:
  until: []
  max_gen_toks: {max_new_tokens}
  do_sample: false
  temperature: 0.0
metadata:
  version: {json.dumps(version)}
"""


def _inside(out: Path, name: str) -> Path:
    """out / name, refused if it would land outside `out` or on a link."""
    path = no_link(out / name, out)
    if not path.resolve().is_relative_to(out.resolve()) or path.parent.resolve() != out.resolve():
        raise VrbenchError(f"{name!r} would be written outside {out}; refusing.")
    return path


def export(out: str | Path, spec: str, split: str | None = None, limit: int | None = None,
           max_new_tokens: int = 256) -> list[Path]:
    """Write one parquet + YAML pair per task, and the shared scoring module; returns the
    YAML paths."""
    out = make_dirs(Path(out))
    write_text_atomic(_inside(out, "vrbench_lmeval.py"), UTILS)
    written = []
    for t in task_registry.resolve(spec):
        samples = t.samples(split or t.eval_split(), limit)
        rows = {"doc_id": [s.id for s in samples], "images": [s.images for s in samples],
                "text": [PLACEHOLDER * len(s.images) + t.prompt(s) for s in samples],
                "target": [s.target for s in samples],
                "choices": [s.choices for s in samples]}
        data = _inside(out, f"{t.name}-{split or t.eval_split()}.parquet")
        datasets.Dataset.from_dict(rows, features=FEATURES).to_parquet(str(data))
        path = _inside(out, f"vrbench_{t.name}.yaml")
        write_text_atomic(path, task_yaml(t.name, t.version, data, max_new_tokens))
        written.append(path)
    return written

"""LogicVista (Xiao et al., 2024): 448 multiple-choice logical-reasoning questions on images
(inductive, deductive, numerical, spatial, mechanical), the options drawn in the image; a
few answers are two letters ("A, C"), right only as the same set. Accuracy per reasoning
skill and per capability.

Read from the GitHub repository's layout (Yijia-Xiao/LogicVista): DIR/Yijia-Xiao/LogicVista/
or DIR/LogicVista/, holding data/dataset.json (or dataset.json: question id -> `question`,
`answer`, `imagename`, `skill`, `broad_capability`, `specific_capability`, ...) and the
images beside it (data/images/). The prompt is the official few-shot one the authors'
transcripts show; an answer that is a bare list of letters (or a number) is read as the
official extraction would return it, anything else by vrbench's grader
(`harness.scoring.official`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from tasks.benchmarks.base import Benchmark, S, check_row, first_image
from tasks.benchmarks.local import roots
from vrbench.errors import VrbenchError

REPO = "Yijia-Xiao/LogicVista"
COLUMNS = {"question": S, "answer": S, "imagename": S, "skill": (list, str),
           "broad_capability": (list, str, None), "specific_capability": (list, str, None)}
OPTIONAL = ("broad_capability", "specific_capability")

PROMPT = ("Your response should only contain letters/numbers, do not add extra explaination. "
          "These are some examples of how to format your output:\n"
          "question: what is 1 + 9? A) 4 B) 123 C) 10 D) 3\nanswer: C\n\n"
          "question: What is the next logical choice based on the image? Select from A-D\n"
          "answer: A\n\n"
          "question: Which of the boxes comes next in the sequence? Select from A, B, C, D, "
          "and E. (A) A (B) B (C) C (D) D (E) E \nanswer: B\n\n"
          "Now answer the following in the same style based off the provided image:\n"
          "question: {question}\nanswer:")


def _dataset(root: Path) -> Path | None:
    return next((p for p in (root / "data" / "dataset.json", root / "dataset.json")
                 if p.is_file()), None)


def read(base: Path) -> Iterator[tuple[dict, Path]]:
    for root in roots(base, REPO):
        if root.is_dir() and (path := _dataset(root)) is not None:
            break
    else:
        raise VrbenchError(f"no local copy of {REPO} under {base}: clone "
                           f"https://github.com/{REPO} into {base / REPO} (its data/dataset.json "
                           f"and data/images/), and pass --data-dir {base}.")
    try:
        published = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise VrbenchError(f"{path} is not valid JSON ({e}).") from e
    if not isinstance(published, dict):
        raise VrbenchError(f"{path} is not LogicVista's (an object keyed by question id).")
    for qid, row in published.items():
        check_row(row, COLUMNS, OPTIONAL, f"question {qid} of {path}")
        folder = path.parent
        images = next((d for d in (folder / "images", folder) if (d / row["imagename"]).is_file()),
                      folder / "images")
        yield {**row, "_qid": str(qid)}, images


def _listed(value) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value or []]


def convert(row: dict, root: Path) -> dict:
    return {
        "id": f"logicvista-{row['_qid']}", "question": PROMPT.format(question=row["question"]),
        "images": first_image(row, root, "imagename"), "target": row["answer"].strip(),
        "choices": [],
        "meta": {"scorer": {"name": "logicvista"},
                 "categories": {"skill": _listed(row["skill"]),
                                "capability": _listed(row.get("broad_capability")),
                                "specific capability": _listed(row.get("specific_capability"))}}}


BENCHMARKS = (
    Benchmark("logicvista", REPO, "test", "ood", "multiple_choice", convert,
              "LogicVista (448): the official few-shot prompt; answers graded as sets of "
              "letters; by reasoning skill and capability", COLUMNS, optional=OPTIONAL,
              read=read),
)

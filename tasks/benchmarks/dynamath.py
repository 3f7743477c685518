"""DynaMath (Zou et al., 2024): 501 seed questions, each published in 10 variants a program
generated (numbers, colours, functions, layouts changed). Scored by the paper's metrics:
the average accuracy over every variant, the worst-case accuracy (a seed counts only when
each of its variants is right), and the share of seeds answered consistently (all right or
all wrong); the average's interval is clustered by seed.

Two published layouts are read:

    DIR/DynaMath/DynaMath_Sample/ (or the hub cache)   the Hub's DynaMath/DynaMath_Sample: a
        split a variant (sample_variant1 ... sample_variant10), a row a seed (`id`,
        `question`, `ground_truth`, `answer_type`, `subject`, `knowledge_level`,
        `decoded_image`)
    DIR/DynaMath/DynaMath/ (or DIR/DynaMath/)   the GitHub repository's files: a folder a
        variant (variantK/ or trialK/) holding dataset.json (seed id -> `question`,
        `answer`, `answer_type`, `subject`, `level`, `image`) and image/

The prompt is the official one (OpenCompass's VLMEvalKit, as the papers' tables run it):
the model answers in JSON with "solution" and "short answer", and the short answer is
matched as the official scorer matches it (`harness.scoring.official`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

from tasks.benchmarks.base import (
    IMAGE,
    Benchmark,
    Interval,
    N,
    S,
    check_row,
    first_image,
    inline_choices,
)
from tasks.benchmarks.local import open_split, roots
from vrbench.errors import VrbenchError

REPO, GITHUB = "DynaMath/DynaMath_Sample", "DynaMath/DynaMath"
VARIANTS = 10
ANSWER_TYPES = ("float", "multiple choice", "text")
# the rows as read, either layout: the GitHub names
COLUMNS = {"question": S, "answer": S, "answer_type": S, "subject": N, "level": N,
           "image": (str, IMAGE)}
GITHUB_COLUMNS = {"question": S, "answer": S, "answer_type": S, "subject": N, "level": N,
                  "image": S}
HUB_COLUMNS = {"id": (str, int), "question": S, "ground_truth": S, "answer_type": S,
               "subject": N, "knowledge_level": N, "decoded_image": (IMAGE, None),
               "image": (str, IMAGE, None)}
HUB_OPTIONAL = ("subject", "knowledge_level", "image", "decoded_image")

GUIDE = ("\n## Answer Instruction Please provide an answer to the question outlined above. "
         "Your response should adhere to the following JSON format, which includes two keys: "
         "'solution' and 'short answer'. The 'solution' key can contain detailed steps needed "
         "to solve the question, and the 'short answer' key should provide a concise "
         "response. {inst}\n\nExample of expected JSON response format:\n\n")
EXAMPLE = json.dumps({"solution": "[Detailed step-by-step explanation]",
                      "short answer": "[Concise Answer]"}, indent=4)
INSTRUCTIONS = {
    "multiple choice": "Provide the corresponing choice option in the 'short answer' key, "
                       "such as 'A', 'B', 'C', or 'D'.",
    "float": "Format the answer as a three-digit floating-point number and provide it in "
             "the 'short answer' key.",
    "text": "Float numbers in the answer should be formatted as three-digit floating-point "
            "numbers."}


def prompt(question: str, answer_type: str) -> str:
    """The official prompt of a DynaMath question (the instruction's typo included: the
    published numbers were measured with it)."""
    return f"## Question\n {question}" + GUIDE.format(inst=INSTRUCTIONS[answer_type]) + EXAMPLE


def _seed_order(item: tuple[dict, Path]) -> tuple:
    qid = item[0]["_qid"]
    return (0, int(qid), "") if qid.isdigit() else (1, 0, qid), item[0]["_variant"]


def _github(root: Path) -> list[tuple[dict, Path]] | None:
    folders = {}
    for d in sorted(p for p in root.rglob("*") if p.is_dir()):
        m = re.fullmatch(r"(?:variant|trial)(\d+)", d.name)
        if m and (d / "dataset.json").is_file() and d.resolve().is_relative_to(root.resolve()):
            folders.setdefault(int(m.group(1)), d)
    if not folders:
        return None
    out = []
    for k, folder in sorted(folders.items()):
        try:
            published = json.loads((folder / "dataset.json").read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise VrbenchError(f"{folder / 'dataset.json'} is not valid JSON ({e}).") from e
        if not isinstance(published, dict):
            raise VrbenchError(f"{folder / 'dataset.json'} is not DynaMath's (an object keyed "
                               "by seed id).")
        for qid, row in published.items():
            check_row(row, GITHUB_COLUMNS, ("subject", "level"),
                      f"seed {qid} of {folder / 'dataset.json'}")
            out.append(({**row, "_qid": str(qid), "_variant": k}, folder))
    return out


def _hub(base: Path) -> list[tuple[dict, Path]]:
    out = []
    for k in range(1, VARIANTS + 1):
        ds, root = open_split(base, REPO, f"sample_variant{k}")
        for i, row in enumerate(ds.with_format("arrow")[:].to_pylist()):
            check_row(row, HUB_COLUMNS, HUB_OPTIONAL,
                      f"row {i} of sample_variant{k} of the local copy of {REPO} at {root}")
            out.append(({"question": row["question"], "answer": row["ground_truth"],
                         "answer_type": row["answer_type"], "subject": row.get("subject"),
                         "level": row.get("knowledge_level"),
                         "image": row.get("decoded_image") or row.get("image"),
                         "_qid": str(row["id"]), "_variant": k}, root))
    return out


def read(base: Path) -> Iterator[tuple[dict, Path]]:
    """Every variant of every seed, a seed's variants together (so `--limit` takes whole
    seeds): the GitHub layout where there is one, else the Hub's."""
    found = None
    for root in roots(base, GITHUB):
        if root.is_dir() and (found := _github(root)) is not None:
            break
    yield from sorted(found if found is not None else _hub(base), key=_seed_order)


def convert(row: dict, root: Path) -> dict:
    kind = row["answer_type"]
    if kind not in ANSWER_TYPES:
        raise VrbenchError(f"answer_type {kind!r} is none of DynaMath's "
                           f"({', '.join(ANSWER_TYPES)}).")
    return {
        "id": f"dynamath-{row['_qid']}-v{row['_variant']}",
        "question": prompt(row["question"], kind),
        "images": first_image(row, root, "image"), "target": str(row["answer"]).strip(),
        "choices": inline_choices(row["question"]) if kind == "multiple choice" else [],
        "meta": {"group": {"problem": row["_qid"], "variant": row["_variant"]},
                 "scorer": {"name": "dynamath", "answer_type": kind},
                 "categories": {"subject": row.get("subject"), "level": row.get("level"),
                                "answer type": kind}}}


def metrics(scored: list[tuple[dict | None, float]], interval: Interval) -> dict:
    """DynaMath's own figures from each scored variant's (group, accuracy): the average over
    variants, the worst case (the share of seeds whose every scored variant is right, with
    its `interval(k, n)`: seeds are independent), the share answered consistently (every
    variant right, or every one wrong), and the reasoning robustness (worst / average)."""
    seeds: dict[str, list[float]] = {}
    for g, acc in scored:
        seeds.setdefault(str((g or {}).get("problem")), []).append(acc)
    n = len(seeds)
    worst = sum(all(a == 1.0 for a in accs) for accs in seeds.values())
    steady = sum(all(a == 1.0 for a in accs) or all(a == 0.0 for a in accs)
                 for accs in seeds.values())
    average = sum(acc for _, acc in scored) / len(scored)
    sizes = [len(accs) for accs in seeds.values()]
    return {"n_seeds": n, "variants_per_seed": [min(sizes), max(sizes)],
            "average": average, "worst_case": worst / n,
            "worst_case_ci95": list(interval(worst, n)),
            "consistent": steady / n, "consistent_ci95": list(interval(steady, n)),
            "reasoning_robustness": worst / n / average if average else None}


BENCHMARKS = (
    Benchmark("dynamath", REPO, "test", "ood", "expression", convert,
              "DynaMath (501 seeds x 10 variants; the Hub's sample or GitHub's layout): the "
              "official JSON prompt and matching; average and worst-case accuracy, consistency "
              "(intervals clustered by seed)", COLUMNS, summarize=metrics, read=read),
)

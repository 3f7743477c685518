"""The real benchmark rows and responses beside the checkout (../shared/real-benchmarks),
for the tests that use them: readers, and copies written in the layouts the benchmarks are
published in (`six_copies`; `python tests/realdata.py DIR` writes them for a run by hand)."""

import io
import json
import shutil
import sys
from pathlib import Path

import datasets
import pytest
from PIL import Image

from harness.backends import Response
from tasks.answers import LETTERS

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "real-benchmarks"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason=f"{REAL} (the real benchmark rows "
                                "and responses) is not beside this checkout")


def jsonl(name: str) -> list[dict]:
    return [json.loads(line) for line in (REAL / name).read_text().splitlines() if line]


def png(i: int) -> dict:
    buf = io.BytesIO()
    Image.new("RGB", (28, 28), (i % 256, 40, 200)).save(buf, format="PNG")
    return {"bytes": buf.getvalue(), "path": None}


def card(folder: Path, configs: str) -> None:
    """A dataset card whose front matter holds the Hub's `configs` block."""
    (folder / "README.md").write_text(f"---\nconfigs:\n{configs}---\n# Dataset card\n")


def write(folder: Path, name: str, rows: list[dict], features: dict) -> None:
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    table = {k: [r.get(k) for r in rows] for k in features}
    datasets.Dataset.from_dict(table, features=datasets.Features(features)).to_parquet(
        str(folder / name))


S = datasets.Value("string")


class ByPrompt:
    """Answers each prompt from a table keyed by a substring of it, as the real runner
    calls a backend."""

    name = "scripted"

    def __init__(self, answer):
        self.answer, self.prompts = answer, []

    def generate(self, requests, config):
        self.prompts += [r.prompt for r in requests]
        return [[Response(self.answer(r.prompt), 5, "stop")] for r in requests]


def mathvista_items():
    for r in jsonl("responses_mathvista.jsonl"):
        choices = r["choices"] or []
        mc = r["question_type"] == "multi_choice"
        target = LETTERS[choices.index(r["answer"])] if mc else r["answer"]
        precision = int(r["precision"]) if r["answer_type"] == "float" else None
        yield r, target, choices if mc else None, precision


def mathvision_items():
    for r in jsonl("responses_mathvision.jsonl"):
        yield r, r["answer"], r["options"] or None, None


def mathvista_copy(base: Path, rows: list[dict], with_query: bool = True) -> None:
    d = base / "AI4Math" / "MathVista"
    feats = {"pid": S, "question": S, "image": S, "decoded_image": datasets.Image(),
             "choices": datasets.List(S), "unit": S, "precision": datasets.Value("float64"),
             "answer": S, "question_type": S, "answer_type": S,
             "metadata": {"task": S, "context": S, "grade": S, "skills": datasets.List(S)}}
    if with_query:
        feats["query"] = S
    rows = [r | {"decoded_image": png(i), "metadata": {k: r["metadata"][k] for k in (
        "task", "context", "grade", "skills")}} for i, r in enumerate(rows)]
    write(d, "data/testmini-00000-of-00001.parquet", rows, feats)
    card(d, "- config_name: default\n  data_files:\n  - split: testmini\n    path: "
             "data/testmini-*\n  - split: test\n    path: data/test-*\n")


MATHVERSE_FEATS = {"sample_index": S, "problem_index": S, "problem_version": S, "question": S,
                   "image": datasets.Image(), "answer": S, "question_type": S,
                   "metadata": {"split": S, "source": S, "subject": S, "subfield": S},
                   "query_wo": S, "query_cot": S}


def mathverse_copy(base: Path) -> list[dict]:
    """Both configs: testmini from the one problem published in its five versions,
    testmini_text_only from the Text Only sample; returns the text-only rows."""
    d = base / "AI4Math" / "MathVerse"
    text_only = jsonl("mathverse/testmini_text_only_sample.jsonl")
    versions = jsonl("mathverse/output_template_testmini.jsonl")
    write(d, "testmini_text_only.parquet", [r | {"image": None} for r in text_only],
          MATHVERSE_FEATS)
    write(d, "testmini.parquet", [r | {"image": png(i)} for i, r in enumerate(versions)],
          MATHVERSE_FEATS)
    card(d, "- config_name: testmini\n  data_files:\n  - split: testmini\n    path: "
            "\"testmini.parquet\"\n- config_name: testmini_text_only\n  data_files:\n"
            "  - split: testmini\n    path: \"testmini_text_only.parquet\"\n")
    return text_only


def mathvision_copy(base: Path, split: str = "testmini") -> list[dict]:
    """MATH-V's testmini rows (the same rows as in its test split) as the Hub has them."""
    rows = jsonl("mathvision/testmini.jsonl")
    feats = {"id": S, "question": S, "options": datasets.List(S), "image": S,
             "decoded_image": datasets.Image(), "answer": S, "solution": S,
             "level": datasets.Value("int64"), "subject": S}
    write(base / "MathLLMs" / "MathVision", f"data/{split}-00000-of-00001.parquet",
          [r | {"decoded_image": png(i)} for i, r in enumerate(rows)], feats)
    return rows


def dynamath_github(base: Path) -> None:
    shutil.copytree(REAL / "dynamath", base / "DynaMath", ignore=shutil.ignore_patterns("results"))


def wemath_copy(base: Path) -> list[dict]:
    rows = jsonl("wemath/testmini_sample.jsonl")
    feats = {"ID": S, "split": S, "knowledge concept": S, "question": S, "option": S,
             "answer": S, "image_path": datasets.Image(), "key": S,
             "question number": datasets.Value("int64"), "knowledge concept description": S}
    write(base / "We-Math" / "We-Math", "data/testmini-00000-of-00001-adbfe22dcd3558e6.parquet",
           [r | {"image_path": png(i)} for i, r in enumerate(rows)], feats)
    return rows


def dynamath_hub(base: Path) -> None:
    """The shared rows as the Hub publishes DynaMath/DynaMath_Sample: a split a variant."""
    d = base / "DynaMath" / "DynaMath_Sample"
    feats = {"id": S, "question": S, "ground_truth": S, "answer_type": S, "subject": S,
             "knowledge_level": S, "decoded_image": datasets.Image()}
    configs = ""
    for k in range(1, 11):
        folder = REAL / "dynamath" / f"variant{k}"
        published = json.loads((folder / "dataset.json").read_text())
        rows = [{"id": qid, "question": r["question"], "ground_truth": r["answer"],
                 "answer_type": r["answer_type"], "subject": r["subject"],
                 "knowledge_level": r["level"],
                 "decoded_image": {"bytes": (folder / r["image"]).read_bytes(), "path": None}}
                for qid, r in published.items()]
        write(d, f"data/sample_variant{k}-00000-of-00001.parquet", rows, feats)
        configs += f"  - split: sample_variant{k}\n    path: data/sample_variant{k}-*\n"
    card(d, f"- config_name: default\n  data_files:\n{configs}")


def logicvista_copy(base: Path) -> Path:
    """The shared rows in the GitHub repository's layout (data/dataset.json, data/images/)."""
    data = base / "Yijia-Xiao" / "LogicVista" / "data"
    data.mkdir(parents=True)
    shutil.copy(REAL / "logicvista" / "dataset.json", data / "dataset.json")
    shutil.copytree(REAL / "logicvista" / "images", data / "images")
    return data


def six_copies(base: Path) -> Path:
    """Local copies of the six reasoning benchmarks, from the shared rows, in the layouts
    they are published in: what `--data-dir` points at for `--tasks reasoning6`."""
    mathvista_copy(base, jsonl("mathvista/testmini_sample.jsonl"))
    mathvision_copy(base, "test")
    mathverse_copy(base)
    dynamath_github(base)
    wemath_copy(base)
    logicvista_copy(base)
    return base


def per_model_files(folder: Path) -> list[tuple[str, str, Path]]:
    """The shared responses as each model's file was published: MathVista's output JSON
    (pid -> problem), MATH-V's outputs JSONL, LogicVista's answers JSON; (format, model,
    file) each."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    by_model: dict[str, dict] = {}
    for r in jsonl("responses_mathvista.jsonl"):
        by_model.setdefault(r["model"], {})[r["pid"]] = {
            "question_type": r["question_type"], "answer_type": r["answer_type"],
            "choices": r["choices"], "precision": r["precision"], "unit": r["unit"],
            "answer": r["answer"], "response": r["response"],
            "extraction": r["official_extraction"], "prediction": r["official_prediction"],
            "true_false": r["official_correct"]}
    for model, problems in by_model.items():
        (path := folder / f"output_{model}.json").write_text(json.dumps(problems))
        out.append(("mathvista", model, path))
    lines: dict[str, list[str]] = {}
    for r in jsonl("responses_mathvision.jsonl"):
        lines.setdefault(r["model"], []).append(json.dumps({
            "id": r["id"], "options": r["options"], "answer": r["answer"],
            "response": r["response"], "model_answer": r["official_extraction"],
            "correct": r["official_correct"]}))
    for model, rows in lines.items():
        (path := folder / f"{model}.jsonl").write_text("\n".join(rows) + "\n")
        out.append(("mathvision", model, path))
    for path in sorted((REAL / "logicvista" / "answers").glob("*-answers.json")):
        out.append(("logicvista", path.name.removesuffix("-answers.json"), path))
    return out


def dynamath_official() -> str:
    """The authors' DynaMath verdicts of four models (all 501 seeds x 10 variants) through
    vrbench's metric code: a markdown table of the average (clustered by seed) and the worst
    case (Wilson over seeds)."""
    import csv
    import re

    from harness import stats
    from tasks.benchmarks.dynamath import metrics
    lines = ["| model | variants | average % | worst case % | consistent % |",
             "|---|---|---|---|---|"]
    for path in sorted((REAL / "dynamath" / "results").glob("*-result.csv")):
        rows = [r for r in csv.reader(path.open()) if r and re.fullmatch(r"Q\d+", r[0])]
        scored = [({"problem": r[0]}, float(r[k] == "correct")) for r in rows
                  for k in range(1, 11)]
        m = metrics(scored, stats.wilson_interval)
        avg = stats.clustered_summary([a for _, a in scored], [g["problem"] for g, _ in scored])
        lo, hi = avg["acc_ci95"]
        wlo, whi = m["worst_case_ci95"]
        lines.append(f"| {path.name.removesuffix('-result.csv')} | {len(scored)} | "
                     f"{100 * m['average']:.2f} [{100 * lo:.1f}, {100 * hi:.1f}] | "
                     f"{100 * m['worst_case']:.2f} [{100 * wlo:.1f}, {100 * whi:.1f}] | "
                     f"{100 * m['consistent']:.1f} |")
    return "\n".join(lines) + "\n"


def real_models(root: Path, board: Path) -> Path:
    """The real models' published responses rescored under `root`, and their leaderboard
    in `board` (scores only; the responses stay under `root`), DynaMath's official verdicts
    beside it in dynamath.md."""
    import tempfile

    from harness.reports import leaderboard
    from vrbench.cli import main
    with tempfile.TemporaryDirectory() as tmp:
        data = logicvista_copy(Path(tmp) / "data").parents[2]
        for fmt, model, path in per_model_files(Path(tmp) / "files"):
            if main(["rescore", str(path), "--format", fmt, "--model-name", model,
                     "--data-dir", str(data), "--root", str(root)]) != 0:
                raise SystemExit(f"rescoring {path} failed")
    command = f"python tests/realdata.py --real-models {root} {board}"
    leaderboard.write(root, board, command, force=True)
    (board / "dynamath.md").write_text(
        "# DynaMath: the authors' verdicts through vrbench's metric code\n\n"
        f"Regenerate: `{command}`. The authors' per-variant verdicts of four models on all 501 "
        "seeds (no responses are published): the average over the 5,010 variants with its "
        "interval clustered by seed, the worst case (a seed counts when all ten variants are "
        "right) with its Wilson interval over seeds, and the share of seeds answered "
        "consistently.\n\n" + dynamath_official())
    return board


if __name__ == "__main__":  # python tests/realdata.py DIR: the six copies, for a run by hand;
    # python tests/realdata.py --real-models ROOT BOARD: the real models' leaderboard
    if sys.argv[1] == "--real-models":
        print(real_models(Path(sys.argv[2]), Path(sys.argv[3])))
    else:
        print(six_copies(Path(sys.argv[1])))

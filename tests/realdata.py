"""The real benchmark rows and responses beside the checkout (../shared/real-benchmarks),
for the tests that use them: readers, and copies written in the Hub's layouts."""

import io
import json
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

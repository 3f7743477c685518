"""The user's own data by task YAML: the example of docs/tasks.md, on rows and images this
test writes, loads, prompts, grades by its answer type and enters a run; a Hub-style parquet
split and a template of columns work the same; bad rows and paths are one sentence."""

import json
import re
from pathlib import Path

import datasets
import pytest
import yaml
from PIL import Image

import tasks
from harness.runs.runner import evaluate
from helpers import ScriptedBackend, image_key, one_sentence
from tasks import decode_images
from vrbench.cli import main
from vrbench.errors import VrbenchError

DOCS = Path(__file__).resolve().parents[1] / "docs" / "tasks.md"


def _docs_yaml() -> str:
    """The YAML block of docs/tasks.md's "Your own data"."""
    section = DOCS.read_text().split("## Your own data", 1)[1]
    return re.search(r"```yaml\n(.*?)```", section, re.S).group(1)


def _shelves(folder: Path, n: int = 6) -> None:
    (folder / "shelves" / "images").mkdir(parents=True)
    for split in ("validation", "test"):
        lines = []
        for i in range(n):
            uid = f"{split[0]}{i}"
            Image.new("RGB", (56, 56), (40 * i, 100, 200)).save(
                folder / "shelves" / "images" / f"{uid}.png")
            options = ["2", "3", "4"]
            answer = options[i % 3] if i % 2 else "ABC"[i % 3]  # as text, or as a letter
            lines.append(json.dumps({"uid": uid, "photo": f"images/{uid}.png",
                                     "colour": ["red", "blue"][i % 2], "options": options,
                                     "answer": answer}))
        (folder / "shelves" / f"{split}.jsonl").write_text("\n".join(lines) + "\n")


def test_the_docs_example_runs_on_data_made_here(tmp_path):
    _shelves(tmp_path)
    path = tmp_path / "shelf_counts.yaml"
    path.write_text(_docs_yaml())
    t = tasks.load(str(path))
    assert (t.answer_type, t.domain, t.eval_split()) == ("multiple_choice", "id", "validation")
    samples = t.samples("test")
    assert [s.target for s in samples] == ["A", "B", "C", "A", "B", "C"]
    assert samples[1].question == "How many blue books are on the shelf?"
    assert samples[1].choices == ["2", "3", "4"] and samples[1].id == "shelf_counts-test-t1"
    assert "Options: (A) 2 (B) 3 (C) 4" in t.prompt(samples[1])
    # the right letter for half the samples, the option's text for a quarter, wrong for
    # the rest: graded as multiple choice
    answers = {}
    for i, s in enumerate(t.samples("validation")):
        text = (f"\\boxed{{{s.target}}}" if i < 3 else
                f"The answer is {s.choices['ABC'.index(s.target)]}." if i < 4 else "\\boxed{Z}")
        answers[image_key(decode_images(s)[0])] = [text]
    out = evaluate("m", [t], engine=ScriptedBackend(answers), root=str(tmp_path / "runs"),
                   progress=False)
    r = out["results"]["shelf_counts"]
    assert r["n_samples"] == 6 and r["acc"] == pytest.approx(4 / 6)
    assert out["config"]["tasks"]["shelf_counts"]["split"] == "validation"


def test_a_parquet_split_and_a_number_answer(tmp_path):
    img = tmp_path / "data" / "a.png"
    img.parent.mkdir()
    Image.new("RGB", (28, 28), (0, 0, 0)).save(img)
    datasets.Dataset.from_dict({"q": ["What is the area?", "What is the length?"],
                                "pic": [{"bytes": img.read_bytes(), "path": None}] * 2,
                                "a": ["12.5", "7"], "dp": [1, 0]},
                               features=datasets.Features({
                                   "q": datasets.Value("string"), "pic": datasets.Image(),
                                   "a": datasets.Value("string"),
                                   "dp": datasets.Value("int64")})).to_parquet(
        str(tmp_path / "data" / "test.parquet"))
    (tmp_path / "t.yaml").write_text(yaml.safe_dump({
        "name": "areas", "version": 1, "domain": "ood", "answer_type": "number",
        "prompt_template": "{question}", "data": {"splits": {"test": "data"}, "question": "q",
                                                   "image": "pic", "answer": "a",
                                                   "precision": "dp"}}))
    t = tasks.load(str(tmp_path / "t.yaml"))
    s = t.samples("test")
    assert [x.target for x in s] == ["12.5", "7"] and s[0].meta == {"precision": 1}
    assert decode_images(s[0])[0].size == (28, 28)


@pytest.mark.parametrize("change,says", [
    ({"image": "photo", "rows": [{"uid": "x", "photo": "../../secret.png", "colour": "red",
                                  "options": ["2"], "answer": "2"}]}, "leads outside"),
    ({"rows": [{"uid": "x", "photo": "images/a.png", "options": ["2"], "answer": "2"}]},
     "has no 'colour'"),
    ({"rows": [{"uid": "x", "photo": "images/a.png", "colour": "red", "options": ["2", "3"],
                "answer": "9"}]}, "neither an option's letter nor one of its options"),
    ({"data_extra": {"column": "x"}}, "unknown field(s) column"),
    ({"splits": {"test": "nowhere.jsonl"}}, "does not exist"),
])
def test_bad_data_is_one_sentence(tmp_path, tiny_model, capsys, change, says):
    (tmp_path / "shelves" / "images").mkdir(parents=True)
    Image.new("RGB", (28, 28)).save(tmp_path / "shelves" / "images" / "a.png")
    rows = change.get("rows", [{"uid": "x", "photo": "images/a.png", "colour": "red",
                                "options": ["2"], "answer": "2"}])
    (tmp_path / "shelves" / "test.jsonl").write_text(
        "\n".join(json.dumps(r) for r in rows) + "\n")
    spec = yaml.safe_load(_docs_yaml())
    spec["data"]["splits"] = change.get("splits", {"test": "shelves/test.jsonl"})
    spec["data"] |= change.get("data_extra", {})
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(spec))
    code = main(["eval", "--model", tiny_model, "--tasks", str(tmp_path / "t.yaml"),
                 "--split", "test", "--output", str(tmp_path / "run")])
    assert code == 2 and says in one_sentence(capsys)


def test_a_generator_and_data_are_one_or_the_other(tmp_path):
    spec = yaml.safe_load(_docs_yaml()) | {"generator": "count_shapes"}
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(VrbenchError, match="one of the two"):
        tasks.load(str(tmp_path / "t.yaml"))


def test_an_image_that_cannot_be_read_is_a_warning_line(tmp_path, tiny_model, capsys):
    """A corrupt image: that sample counts as wrong, the run goes on, and the command says so
    in a line naming the sample and the cause (not the image library's object)."""
    _shelves(tmp_path)
    (tmp_path / "shelves" / "images" / "v1.png").write_bytes(b"\x89PNG\r\n\x1a\n-truncated")
    path = tmp_path / "shelf_counts.yaml"
    path.write_text(_docs_yaml())
    assert main(["eval", "--model", tiny_model, "--tasks", str(path), "--limit", "3",
                 "--max-new-tokens", "2", "--root", str(tmp_path / "runs")]) == 0
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if x.startswith("warning:"))
    assert "1 sample(s) could not be run" in line and "shelf_counts-validation-v1" in line
    assert "could not be decoded" in line and "0x" not in line

"""Published benchmarks from local copies: small fixtures in the Hugging Face schemas and
layouts (parquet files, `save_to_disk` folders, the hub cache), scored through the real
runner by a backend that answers from a table keyed by prompt."""

import io
import json

import datasets
import pytest
from PIL import Image

import tasks
from harness.backends import Response
from harness.runs.runner import evaluate
from tasks.benchmarks import DATA_ENV
from trainers.session import TrainSet
from vrbench.cli import main


def _png(color) -> dict:
    buf = io.BytesIO()
    Image.new("RGB", (28, 28), color).save(buf, format="PNG")
    return {"bytes": buf.getvalue(), "path": None}


class ByPrompt:
    """Answers each prompt with the text registered for (a substring of) it."""

    name = "scripted"

    def __init__(self, answers: dict[str, str]):
        self.answers, self.prompts = answers, []

    def generate(self, requests, config):
        out = []
        for r in requests:
            self.prompts.append(r.prompt)
            text = next(v for k, v in self.answers.items() if k in r.prompt)
            out.append([Response(text, len(text.split()), "stop")])
        return out


MATHVISTA = {
    "pid": ["1", "2", "3", "4"],
    "question": ["Which is larger?", "How many?", "What is x?", "List the roots."],
    "image": ["images/1.jpg", "images/2.jpg", "images/3.jpg", "images/4.jpg"],
    "decoded_image": [_png("red"), _png("green"), _png("blue"), _png("white")],
    "choices": [["left", "right"], None, None, None],
    "unit": [None, None, "cm", None],
    "precision": [None, None, 1.0, None],
    "answer": ["right", "7", "1.5", "[1, 2]"],
    "question_type": ["multi_choice", "free_form", "free_form", "free_form"],
    "answer_type": ["text", "integer", "float", "list"],
    "metadata": [{"task": "figure QA", "context": "bar chart", "grade": "elementary school",
                  "skills": ["arithmetic reasoning", "statistical reasoning"]},
                 {"task": "math word problem", "context": "synthetic scene",
                  "grade": "elementary school", "skills": ["arithmetic reasoning"]},
                 {"task": "geometry problem solving", "context": "geometry diagram",
                  "grade": "high school", "skills": ["geometry reasoning"]},
                 {"task": "textbook question answering", "context": "function plot",
                  "grade": "college", "skills": ["algebraic reasoning"]}],
    "query": ["Hint: answer with the option's letter.\nQuestion: Which is larger?\n"
              "Choices:\n(A) left\n(B) right", "Hint: answer with an integer.\nQuestion: How "
              "many?", "Hint: a float with one decimal.\nQuestion: What is x?",
              "Hint: a Python list.\nQuestion: List the roots."],
}


def _mathvista(base):
    feats = datasets.Features({
        "pid": datasets.Value("string"), "question": datasets.Value("string"),
        "image": datasets.Value("string"), "decoded_image": datasets.Image(),
        "choices": datasets.List(datasets.Value("string")), "unit": datasets.Value("string"),
        "precision": datasets.Value("float64"), "answer": datasets.Value("string"),
        "question_type": datasets.Value("string"), "answer_type": datasets.Value("string"),
        "metadata": {"task": datasets.Value("string"), "context": datasets.Value("string"),
                     "grade": datasets.Value("string"),
                     "skills": datasets.List(datasets.Value("string"))},
        "query": datasets.Value("string")})
    d = base / "AI4Math" / "MathVista" / "data"
    d.mkdir(parents=True)
    datasets.Dataset.from_dict(MATHVISTA, features=feats).to_parquet(
        str(d / "testmini-00000-of-00001.parquet"))


def test_mathvista_prompts_and_scores(tmp_path, monkeypatch):
    _mathvista(tmp_path)
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    backend = ByPrompt({"Which is larger": "The right bar is taller, so the answer is right.",
                        "How many": "\\boxed{8}",
                        "What is x": "x is about \\boxed{1.46}",
                        "List the roots": "The answer is [1, 2]"})
    out = evaluate("scripted", "mathvista_testmini", engine=backend,
                   output=tmp_path / "run", progress=False)
    # the prompt is the official query, untouched
    assert backend.prompts == MATHVISTA["query"]
    r = out["results"]["mathvista_testmini"]
    # option text counts for its letter; 1.46 rounds to the target's 1 decimal; lists match
    assert r["acc"] == 0.75 and r["n_samples"] == 4
    cats = r["by_category"]
    assert cats["skills"]["arithmetic reasoning"] == {"n": 2, "acc": 0.5}
    assert cats["grade"]["high school"] == {"n": 1, "acc": 1.0}
    assert out["config"]["tasks"]["mathvista_testmini"]["version"] == \
        "AI4Math/MathVista:testmini"


def _mathverse(base):
    rows = {"sample_index": ["1", "2", "3"], "problem_index": ["1", "1", "2"],
            "problem_version": ["Vision Only", "Text Dominant", "Text Only"],
            "question": ["", "AB = 3, what is BC?", "What is the area?\nChoices:\nA:2\nB:4"],
            "image": [_png("red"), _png("red"), None], "answer": ["4", "4", "B"],
            "question_type": ["free-form", "free-form", "multi-choice"],
            "metadata": [{"subject": "plane geometry", "subfield": "length"}] * 2
            + [{"subject": "plane geometry", "subfield": "area"}],
            "query_cot": ["Answer the question in the image. (cot)",
                          "AB = 3, what is BC? (cot)", "What is the area? (cot)"],
            "question_for_eval": ["", "AB = 3, what is BC?",
                                  "What is the area?\nChoices:\nA:2\nB:4"]}
    feats = datasets.Features({
        **{k: datasets.Value("string") for k in rows if k not in ("image", "metadata")},
        "image": datasets.Image(), "metadata": {"subject": datasets.Value("string"),
                                                "subfield": datasets.Value("string")}})
    datasets.DatasetDict({"testmini": datasets.Dataset.from_dict(rows, features=feats)}
                         ).save_to_disk(str(base / "MathVerse" / "testmini"))


def test_mathverse_by_version_with_a_text_only_problem(tmp_path, monkeypatch):
    _mathverse(tmp_path)
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    backend = ByPrompt({"image. (cot)": "\\boxed{4}", "BC? (cot)": "\\boxed{5}",
                        "area? (cot)": "The area is 4, so the answer is B"})
    out = evaluate("scripted", "mathverse_testmini", engine=backend,
                   output=tmp_path / "run", progress=False)
    r = out["results"]["mathverse_testmini"]
    assert r["acc"] == pytest.approx(2 / 3) and r["n_errors"] == 0
    assert r["by_category"]["version"] == {"Text Dominant": {"n": 1, "acc": 0.0},
                                           "Text Only": {"n": 1, "acc": 1.0},
                                           "Vision Only": {"n": 1, "acc": 1.0}}


def test_mathverse_vision_only_is_that_version_of_testmini(tmp_path, monkeypatch):
    _mathverse(tmp_path)
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    t = tasks.load("mathverse_testmini_vision_only")
    (only,) = t.samples("test")
    assert only.id == "mathverse-1" and only.meta["categories"]["version"] == "Vision Only"
    # problem 1 is in two versions: in the full config its samples share an interval's cluster
    assert only.meta["group"] == {"problem": "1", "version": "Vision Only"}


def test_mathvision_from_the_hub_cache_layout(tmp_path, monkeypatch):
    rows = {"id": ["1", "2"], "question": ["Which shape?", "How many sides?"],
            "options": [["circle", "square"], []], "image": ["images/1.jpg", "images/2.jpg"],
            "decoded_image": [_png("red"), _png("blue")], "answer": ["B", "6"],
            "solution": ["", ""], "level": [1, 3], "subject": ["metric geometry", "counting"]}
    feats = datasets.Features({
        "id": datasets.Value("string"), "question": datasets.Value("string"),
        "options": datasets.List(datasets.Value("string")), "image": datasets.Value("string"),
        "decoded_image": datasets.Image(), "answer": datasets.Value("string"),
        "solution": datasets.Value("string"), "level": datasets.Value("int64"),
        "subject": datasets.Value("string")})
    d = tmp_path / "datasets--MathLLMs--MathVision" / "snapshots" / "0123abc" / "data"
    d.mkdir(parents=True)
    datasets.Dataset.from_dict(rows, features=feats).to_parquet(str(d / "testmini-0.parquet"))
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    backend = ByPrompt({"Which shape": "\\boxed{square}", "How many sides": "\\boxed{5}"})
    out = evaluate("scripted", "mathvision_testmini", engine=backend,
                   output=tmp_path / "run", progress=False)
    # MATH-V's own prompt: its instruction, the question, the options one a line
    assert backend.prompts[0] == (
        'Please solve the problem and put your answer in one "\\boxed{}". If it is a '
        'multiple choice question, only one letter is allowed in the "\\boxed{}".\n'
        "Which shape?\n(A) circle\n(B) square\n")
    r = out["results"]["mathvision_testmini"]
    assert r["acc"] == 0.5
    assert r["by_category"]["level"] == {"1": {"n": 1, "acc": 1.0}, "3": {"n": 1, "acc": 0.0}}


def test_geometry3k_trains_and_evaluates_from_a_saved_copy(tmp_path, monkeypatch):
    feats = datasets.Features({"images": datasets.List(datasets.Image()),
                               "problem": datasets.Value("string"),
                               "answer": datasets.Value("string")})
    split = {s: datasets.Dataset.from_dict(
        {"images": [[_png("red")], [_png("blue")]],
         "problem": [f"<image>Find x ({s} 1).", f"<image>Find y ({s} 2)."],
         "answer": ["3", "\\frac{1}{2}"]}, features=feats) for s in ("train", "validation", "test")}
    datasets.DatasetDict(split).save_to_disk(str(tmp_path / "geometry3k"))
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    data = TrainSet("geometry3k_train", "train", seed=0)
    assert len(data) == 2
    task, sample = data.example(0)
    assert sample.solution in ("\\boxed{3}", "\\boxed{\\frac{1}{2}}")
    assert task.prompt(sample).startswith("Find ") and "<image>" not in task.prompt(sample)
    backend = ByPrompt({"validation 1": "\\boxed{3}", "validation 2": "\\boxed{0.5}"})
    out = evaluate("scripted", "geometry3k_validation", split="validation", engine=backend,
                   output=tmp_path / "run", progress=False)
    assert out["results"]["geometry3k_validation"]["acc"] == 1.0
    assert tasks.load("geometry3k_validation").domain == "id"


def test_missing_copy_says_what_to_download(tmp_path, capsys, tiny_model):
    (tmp_path / "empty").mkdir()
    code = main(["eval", "--model", tiny_model, "--tasks", "mathvista_testmini",
                 "--data-dir", str(tmp_path / "empty")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "no local copy of AI4Math/MathVista" in err and "hf download AI4Math/MathVista" in err
    assert main(["eval", "--model", tiny_model, "--tasks", "mathvista_testmini",
                 "--data-dir", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_results_json_keeps_the_breakdown(tmp_path, monkeypatch):
    _mathvista(tmp_path)
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    backend = ByPrompt({"": "\\boxed{7}"})
    evaluate("scripted", "mathvista_testmini", engine=backend, output=tmp_path / "run",
             progress=False)
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["results"]["mathvista_testmini"]["by_category"]["task"][
        "math word problem"] == {"n": 1, "acc": 1.0}


def test_wemath_four_way_diagnosis_by_hand(tmp_path, monkeypatch):
    # (problem ID, key, answered right?) -> by hand, over N = 5 multi-step problems:
    # 1 IG (parts right, whole wrong), 2 RM strict & CM loose, 3 RM strict & loose (every
    # part wrong, whole right), 4 CM, 5 IK; a one-step problem stays out of the diagnosis
    plan = [("1", "2steps_1", 1), ("1", "2steps_2", 1), ("1", "2steps_multi", 0),
            ("2", "2steps_1", 0), ("2", "2steps_2", 1), ("2", "2steps_multi", 1),
            ("3", "3steps_1", 0), ("3", "3steps_2", 0), ("3", "3steps_3", 0),
            ("3", "3steps_multi", 1),
            ("4", "2steps_1", 1), ("4", "2steps_2", 1), ("4", "2steps_multi", 1),
            ("5", "2steps_1", 0), ("5", "2steps_2", 0), ("5", "2steps_multi", 0),
            ("6", "1steps_1", 1)]
    rows = {"ID": [p for p, _, _ in plan], "split": ["testmini"] * len(plan),
            "knowledge concept": ["angles"] * len(plan),
            "question": [f"Q{p}-{k}?" for p, k, _ in plan],
            "option": ["A. 1; B. 2; C. 3"] * len(plan), "answer": ["B"] * len(plan),
            "image_path": [_png("white")] * len(plan), "key": [k for _, k, _ in plan],
            "question number": list(range(len(plan))),
            "knowledge concept description": [""] * len(plan)}
    feats = datasets.Features({k: datasets.Value("string") for k in rows
                               if k not in ("image_path", "question number")}
                              | {"image_path": datasets.Image(),
                                 "question number": datasets.Value("int64")})
    d = tmp_path / "We-Math" / "We-Math"
    d.mkdir(parents=True)
    datasets.Dataset.from_dict(rows, features=feats).to_parquet(str(d / "testmini.parquet"))
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    backend = ByPrompt({f"Q{p}-{k}?": "<Thought process>: <<...>> Answer: <<"
                        + ("B" if ok else "A") + ">>" for p, k, ok in plan})
    out = evaluate("scripted", "wemath_testmini", engine=backend, output=tmp_path / "run",
                   progress=False)
    assert "Option: A. 1; B. 2; C. 3" in backend.prompts[0]
    r = out["results"]["wemath_testmini"]
    assert r["acc"] == pytest.approx(9 / 17)
    assert r["diagnosis"] == {
        "n_problems": 5, "IK": 1, "IG": 1, "CM_strict": 1, "CM_loose": 2, "RM_strict": 2,
        "RM_loose": 1, "score_strict": pytest.approx(0.3), "score_loose": pytest.approx(0.5),
        "rm_rate_strict": pytest.approx(2 / 3), "rm_rate_loose": pytest.approx(1 / 3)}
    assert r["by_category"]["steps"]["1steps"] == {"n": 1, "acc": 1.0}


def test_mm_math_as_published_with_images_in_a_zip(tmp_path, monkeypatch):
    """THU-KEG/MM_Math publishes MM_Math.jsonl (question, file_name, solution, year,
    difficult, knowledge; no answer column, one split) and its images in a zip."""
    import zipfile
    d = tmp_path / "THU-KEG" / "MM_Math"
    d.mkdir(parents=True)
    rows = [{"question": "<image>In the figure, AB = 4. What is BC?", "file_name": "1.png",
             "solution": "By similar triangles, BC = 5 \\times 4 = \\boxed{20}.",
             "year": "8", "difficult": "0.6", "knowledge": "similar triangles"},
            {"question": "<image>Find the angle.", "file_name": "2.png",
             "solution": "So the angle is \\boxed{30^\\circ}", "year": "7",
             "difficult": "0.8", "knowledge": "angles"},
            {"question": "<image>Prove it.", "file_name": "3.png",
             "solution": "A proof, with no boxed answer.", "year": "9", "difficult": "0.4",
             "knowledge": "proof"}]
    (d / "MM_Math.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with zipfile.ZipFile(d / "Image.zip", "w") as z:
        for i, color in ((1, "black"), (2, "gray"), (3, "white")):
            z.writestr(f"MM_Math/{i}.png", _png(color)["bytes"])
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    t = tasks.load("mm_math_validation")
    got = t.samples("validation")
    # the answer is the solution's last box; a row without one is left out
    assert [s.target for s in got] == ["20", "30^\\circ"]
    assert got[0].images[0]["bytes"] == _png("black")["bytes"]  # read from the zip
    assert t.prompt(got[0]) == ("In the figure, AB = 4. What is BC?\n"
                                "Put the final answer in \\boxed{}.")
    backend = ByPrompt({"BC?": "\\boxed{20}", "angle": "The angle is \\boxed{30}"})
    out = evaluate("scripted", "mm_math_validation", split="validation", engine=backend,
                   output=tmp_path / "run", progress=False)
    assert out["results"]["mm_math_validation"]["acc"] == 1.0  # 30 matches 30^\circ


def test_mm_math5k_draw_is_fixed_and_disjoint():
    from tasks.benchmarks.training import mm_math_split
    rows = [{"id": str(i), "target": "1" if i % 7 else ""} for i in range(150)]
    val, train = mm_math_split("validation")(rows), mm_math_split("train")(rows)
    answerable = [r for r in rows if r["target"]]
    assert len(val) == 100 and len(train) == len(answerable) - 100
    assert not {r["id"] for r in val} & {r["id"] for r in train}
    assert val == mm_math_split("validation")(list(rows))

"""The last tracebacks, each now one sentence and exit code 2: JSON nested too deeply, a
vrbench samples file whose responses are not texts, and a chat template that transformers'
sandbox refuses."""

import json
import shutil

import pytest

from helpers import one_sentence
from vrbench.cli import main


@pytest.mark.parametrize("fmt,name", [("mathvista", "output.json"),
                                      ("vrbench", "samples.jsonl")])
def test_json_nested_too_deeply(tmp_path, capsys, fmt, name):
    path = tmp_path / name
    path.write_text("[" * 200_000 + "]" * 200_000 + "\n")
    assert main(["rescore", str(path), "--format", fmt, "--root", str(tmp_path / "r")]) == 2
    assert str(path) in one_sentence(capsys)


def test_responses_that_are_not_texts(tmp_path, capsys):
    path = tmp_path / "samples.jsonl"
    path.write_text(json.dumps({"task": "count_shapes", "doc_id": "1", "target": "3",
                                "resps": [3, {"text": 4}], "correct": [True, False]}) + "\n")
    assert main(["rescore", str(path), "--format", "vrbench", "--root", str(tmp_path)]) == 2
    assert "record 1" in one_sentence(capsys)


def test_a_chat_template_the_sandbox_refuses(tmp_path, tiny_model, capsys):
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    (model / "chat_template.jinja").write_text(
        "{{ messages.__class__.__mro__[1].__subclasses__() }}")
    code = main(["eval", "--model", str(model), "--tasks", "count_shapes", "--limit", "1",
                 "--max-new-tokens", "2", "--output", str(tmp_path / "run"), "--no-progress"])
    assert code == 2
    assert "refused by transformers' sandbox" in one_sentence(capsys)

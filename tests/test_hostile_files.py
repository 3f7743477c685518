"""A file vrbench reads on a user's behalf is data: a recipe someone hands them sets values,
never code to import or a server to which their credentials go. Those come from the command
line only, where the user types them."""

import json

import pytest

from trainers import recipes
from trainers.config import RLConfig, SFTConfig
from vrbench.cli import main
from vrbench.errors import VrbenchError


def _recipe(tmp_path, text: str) -> str:
    path = tmp_path / "handed.yaml"
    path.write_text(text)
    return str(path)


def _planted(tmp_path):
    """A reward file that leaves a mark when it is imported."""
    mark = tmp_path / "imported"
    code = tmp_path / "evil.py"
    code.write_text(f"open({str(mark)!r}, 'w').write('ran')\ndef fn(**kw):\n    return []\n")
    return code, mark


@pytest.mark.parametrize("command,body,flag", [
    ("rl", "reward: [vrbench, '{code}:fn=0.0']", "--reward"),
    ("rl", "reward: '{code}:fn'", "--reward"),
    ("rl", "reward: [vrbench=0.5, 'os.path:join']", "--reward"),  # a module is code too
    *[(command, body, flag) for command in ("rl", "sft") for body, flag in (
        ("eval: {{judge_base_url: 'http://host/v1', judge_model: m}}", "--eval-judge-base-url"),
        ("eval: {{backend: openai, base_url: 'http://host/v1'}}", "--eval-base-url"))],
])
def test_a_recipe_cannot_name_code_or_a_destination(tmp_path, capsys, command, body, flag):
    code, mark = _planted(tmp_path)
    path = _recipe(tmp_path, f"trainer: {command}\nmodel: m\nout: {tmp_path / 'o'}\n"
                   + body.format(code=code) + "\n")
    for extra in (["--dry-run"], []):
        assert main([command, "--recipe", path, *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and flag in err[0] and "a file is data" in err[0], err
    assert not mark.exists()  # never imported
    assert not (tmp_path / "o").exists()  # nothing started


def test_the_python_api_refuses_the_same_recipe(tmp_path):
    code, mark = _planted(tmp_path)
    path = _recipe(tmp_path, f"trainer: rl\nmodel: m\nreward: ['{code}:fn']\n")
    with pytest.raises(VrbenchError, match="only the command line may set"):
        recipes.load(path, RLConfig, "rl")
    path = _recipe(tmp_path, "trainer: sft\nmodel: m\neval: {judge_base_url: 'http://h'}\n")
    with pytest.raises(VrbenchError, match="--eval-judge-base-url"):
        recipes.load(path, SFTConfig, "sft")
    assert not mark.exists()


def test_values_and_built_in_names_stay_settable_and_the_command_line_adds_the_rest(
        tmp_path, capsys):
    code, mark = _planted(tmp_path)
    path = _recipe(tmp_path, "trainer: rl\nmodel: m\nreward: [vrbench=0.5]\n"
                   "eval: {backend: openai, limit: 3}\n")
    assert main(["rl", "--recipe", path, "--dry-run", "--reward", "vrbench",
                 f"{code}:fn=0.1", "--eval-base-url", "http://127.0.0.1:9/v1",
                 "--eval-judge-model", "m", "--eval-judge-base-url", "http://127.0.0.1:9/v1"]) == 0
    resolved = json.loads(capsys.readouterr().out)
    assert resolved["reward"] == ["vrbench", f"{code}:fn=0.1"]
    assert resolved["eval"]["base_url"] == "http://127.0.0.1:9/v1"
    assert resolved["eval"]["limit"] == 3
    assert not mark.exists()  # a dry run loads nothing
    assert main(["rl", "--recipe", path, "--dry-run", "--eval-base-url", "http://h/v1"]) == 0
    assert json.loads(capsys.readouterr().out)["reward"] == ["vrbench=0.5"]

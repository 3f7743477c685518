"""A file vrbench reads on a user's behalf is data: a recipe someone hands them sets values,
never code to import or a server to which their credentials go. Those come from the command
line only, where the user types them."""

import json
from pathlib import Path

import pytest

from helpers import one_sentence
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
        ("eval: {{backend: openai, base_url: 'http://host/v1'}}", "--eval-base-url"),
        ("eval: {{trust_remote_code: true}}", "--eval-trust-remote-code"))],
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


# -- the smaller ones: a split too large, an adapter over merged weights, W&B that cannot
# work, a format reward for an empty box, paths of the machine in a checkpoint -------------



def test_a_task_yaml_cannot_ask_for_billions_of_samples(tmp_path, tiny_model, capsys):
    path = tmp_path / "big.yaml"
    path.write_text("name: big\nversion: 1\ndomain: id\nanswer_type: integer\n"
                    "prompt_template: '{question}'\nsplits: {test: 2000000000}\n"
                    "generator: count_shapes\n")
    assert main(["eval", "--model", tiny_model, "--tasks", str(path), "--output",
                 str(tmp_path / "run")]) == 2
    assert "at most 1,000,000" in one_sentence(capsys)
    assert not (tmp_path / "run").exists()


def test_an_adapter_config_beside_merged_weights_is_refused(tmp_path, tiny_model, capsys):
    import shutil
    model = tmp_path / "merged"
    shutil.copytree(tiny_model, model)
    (model / "adapter_config.json").write_text('{"peft_type": "LORA", "r": 4}')
    assert main(["eval", "--model", str(model), "--tasks", "count_shapes", "--limit", "1",
                 "--output", str(tmp_path / "run")]) == 2
    assert "adapter_config.json beside them" in one_sentence(capsys)


@pytest.mark.parametrize("env,says", [
    ({}, "has no API key"),
    ({"WANDB_API_KEY": "x" * 40, "WANDB_BASE_URL": "http://127.0.0.1:9"}, "cannot reach"),
])
def test_wandb_that_cannot_work_is_one_sentence_before_the_model_loads(
        tmp_path, capsys, monkeypatch, env, says):
    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = main(["sft", "--model", str(tmp_path / "no-model-here"), "--out",
                 str(tmp_path / "o"), "--report-to", "wandb", "--steps", "1"])
    assert code == 2 and says in one_sentence(capsys)  # before the missing model is found


def test_the_format_reward_pays_for_an_answer_not_an_empty_box():
    from harness.scoring.rewards import RewardTerms, reward
    terms = RewardTerms(format=0.5)
    assert reward("So \\boxed{3}", "3", terms=terms)["reward"] == 1.5
    for empty in ("So \\boxed{}", "So \\boxed{ }", "<answer></answer>"):
        assert reward(empty, "3", terms=terms)["reward"] == 0.0


def test_a_checkpoint_names_its_start_relative_to_itself(tmp_path, tiny_model):
    from harness.runs.index import index
    from trainers.config import CheckpointEval
    from trainers.sft import SFTConfig, train
    out = tmp_path / "runs" / "sft"
    final = train(SFTConfig(model=tiny_model, out=str(out), tasks="count_shapes", steps=1,
                            batch_size=2, eval=CheckpointEval(id_tasks="count_shapes",
                                                              ood_tasks="", limit=1,
                                                              max_new_tokens=2)))
    info = json.loads((final / "vrbench_checkpoint.json").read_text())
    assert info["base_model"].startswith("..") and str(tmp_path) not in info["base_model"]
    assert (final / info["base_model"]).resolve() == Path(tiny_model).resolve()
    (entry,) = index(out)  # read back as the path it names
    assert entry.base_model == str(Path(tiny_model).resolve())

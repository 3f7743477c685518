"""`vrbench rl --reward`: several reward functions, weighted, called as TRL calls them."""

import pytest

from harness.runs.store import read_jsonl
from trainers import reward_fns, rl
from trainers.config import CheckpointEval, OptimSettings
from vrbench.cli import main
from vrbench.errors import VrbenchError

USER = '''
def length_bonus(completions, n_tokens, **kwargs):
    assert {"prompts", "target", "choices", "task", "doc_id"} <= set(kwargs)
    return [n / 100 for n in n_tokens]

def boxed(completions, target):
    return [float("boxed" in c) for c in completions]

def broken(completions, **kw):
    raise KeyError("answer")

def short(completions, **kw):
    return [0.0]

def words(completions, **kw):
    return ["high"] * len(completions)
'''


@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "my_rewards.py"
    path.write_text(USER)
    return path


def _fields(n=2):
    return {"prompts": ["p"] * n, "completions": ["\\boxed{3}", "4"], "target": ["3"] * n,
            "choices": [[]] * n, "task": ["t"] * n, "doc_id": ["a", "b"], "n_tokens": [5, 50],
            "precision": [None] * n, "finish_reason": ["stop"] * n, "completion_ids": [[]] * n}


def test_specs_weights_and_calls(user_file):
    fns = reward_fns.load(("vrbench", f"{user_file}:length_bonus=0.5", f"{user_file}:boxed"))
    assert [(f.key, f.weight) for f in fns] == [("vrbench", 1.0), ("length_bonus", 0.5),
                                                ("boxed", 1.0)]
    assert reward_fns.call(fns[1], _fields()) == [0.05, 0.5]
    assert reward_fns.call(fns[2], _fields()) == [1.0, 0.0]  # takes only what it names
    assert reward_fns.load(("harness.scoring.rewards:compute_score",))[0].fn is not None


@pytest.mark.parametrize("name,match", [
    ("broken", "broken raised KeyError"), ("short", "returned 1 rewards for 2"),
    ("words", "not a number")])
def test_a_bad_reward_function_is_one_sentence_naming_it(user_file, name, match):
    (f,) = reward_fns.load((f"{user_file}:{name}",))
    with pytest.raises(VrbenchError, match=match) as e:
        reward_fns.call(f, _fields())
    assert name in str(e.value)


@pytest.mark.parametrize("spec,match", [
    ("nosuchmodule_xyz:fn", "failed to load"), ("harness.scoring.rewards:nope", "no function"),
    ("missing.py:fn", "does not exist"), ("justaname", "module:function"),
    ("vrbench=heavy", "must be a number")])
def test_a_reward_that_cannot_load_is_refused_before_training(spec, match):
    with pytest.raises(VrbenchError, match=match):
        reward_fns.load((spec,))


def test_rl_adds_up_and_logs_each_function(tmp_path, sft_model, user_file):
    out = tmp_path / "rl"
    rl.train(rl.RLConfig(
        model=sft_model, out=str(out), tasks="count_shapes", steps=1, prompts_per_step=4,
        group_size=4, gen_chunk=2, max_new_tokens=24,
        reward=("vrbench", f"{user_file}:length_bonus=0.5"),
        optim=OptimSettings(lr=1e-3, warmup=0.0, min_lr_ratio=1.0),
        eval=CheckpointEval(id_tasks="", ood_tasks="")))
    rolls = read_jsonl(out / "rollouts.jsonl")
    assert len(rolls) == 16
    for r in rolls:
        assert r["fn_length_bonus"] == pytest.approx(len(r["token_ids"]) / 100)
        assert r["reward"] == pytest.approx(r["fn_vrbench"] + 0.5 * r["fn_length_bonus"])
    (row,) = read_jsonl(out / "train_log.jsonl")
    assert row["reward_fn_length_bonus"] == pytest.approx(
        sum(r["fn_length_bonus"] for r in rolls) / 16)


def test_the_command_line_refuses_a_broken_reward_in_one_sentence(tmp_path, tiny_model,
                                                                  user_file, capsys):
    code = main(["rl", "--model", tiny_model, "--out", str(tmp_path / "o"), "--steps", "1",
                 "--reward", f"{user_file}:nope"])
    assert code == 2 and "no function 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()

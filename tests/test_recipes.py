"""The paper's configurations as recipe files: each parses into its trainer's config, holds
every value the paper states, prints with --dry-run, and yields to flags."""

import json

import pytest

from trainers import recipes
from trainers.rl import RLConfig
from trainers.sft import SFTConfig
from vrbench.cli import main

# (arXiv 2504.02587 section 5.1 and appendix, as REFERENCE.md gathers them)
PAPER_RL = {
    "advantage": "reinforce_pp", "gamma": 1.0, "kl_reward_coef": 0.0, "whiten_add_mean": True,
    "kl_coef": 0.001, "clip_low": 0.2, "clip_high": 0.2, "group_size": 1, "ppo_epochs": 1,
    "mini_batches": 32, "prompts_per_step": 896, "temperature": 1.0, "top_p": 1.0,
    "max_new_tokens": 2048, "correct_reward": 1.0, "format_reward": 0.0,
    "language_coef": 0.1, "no_eos_reward": -0.1, "min_tokens": 18, "bf16": True,
    "param_dtype": "float32", "loss_agg": "token-mean",
}
PAPER_OPTIM = {"lr": 5e-6, "warmup": 0.1, "betas": (0.9, 0.95), "eps": 1e-5,
               "weight_decay": 0.01, "grad_clip": 1.0, "train": ("language",)}
RUNS = {"maye_qwen2vl_2b_mmmath5k": ("Qwen/Qwen2-VL-2B-Instruct", "mm_math_train", 150),
        "maye_qwen25vl_7b_mmmath5k": ("Qwen/Qwen2.5-VL-7B-Instruct", "mm_math_train", 150),
        "maye_qwen2vl_2b_geometry3k": ("Qwen/Qwen2-VL-2B-Instruct", "geometry3k_train", 100),
        "maye_qwen25vl_7b_geometry3k": ("Qwen/Qwen2.5-VL-7B-Instruct", "geometry3k_train",
                                        100)}


def test_every_recipe_is_listed():
    assert set(RUNS) | {"sft_qwen25vl_7b_mmmath5k"} == set(recipes.names())


@pytest.mark.parametrize("name", sorted(RUNS))
def test_rl_recipes_hold_the_papers_values(name):
    cfg = recipes.load(name, RLConfig, "rl")
    model, tasks, steps = RUNS[name]
    assert (cfg.model, cfg.tasks, cfg.steps) == (model, tasks, steps)
    assert {k: getattr(cfg, k) for k in PAPER_RL} == PAPER_RL
    assert {k: getattr(cfg.optim, k) for k in PAPER_OPTIM} == PAPER_OPTIM
    assert cfg.eval.presets == ("pass8", "pass1_t0.6", "pass1_t0.01")
    assert cfg.eval.max_new_tokens == 2048
    cfg.check(7)  # 896 prompts = 128 per device on the paper's 7 training GPUs


def test_sft_recipe_is_the_papers_baseline():
    cfg = recipes.load("sft_qwen25vl_7b_mmmath5k", SFTConfig, "sft")
    assert (cfg.optim.lr, cfg.batch_size, cfg.tasks) == (1e-5, 16, "mm_math_train")
    assert cfg.steps * cfg.batch_size == 30 * 5000  # as many epochs as RL (30)


def test_dry_run_prints_the_resolved_configuration_and_flags_win(capsys):
    assert main(["rl", "--recipe", "maye_qwen25vl_7b_mmmath5k", "--dry-run", "--lr", "3e-6",
                 "--eval-presets", "greedy"]) == 0
    resolved = json.loads(capsys.readouterr().out)
    assert resolved["trainer"] == "rl" and resolved["kl_coef"] == 0.001
    assert resolved["optim"]["lr"] == 3e-6 and resolved["optim"]["eps"] == 1e-5
    assert resolved["eval"]["presets"] == ["greedy"]
    assert resolved["out"] == "runs/maye_qwen25vl_7b_mmmath5k"


def test_bad_recipes_are_one_sentence(tmp_path, capsys):
    assert main(["rl", "--recipe", "nope", "--dry-run"]) == 2
    assert "unknown recipe 'nope'" in capsys.readouterr().err
    assert main(["sft", "--recipe", "maye_qwen2vl_2b_mmmath5k", "--dry-run"]) == 2
    assert "is not a `trainer: sft` recipe" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("trainer: rl\nmodel: m\nlearning_rate: 1\n")
    assert main(["rl", "--recipe", str(bad), "--dry-run"]) == 2
    assert "unknown field(s) learning_rate" in capsys.readouterr().err

"""vrbench inside TRL: its grader as a GRPOTrainer reward and its scoring of each saved
checkpoint through a TrainerCallback, on a real 2-step GRPO run of the tiny model; and the
verl reward signature."""

import pytest
from transformers import AutoProcessor

from harness.runs.index import index
from harness.runs.store import read_jsonl
from trainers.config import CheckpointEval
from trainers.integrations import VrbenchCallback, trl_dataset, trl_reward, verl_compute_score
from vrbench.cli import main


def test_rewards_grade_as_vrbench_does():
    conv = [[{"role": "assistant", "content": "So \\boxed{3}"}],
            [{"role": "assistant", "content": "So \\boxed{4}"}]]
    assert trl_reward(["p", "p"], conv, target=["3", "3"]) == [1.0, 0.0]
    assert trl_reward(["p"], ["The answer is (B)."], target=["B"],
                      choices=[["red", "green"]]) == [1.0]
    assert verl_compute_score("mathvista", "x = \\boxed{1.46}", "1.5",
                              {"precision": 1}) == 1.0
    assert verl_compute_score("geo", "\\boxed{70^\\circ}", "70") == 1.0
    assert verl_compute_score("geo", "\\boxed{71}", "70") == 0.0


def test_a_tool_using_completion_is_graded_on_its_last_answer():
    # TRL's tool-calling completions: the assistant calls a tool, reads its result, answers;
    # parsed reasoning sits beside the content
    call = {"role": "assistant", "content": "",
            "tool_calls": [{"type": "function", "function": {"name": "count",
                                                             "arguments": {"colour": "red"}}}]}
    tool = {"role": "tool", "name": "count", "content": "5"}
    done = [call, tool, {"role": "assistant", "reasoning_content": "the tool said 5, so 5",
                         "content": "There are \\boxed{5} red shapes."}]
    first_turn_only = [{"role": "assistant", "content": "Let me think: maybe \\boxed{3}."},
                       tool, {"role": "assistant", "content": "It is \\boxed{5}."}]
    unfinished = [call, tool]
    assert trl_reward(["p"] * 3, [done, first_turn_only, unfinished],
                      target=["5", "5", "5"]) == [1.0, 1.0, 0.0]


@pytest.mark.slow
def test_grpo_trainer_with_vrbench_reward_and_callback(tmp_path, sft_model, capsys):
    trl = pytest.importorskip("trl")  # the dev extra has it; the tests above need only vrbench
    out = tmp_path / "grpo"
    args = trl.GRPOConfig(
        output_dir=str(out), max_steps=2, per_device_train_batch_size=4, num_generations=2,
        generation_batch_size=4, max_completion_length=16, learning_rate=1e-4, beta=0.01,
        save_strategy="steps", save_steps=1, logging_steps=1, report_to=[], use_cpu=True,
        bf16=False, seed=0, dataloader_num_workers=0)
    trainer = trl.GRPOTrainer(
        model=sft_model, reward_funcs=[trl_reward], args=args,
        train_dataset=trl_dataset("count_shapes", limit=8),
        processing_class=AutoProcessor.from_pretrained(sft_model),
        callbacks=[VrbenchCallback(CheckpointEval(id_tasks="count_shapes",
                                                  ood_tasks="bar_chart", limit=4,
                                                  max_new_tokens=16), name="grpo-trl")])
    trainer.train()
    rewards = [h["reward"] for h in trainer.state.log_history if "reward" in h]
    assert len(rewards) == 2 and all(0 <= r <= 1 for r in rewards)
    dyn = read_jsonl(out / "dynamics.jsonl")
    assert {(r["step"], r["task"], r["split"]) for r in dyn} == {
        (s, t, sp) for s in (1, 2) for t, sp in (("count_shapes", "validation"),
                                                 ("bar_chart", "test"))}
    assert all(r["trainer"] == "trl" for r in dyn)
    # TRL runs enter the dynamics plot and the leaderboard like vrbench's own
    assert main(["dynamics", str(out), "--out", str(tmp_path / "d.png")]) == 0
    entries = index(out / "evals")
    assert {(e.name, e.step, e.trainer) for e in entries} == {("grpo-trl", 1, "trl"),
                                                              ("grpo-trl", 2, "trl")}
    assert main(["leaderboard", "--root", str(out / "evals"), "--out",
                 str(tmp_path / "board")]) == 0
    assert "| grpo-trl @ 2 |" in (tmp_path / "board" / "README.md").read_text()

"""DAPO's dynamic sampling: groups with one reward are dropped and more prompts sampled."""

import pytest

from harness.backends import Response
from harness.runs.ranks import Dist
from harness.runs.store import read_jsonl
from trainers import rl
from trainers.config import CheckpointEval, OptimSettings


def _groups(*rewards_per_group):
    return [rl.Rollout(None, Response(text="", n_tokens=1, finish_reason="stop"),
                       {"reward": r, "correct": r}, None)
            for group in rewards_per_group for r in group]


def _cfg(**kw):
    return rl.RLConfig(model="m", out="o", prompts_per_step=3, group_size=2, gen_chunk=1,
                       dynamic_sampling=True, **kw)


def test_uninformative_groups_are_replaced_by_more_rounds():
    rounds = {1: _groups((1, 1), (0, 1)), 2: _groups((0, 0), (1, 0), (0, 1))}
    calls = []

    def more(r):
        calls.append(r)
        return rounds[r]
    first = _groups((1, 0), (0, 0), (1, 1))
    out, stats = rl.informative_groups(first, more, _cfg(), Dist())
    assert calls == [1, 2]  # one informative group, then two rounds to reach three
    assert [x.reward["reward"] for x in out] == [1, 0, 0, 1, 1, 0]
    assert stats == {"dynamic_groups_sampled": 8, "dynamic_groups_kept": 3,
                     "dynamic_groups_dropped": 4, "dynamic_rounds": 2.0, "dynamic_capped": 0.0}


def test_the_round_cap_fills_the_step_with_dropped_groups():
    out, stats = rl.informative_groups(_groups((1, 1), (0, 1), (0, 0)),
                                       lambda r: _groups((1, 1), (0, 0), (0, 0)),
                                       _cfg(max_sampling_rounds=1), Dist())
    assert len(out) == 6 and stats["dynamic_capped"] == 1.0
    assert stats["dynamic_groups_kept"] == 1 and stats["dynamic_rounds"] == 1.0


@pytest.mark.slow
def test_a_step_with_dynamic_sampling_trains_on_informative_groups(tmp_path, sft_model):
    out = tmp_path / "ds"
    rl.train(rl.RLConfig(
        model=sft_model, out=str(out), tasks="count_shapes", steps=1, prompts_per_step=4,
        group_size=4, gen_chunk=2, max_new_tokens=24, dynamic_sampling=True,
        max_sampling_rounds=3, optim=OptimSettings(lr=1e-3, warmup=0.0, min_lr_ratio=1.0),
        eval=CheckpointEval(id_tasks="", ood_tasks="")))
    (row,) = read_jsonl(out / "train_log.jsonl")
    rolls = read_jsonl(out / "rollouts.jsonl")
    assert len(rolls) == 16
    groups = [rolls[i:i + 4] for i in range(0, 16, 4)]
    informative = sum(len({r["reward"] for r in g}) > 1 for g in groups)
    assert informative == row["dynamic_groups_kept"]
    assert row["dynamic_groups_sampled"] >= row["dynamic_groups_kept"] + row[
        "dynamic_groups_dropped"]
    assert row["zero_std_group_ratio"] == pytest.approx(1 - informative / 4)

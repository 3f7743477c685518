"""The RL trainer's pieces against small cases computed by hand."""

import math

import pytest
import torch

from harness.runs.ranks import Dist
from trainers import rl
from trainers.optim import lr_factor


def test_grpo_advantages_by_hand():
    r = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    adv = rl.grpo_advantages(r, 4, std_norm=True, eps=1e-6)
    # group 1: mean 0.25, sample std sqrt(0.25) = 0.5
    assert adv[:4].tolist() == pytest.approx([1.5, -0.5, -0.5, -0.5], abs=1e-4)
    assert adv[4:].tolist() == [0.0] * 4  # zero-variance group: no signal
    dr = rl.grpo_advantages(r, 4, std_norm=False)
    assert dr[:4].tolist() == pytest.approx([0.75, -0.25, -0.25, -0.25])


def test_reinforce_pp_returns_and_whitening_by_hand():
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]], dtype=torch.float)
    rewards = torch.tensor([1.0, -0.1])
    ret = rl.reinforce_pp_returns(rewards, mask, None, 0.0, gamma=1.0)
    assert ret.flatten().tolist() == pytest.approx([1, 1, 1, 0, -0.1, -0.1, 0, 0])
    disc = rl.reinforce_pp_returns(rewards, mask, None, 0.0, gamma=0.5)
    assert disc[0].tolist() == pytest.approx([0.25, 0.5, 1.0, 0.0])
    kl = torch.full((2, 4), 0.1)
    with_kl = rl.reinforce_pp_returns(rewards, mask, kl, kl_coef=1.0, gamma=1.0)
    assert with_kl[0].tolist() == pytest.approx([0.7, 0.8, 0.9, 0.0])
    w = rl.whiten(ret, mask, Dist())
    vals = ret[mask.bool()]
    mu, sd = vals.mean(), vals.var(unbiased=False).sqrt()
    assert w[mask.bool()].tolist() == pytest.approx(((vals - mu) / sd).tolist(), abs=1e-5)
    assert w[~mask.bool()].tolist() == [0.0] * 3  # padding stays zero
    shifted = rl.whiten(ret, mask, Dist(), add_mean=True)
    assert shifted[mask.bool()].tolist() == pytest.approx(((vals - mu) / sd + mu).tolist(),
                                                          abs=1e-5)


def test_clipped_loss_by_hand():
    logp = torch.log(torch.tensor([[1.5, 0.5, 1.1]]))
    old = torch.zeros(1, 3)
    adv = torch.tensor([[1.0, -1.0, 1.0]])
    loss, ratio, clipped = rl.clipped_pg_loss(logp, old, adv, 0.2, 0.28)
    # ratio 1.5 with A>0 clips at 1.28; ratio 0.5 with A<0 clips at 0.8 -> -min(-0.5,-0.8)=0.8
    assert loss[0].tolist() == pytest.approx([-1.28, 0.8, -1.1])
    assert clipped[0].tolist() == [1.0, 1.0, 0.0]
    assert ratio[0].tolist() == pytest.approx([1.5, 0.5, 1.1])


def test_k3_kl_and_aggregation_by_hand():
    logp = torch.tensor([[math.log(0.5), math.log(0.25)]])
    ref = torch.tensor([[math.log(0.25), math.log(0.25)]])
    kl = rl.k3_kl(logp, ref)
    assert kl[0].tolist() == pytest.approx([0.5 - math.log(0.5) - 1, 0.0])
    assert (rl.k3_kl(torch.zeros(1, 1), torch.tensor([[-100.0]])) <= math.exp(10)).all()
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0]])
    m = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    assert rl.aggregate_loss(x, m, "token-mean", 4, 2).item() == pytest.approx(10 / 4)
    assert rl.aggregate_loss(x, m, "seq-mean-token-mean", 4, 2).item() == pytest.approx((2 + 4) / 2)


def test_reward_parts():
    cfg = rl.RLConfig(model="m", out="o", format_reward=0.1, min_tokens=4)
    ok = rl.reward("There are 3. \\boxed{3}", 9, "stop", "3", [], cfg)
    assert ok["correct"] == 1.0 and ok["format"] == 1.0 and ok["reward"] == pytest.approx(1.1)
    wrong_unboxed = rl.reward("maybe 4 or so", 9, "stop", "3", [], cfg)
    assert wrong_unboxed["reward"] == 0.0 and wrong_unboxed["format"] == 0.0
    cut = rl.reward("There are 3. \\boxed{3}", 64, "length", "3", [], cfg)
    assert cut["reward"] == -0.1 and cut["penalty"] == 1.0
    short = rl.reward("\\boxed{3}", 3, "stop", "3", [], cfg)
    assert short["reward"] == -0.1
    cjk = rl.reward("答案 \\boxed{3}", 9, "stop", "3", [], cfg)
    assert cjk["language"] == pytest.approx(2 / 12)  # 2 CJK characters of 12
    assert cjk["reward"] == pytest.approx(1.1 - 0.1 * 2 / 12)
    mc = rl.reward("\\boxed{B}", 9, "stop", "B", ["red", "green"], cfg)
    assert mc["correct"] == 1.0


def test_warmup_cosine_schedule():
    assert lr_factor(0, 100, 0.1, 0.1) == pytest.approx(0.1)
    assert lr_factor(9, 100, 0.1, 0.1) == pytest.approx(1.0)
    assert lr_factor(99, 100, 0.1, 0.1) == pytest.approx(0.1, abs=1e-3)
    assert lr_factor(55, 100, 0.1, 0.0) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))

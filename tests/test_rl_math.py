"""The RL trainer's pieces against small cases computed by hand."""

import math
from dataclasses import replace

import pytest
import torch

from harness.runs.ranks import Dist
from harness.scoring import rewards
from trainers import losses, rl
from trainers.losses import Scale
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


def _scale(**kw):
    return Scale(**({"n_tokens": 4, "n_seqs": 2, "max_tokens": 8, "clip_low": 0.2,
                     "clip_high": 0.28} | kw))


def test_clipped_loss_by_hand():
    logp = torch.log(torch.tensor([[1.5, 0.5, 1.1]]))
    old = torch.zeros(1, 3)
    adv = torch.tensor([[1.0, -1.0, 1.0]])
    m = torch.ones(1, 3)
    loss, ratio, clipped = losses.ppo(logp, old, adv, m, _scale(n_tokens=3, n_seqs=1))
    # ratio 1.5 with A>0 clips at 1.28; ratio 0.5 with A<0 clips at 0.8 -> -min(-0.5,-0.8)=0.8
    assert loss.item() == pytest.approx((-1.28 + 0.8 - 1.1) / 3)
    assert clipped[0].tolist() == [1.0, 1.0, 0.0]
    assert ratio[0].tolist() == pytest.approx([1.5, 0.5, 1.1])


def test_every_objective_by_hand():
    # two sequences: 3 tokens and 1 token; ratios 1 (old = new) so no clipping acts
    logp = torch.zeros(2, 3)
    m = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    adv = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0]])
    want = {("ppo", "token-mean"): -(1 + 2 + 3 + 4) / 4,  # DAPO: over the 4 tokens
            # GRPO: each sequence's mean, then over sequences
            ("ppo", "seq-mean-token-mean"): -((1 + 2 + 3) / 3 + 4) / 2,
            # Dr. GRPO: token sums over the limit (8) times the sequences
            ("ppo", "seq-mean-token-sum-norm"): -(1 + 2 + 3 + 4) / (8 * 2),
            # GSPO: the sequence's ratio times its mean advantage, over sequences
            ("gspo", "seq-mean-token-mean"): -((1 + 2 + 3) / 3 + 4) / 2,
            # ... that term on each of its tokens, over the tokens: longer ones weigh more
            ("gspo", "token-mean"): -(3 * (1 + 2 + 3) / 3 + 4) / 4}
    for (name, agg), value in want.items():
        loss, ratio, _ = losses.LOSSES[name](logp, logp, adv, m, _scale(agg=agg))
        assert loss.item() == pytest.approx(value), (name, agg)
        assert (ratio * m).sum().item() == pytest.approx(4.0), name
    # GSPO clips the sequence's ratio: the geometric mean of its tokens' (here e^0.5 for
    # the first sequence, clipped at 1.28 with A > 0)
    new = torch.tensor([[0.5, 0.5, 0.5], [0.0, 0.0, 0.0]])
    loss, ratio, clipped = losses.gspo(new, logp, adv, m, _scale(agg="seq-mean-token-mean"))
    assert ratio[0, 0].item() == pytest.approx(math.exp(0.5))
    assert clipped[:, 0].tolist() == [1.0, 0.0]
    assert loss.item() == pytest.approx(-(1.28 * 2 + 4) / 2)


def test_each_named_objective_is_one_setting_of_the_switches():
    base = rl.RLConfig(model="m", out="o")
    assert losses.describe(base)["named"] is None  # vrbench's default: GRPO's advantage,
    # the token mean
    for name, setting in losses.NAMED.items():
        got = losses.describe(replace(base, **setting))
        assert got["named"] == name and {k: got[k] for k in setting if k in got} == {
            k: v for k, v in setting.items() if k in got}
    assert losses.describe(replace(base, **losses.NAMED["DAPO"] | {"clip_high": 0.2}))[
        "named"] is None


def test_truncated_importance_weights_act_and_are_bounded():
    old = torch.log(torch.tensor([[0.5, 0.5, 0.2]]))
    # the sampler saw the first token as likelier, the second as far less likely (a
    # mismatch of kernels), the third the same
    sampler = torch.log(torch.tensor([[0.6, 0.05, 0.2]]))
    w, capped = losses.truncated_is_weights(old, sampler, cap=2.0)
    assert w[0].tolist() == pytest.approx([0.5 / 0.6, 2.0, 1.0])
    assert capped[0].tolist() == [0.0, 1.0, 0.0]
    m, adv = torch.ones(1, 3), torch.ones(1, 3)
    plain = losses.ppo(old, old, adv, m, _scale(n_tokens=3, n_seqs=1))[0].item()
    weighted = losses.ppo(old, old, adv, m, _scale(n_tokens=3, n_seqs=1), w)[0].item()
    assert weighted == pytest.approx(plain * (0.5 / 0.6 + 2.0 + 1.0) / 3)
    assert abs(weighted) <= 2.0 * abs(plain)  # never more than the cap times the plain loss


def test_k3_kl_and_aggregation_by_hand():
    logp = torch.tensor([[math.log(0.5), math.log(0.25)]])
    ref = torch.tensor([[math.log(0.25), math.log(0.25)]])
    kl = rl.k3_kl(logp, ref)
    assert kl[0].tolist() == pytest.approx([0.5 - math.log(0.5) - 1, 0.0])
    assert (rl.k3_kl(torch.zeros(1, 1), torch.tensor([[-100.0]])) <= math.exp(10)).all()
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0]])
    m = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    assert losses.token_mean(x, m, _scale()).item() == pytest.approx(10 / 4)
    assert losses.seq_mean_token_mean(x, m, _scale()).item() == pytest.approx((2 + 4) / 2)


def test_reward_parts():
    cfg = rl.RLConfig(model="m", out="o", format_reward=0.1, min_tokens=4)

    def reward(text, n, finish, target, choices):
        return rewards.reward(text, target, choices, None, cfg.reward_terms(), n, finish)
    ok = reward("There are 3. \\boxed{3}", 9, "stop", "3", [])
    assert ok["correct"] == 1.0 and ok["format"] == 1.0 and ok["reward"] == pytest.approx(1.1)
    wrong_unboxed = reward("maybe 4 or so", 9, "stop", "3", [])
    assert wrong_unboxed["reward"] == 0.0 and wrong_unboxed["format"] == 0.0
    cut = reward("There are 3. \\boxed{3}", 64, "length", "3", [])
    assert cut["reward"] == -0.1 and cut["penalty"] == 1.0
    short = reward("\\boxed{3}", 3, "stop", "3", [])
    assert short["reward"] == -0.1
    cjk = reward("答案 \\boxed{3}", 9, "stop", "3", [])
    assert cjk["language"] == pytest.approx(2 / 12)  # 2 CJK characters of 12
    assert cjk["reward"] == pytest.approx(1.1 - 0.1 * 2 / 12)
    mc = reward("\\boxed{B}", 9, "stop", "B", ["red", "green"])
    assert mc["correct"] == 1.0
    for empty in ("\\boxed{}", "\\boxed{ }", "<answer> </answer>"):  # no answer, no format
        assert reward(f"It is 3. {empty}", 9, "stop", "3", [])["format"] == 0.0


def test_warmup_cosine_schedule():
    assert lr_factor(0, 100, 0.1, 0.1) == pytest.approx(0.1)
    assert lr_factor(9, 100, 0.1, 0.1) == pytest.approx(1.0)
    assert lr_factor(99, 100, 0.1, 0.1) == pytest.approx(0.1, abs=1e-3)
    assert lr_factor(55, 100, 0.1, 0.0) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))

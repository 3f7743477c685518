"""The RL objective, one switch per idea, each with its paper:

    --advantage grpo | reinforce_pp   the advantage estimator (`trainers/rl.py`): the group
                                      mean as baseline (GRPO, Shao et al., 2024), or token
                                      returns whitened over the batch (Reinforce++, Hu, 2025:
                                      the paper's)
    --grpo-std-norm / --no-...        grpo: divide by the group's std (GRPO) or not (Dr. GRPO,
                                      Liu et al., 2025)
    --loss ppo | gspo                 the ratio the surrogate clips: each token's (PPO,
                                      Schulman et al., 2017) or each response's, the geometric
                                      mean of its tokens' (GSPO, Zheng et al., 2025)
    --loss-agg token-mean | seq-mean-token-mean | seq-mean-token-sum-norm
                                      how the per-token terms become one number: every token
                                      of the mini-batch weighs the same (DAPO, Yu et al., 2025;
                                      verl's token-mean), each response's token mean averaged
                                      over responses (GRPO), or each response's token sum over
                                      the token limit, averaged over responses (Dr. GRPO)
    --clip-low, --clip-high           the clip range (DAPO's clip-higher: --clip-high 0.28)

A named objective is a setting of these, never a switch of its own: GRPO is `--advantage
grpo --loss-agg seq-mean-token-mean`; DAPO's loss `--advantage grpo --loss-agg token-mean
--clip-high 0.28` (with `--dynamic-sampling`); Dr. GRPO `--advantage grpo
--no-grpo-std-norm --loss-agg seq-mean-token-sum-norm`; GSPO `--loss gspo --loss-agg
seq-mean-token-mean` (its narrow range: --clip-low 3e-4 --clip-high 4e-4). `describe`
names the objective a configuration resolves to (`vrbench rl --dry-run` prints it).

Every loss takes the new and old log-probabilities of the response tokens, their advantages
and mask (one micro-batch: whole sequences), and `Scale`, the counts over the whole
mini-batch and all processes, so that the micro-batches' losses add up to the exact mean. It
returns the loss and, per token, the importance ratio and whether clipping acted (for the
logs). `weights`, when given, multiply each token's term: the truncated importance weights
of `--tis-cap` (rollout/trainer mismatch).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # tensors' own methods only: the configuration reads LOSSES without torch
    import torch


@dataclass(frozen=True)
class Scale:
    """What a micro-batch's loss is divided by, and the clip range."""

    n_tokens: float  # response tokens in the mini-batch, over all processes
    n_seqs: float  # sequences in the mini-batch, over all processes
    max_tokens: int  # the response token limit (Dr. GRPO's constant)
    clip_low: float
    clip_high: float
    agg: str = "token-mean"  # --loss-agg


def _clipped(ratio: torch.Tensor, adv: torch.Tensor, s: Scale):
    """-min(r A, clip(r, 1 - eps_low, 1 + eps_high) A) and where the clipped term won."""
    unclipped = ratio * adv
    clipped = ratio.clamp(1 - s.clip_low, 1 + s.clip_high) * adv
    return -unclipped.minimum(clipped), (clipped < unclipped).float()


def token_mean(per_token, mask, s: Scale) -> torch.Tensor:
    """Every token of the mini-batch weighs the same."""
    return (per_token * mask).sum() / s.n_tokens


def seq_mean_token_mean(per_token, mask, s: Scale) -> torch.Tensor:
    """Each sequence's token mean, averaged over sequences."""
    return ((per_token * mask).sum(1) / mask.sum(1).clamp_min(1)).sum() / s.n_seqs


def seq_mean_token_sum_norm(per_token, mask, s: Scale) -> torch.Tensor:
    """Each sequence's token sum divided by one constant, the token limit, averaged over
    sequences: no length bias."""
    return (per_token * mask).sum() / (s.max_tokens * s.n_seqs)


AGGREGATIONS = {"token-mean": token_mean, "seq-mean-token-mean": seq_mean_token_mean,
                "seq-mean-token-sum-norm": seq_mean_token_sum_norm}


def ppo(logp, old_logp, adv, mask, s: Scale, weights=None):
    """The clipped surrogate with each token's own ratio."""
    ratio = (logp - old_logp).exp()
    per_token, clipped = _clipped(ratio, adv if weights is None else adv * weights, s)
    return AGGREGATIONS[s.agg](per_token, mask, s), ratio, clipped


def gspo(logp, old_logp, adv, mask, s: Scale, weights=None):
    """The clipped surrogate with one ratio per sequence, the geometric mean of its tokens'
    ratios, and the sequence's mean advantage; each sequence's term stands on each of its
    tokens, so `seq-mean-token-mean` averages it over sequences (GSPO itself)."""
    n = mask.sum(1).clamp_min(1)
    ratio = (((logp - old_logp) * mask).sum(1) / n).exp()
    seq_adv = (adv * mask).sum(1) / n
    if weights is not None:  # a sequence's weight: the geometric mean of its tokens'
        seq_adv = seq_adv * ((weights.clamp_min(1e-12).log() * mask).sum(1) / n).exp()
    per_seq, clipped = _clipped(ratio, seq_adv, s)
    per_token = per_seq[:, None].expand_as(mask)
    return AGGREGATIONS[s.agg](per_token, mask, s), ratio[:, None].expand_as(mask), \
        clipped[:, None].expand_as(mask)


# name -> (logp, old_logp, adv, mask, Scale, weights) -> (loss, ratio, clipped)
LOSSES: dict[str, Callable] = {"ppo": ppo, "gspo": gspo}

# named objectives, as settings of the switches (what `describe` recognises)
NAMED = {
    "GRPO": {"advantage": "grpo", "grpo_std_norm": True, "loss": "ppo",
             "loss_agg": "seq-mean-token-mean"},
    "DAPO": {"advantage": "grpo", "grpo_std_norm": True, "loss": "ppo",
             "loss_agg": "token-mean", "clip_high": 0.28, "dynamic_sampling": True},
    "Dr. GRPO": {"advantage": "grpo", "grpo_std_norm": False, "loss": "ppo",
                 "loss_agg": "seq-mean-token-sum-norm"},
    "GSPO": {"advantage": "grpo", "loss": "gspo", "loss_agg": "seq-mean-token-mean"},
    "Reinforce++ (the paper's)": {"advantage": "reinforce_pp", "loss": "ppo",
                                  "loss_agg": "token-mean"},
}


def describe(cfg) -> dict:
    """The objective a trainer configuration resolves to: each switch, and the named
    objective it is, where it is one."""
    switches = {k: getattr(cfg, k) for k in ("advantage", "grpo_std_norm", "loss", "loss_agg",
                                             "clip_low", "clip_high", "kl_coef", "tis_cap",
                                             "dynamic_sampling")}
    if cfg.advantage != "grpo":
        del switches["grpo_std_norm"]
    names = [n for n, want in NAMED.items() if all(switches.get(k, getattr(cfg, k)) == v
                                                   for k, v in want.items())]
    return {"named": names[0] if names else None, **switches}


def truncated_is_weights(old_logp: torch.Tensor, behaviour_logp: torch.Tensor, cap: float
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Truncated importance sampling (Yao et al., 2025, "Your efficient RL framework secretly
    brings you off-policy RL training"): the trainer's probability of each sampled token
    over the sampler's, capped at `cap`; and where the cap acted."""
    ratio = (old_logp - behaviour_logp).exp()
    return ratio.clamp(max=cap).detach(), (ratio > cap).float()

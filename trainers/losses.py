"""The policy objectives `vrbench rl --loss NAME` chooses from: one function each.

Every objective takes the new and old log-probabilities of the response tokens, their
advantages and mask (one micro-batch: whole sequences), and `Scale`, the counts over the
whole mini-batch and all processes, so that the micro-batches' losses add up to the exact
mean. It returns the loss and, per token, the importance ratio and whether clipping acted
(for the logs). `weights`, when given, multiply each token's term: the truncated importance
weights of `--tis-cap` (rollout/trainer mismatch). Adding an objective is adding a function
to `LOSSES`.
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
    agg: str = "token-mean"  # the `ppo` objective's aggregation (--loss-agg)


def _clipped(ratio: torch.Tensor, adv: torch.Tensor, s: Scale):
    """-min(r A, clip(r, 1 - eps_low, 1 + eps_high) A) and where the clipped term won."""
    unclipped = ratio * adv
    clipped = ratio.clamp(1 - s.clip_low, 1 + s.clip_high) * adv
    return -unclipped.minimum(clipped), (clipped < unclipped).float()


def _token_terms(logp, old_logp, adv, weights):
    ratio = (logp - old_logp).exp()
    return ratio, (adv if weights is None else adv * weights)


def token_mean(per_token, mask, s: Scale) -> torch.Tensor:
    """Every token of the mini-batch weighs the same."""
    return (per_token * mask).sum() / s.n_tokens


def seq_mean_token_mean(per_token, mask, s: Scale) -> torch.Tensor:
    """Each sequence's token mean, averaged over sequences."""
    return ((per_token * mask).sum(1) / mask.sum(1).clamp_min(1)).sum() / s.n_seqs


AGGREGATIONS = {"token-mean": token_mean, "seq-mean-token-mean": seq_mean_token_mean}


def ppo(logp, old_logp, adv, mask, s: Scale, weights=None):
    """PPO's clipped surrogate (Schulman et al., 2017) per token, aggregated by --loss-agg:
    vrbench's objective before there was a choice, Reinforce++'s (Hu, 2025) with
    --advantage reinforce_pp."""
    ratio, a = _token_terms(logp, old_logp, adv, weights)
    per_token, clipped = _clipped(ratio, a, s)
    return AGGREGATIONS[s.agg](per_token, mask, s), ratio, clipped


def grpo(logp, old_logp, adv, mask, s: Scale, weights=None):
    """GRPO (Shao et al., 2024, DeepSeekMath): the clipped surrogate per token, averaged over
    each sequence's tokens, then over sequences."""
    ratio, a = _token_terms(logp, old_logp, adv, weights)
    per_token, clipped = _clipped(ratio, a, s)
    return seq_mean_token_mean(per_token, mask, s), ratio, clipped


def dapo(logp, old_logp, adv, mask, s: Scale, weights=None):
    """DAPO (Yu et al., 2025): the clipped surrogate with clip-higher (--clip-high above
    --clip-low, 0.28 in the paper), averaged over all tokens, so long responses weigh by
    their length."""
    ratio, a = _token_terms(logp, old_logp, adv, weights)
    per_token, clipped = _clipped(ratio, a, s)
    return token_mean(per_token, mask, s), ratio, clipped


def dr_grpo(logp, old_logp, adv, mask, s: Scale, weights=None):
    """Dr. GRPO (Liu et al., 2025, "Understanding R1-Zero-Like Training"): each sequence's
    token sum divided by one constant, the token limit, then averaged over sequences: no
    length bias (pair it with --no-grpo-std-norm, their other fix)."""
    ratio, a = _token_terms(logp, old_logp, adv, weights)
    per_token, clipped = _clipped(ratio, a, s)
    return (per_token * mask).sum() / (s.max_tokens * s.n_seqs), ratio, clipped


def gspo(logp, old_logp, adv, mask, s: Scale, weights=None):
    """GSPO (Zheng et al., 2025): one importance ratio per sequence, the geometric mean of
    its tokens' ratios, clipped (the paper's range is narrow: --clip-low 3e-4
    --clip-high 4e-4), with the sequence's advantage; averaged over sequences."""
    n = mask.sum(1).clamp_min(1)
    ratio = (((logp - old_logp) * mask).sum(1) / n).exp()
    seq_adv = (adv * mask).sum(1) / n
    if weights is not None:  # a sequence's weight: the geometric mean of its tokens'
        seq_adv = seq_adv * ((weights.clamp_min(1e-12).log() * mask).sum(1) / n).exp()
    per_seq, clipped = _clipped(ratio, seq_adv, s)
    return per_seq.sum() / s.n_seqs, ratio[:, None].expand_as(mask), \
        clipped[:, None].expand_as(mask)


# name -> (logp, old_logp, adv, mask, Scale, weights) -> (loss, ratio, clipped)
LOSSES: dict[str, Callable] = {"ppo": ppo, "grpo": grpo, "dapo": dapo, "dr_grpo": dr_grpo,
                                "gspo": gspo}


def truncated_is_weights(old_logp: torch.Tensor, behaviour_logp: torch.Tensor, cap: float
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Truncated importance sampling (Yao et al., 2025, "Your efficient RL framework secretly
    brings you off-policy RL training"): the trainer's probability of each sampled token
    over the sampler's, capped at `cap`; and where the cap acted."""
    ratio = (old_logp - behaviour_logp).exp()
    return ratio.clamp(max=cap).detach(), (ratio > cap).float()

"""The distribution a token is drawn from, defined once: `Sampler`.

The continuous decoder, the static `generate` path (as its one logits processor), the
log-probabilities a backend records for each sampled token, and the trainers' and the KL
measurement's log-probabilities all compute it here, so they cannot drift apart. In order,
as transformers applies them: suppressed tokens (the vision tokens a model must never
emit) at -inf, the repetition penalty over each row's real tokens (never its padding), then,
when sampling, the temperature, top-k and top-p (nucleus) filters. Greedy decoding
(temperature 0) takes the largest score after suppression and the penalty.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from harness.backends import GenerationConfig


@dataclass(frozen=True)
class Sampler:
    temperature: float = 1.0  # 0: greedy
    top_k: int = 0  # 0: off
    top_p: float = 1.0  # 1: off
    repetition_penalty: float = 1.0  # 1: off
    suppress: tuple[int, ...] = ()  # token ids never drawn

    @classmethod
    def of(cls, config: GenerationConfig, suppress=()) -> Sampler:
        return cls(config.temperature, config.top_k, config.top_p, config.repetition_penalty,
                   tuple(suppress))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def scores(self, logits: torch.Tensor, ids: torch.Tensor | None = None,
               mask: torch.Tensor | None = None) -> torch.Tensor:
        """The scores (float32, -inf where a token cannot be drawn) of `logits` (..., vocab).
        `ids` (rows, length) are the rows' tokens so far and `mask` marks the real ones: the
        repetition penalty needs them."""
        scores = logits.float().clone()
        if self.suppress:
            scores[..., list(self.suppress)] = float("-inf")
        if self.repetition_penalty != 1.0:
            if ids is None:
                raise ValueError("the repetition penalty needs the rows' tokens")
            real = torch.ones_like(ids) if mask is None else mask.to(ids.dtype)
            seen = torch.zeros(scores.shape, dtype=ids.dtype, device=scores.device
                               ).scatter_reduce(-1, ids, real, "amax").bool()
            p = self.repetition_penalty
            scores = torch.where(seen, torch.where(scores < 0, scores * p, scores / p), scores)
        if self.greedy:
            return scores
        if self.temperature != 1.0:
            scores = scores / self.temperature
        if self.top_k:
            kth = torch.topk(scores, min(self.top_k, scores.shape[-1])).values[..., -1:]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        if self.top_p < 1.0:
            ordered, order = torch.sort(scores, descending=False)
            drop = ordered.softmax(dim=-1).cumsum(dim=-1) <= 1 - self.top_p
            drop[..., -1] = False  # the most likely token always stays
            scores = scores.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
        return scores

    def logprobs(self, logits: torch.Tensor, ids: torch.Tensor | None = None,
                 mask: torch.Tensor | None = None) -> torch.Tensor:
        """log-probabilities of every token under this distribution."""
        return torch.log_softmax(self.scores(logits, ids, mask), dim=-1)

    @staticmethod
    def draw(scores: torch.Tensor, uniforms: torch.Tensor | None) -> torch.Tensor:
        """One token a row: read off the cumulative distribution at the row's uniform in
        [0, 1) (so a row's token depends on its own uniform only), or the largest score
        when greedy (`uniforms` None)."""
        if uniforms is None:
            return scores.argmax(dim=-1)
        cdf = torch.softmax(scores, dim=-1).cumsum(dim=-1)
        u = uniforms[:, None] * cdf[:, -1:]
        return torch.searchsorted(cdf, u, right=True)[:, 0].clamp_max(cdf.shape[1] - 1)

"""Log-probabilities of many completions of few prompts, each prompt run once.

An RL step scores `group_size` responses to each prompt, twice (the reference model, then
the policy with gradients). Run as independent sequences, every response repeats its
prompt's image and text tokens: most of the tokens of a step. Here the distinct prompts are
run once, left-padded, into a key/value cache; each row's cache is its prompt's, and the
completions are run together on top of it, each attending to its own prompt and its own
earlier tokens, at the positions it would have had as one sequence. Gradients flow back
through the shared cache, so a prompt's gradient is the sum over its responses, as in the
one-sequence-a-row pass (`tests/test_prefix.py` checks both against it on each
architecture).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.backends.continuous import Layout, new_cache
from harness.backends.sampling import Sampler
from harness.likelihood.logprobs import (
    IMAGE_KEY,
    PLAIN,
    chosen_and_entropy,
    model_inputs,
    select_rows,
)


def supported(model) -> bool:
    """Whether the model can be driven this way (a plain dynamic cache, `sdpa` attention);
    others take the one-sequence-a-row pass."""
    return new_cache(_unwrapped(model), roomy=False) is not None


def _unwrapped(model):
    return getattr(model, "module", model)  # DDP


def prompt_slots(batch: dict) -> tuple[list[int], list[int]]:
    """(each row's prompt number, the first row of each prompt): rows share a prompt when
    their prompt tokens and their image (`IMAGE_KEY`) are the same."""
    ids, mask, comp = batch["input_ids"], batch["attention_mask"], batch["completion_mask"]
    images = batch.get(IMAGE_KEY)
    slots: dict[tuple, int] = {}
    slot, heads = [], []
    for i in range(len(ids)):
        prompt = ids[i][(mask[i] == 1) & (comp[i] == 0)]
        key = (-1 if images is None else int(images[i]), tuple(prompt.tolist()))
        if key not in slots:
            slots[key] = len(slots)
            heads.append(i)
        slot.append(slots[key])
    return slot, heads


def token_logprobs(model, batch: dict, sampler: Sampler = PLAIN
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """What `harness.likelihood.logprobs.token_logprobs` returns for a right-padded batch of
    prompt + completion rows ((B, L-1) log-probs and entropies, entry t about token t+1; zero
    off the completions), with each distinct prompt run once."""
    device = next(model.parameters()).device
    slot, heads = prompt_slots(batch)
    mask, comp = batch["attention_mask"], batch["completion_mask"]
    n_prompt = ((mask == 1) & (comp == 0)).sum(1)
    n_comp = comp.sum(1)
    width = int(n_prompt.max())

    # the distinct prompts, left-padded, and their images
    heads_batch = select_rows(batch, heads)
    enc = {"input_ids": _left(batch["input_ids"], heads, n_prompt, width, 0),
           "attention_mask": _left(mask, heads, n_prompt, width, 0)}
    if "mm_token_type_ids" in batch:
        enc["mm_token_type_ids"] = _left(batch["mm_token_type_ids"], heads, n_prompt, width, 0)
    enc |= {k: v for k, v in heads_batch.items()
            if k not in enc and k not in ("completion_mask", "mm_token_type_ids")}
    layout, cache = Layout.of(model), new_cache(_unwrapped(model), roomy=False)
    out, nxt = layout.prompt_forward(model, model_inputs(enc, device), cache, logits_to_keep=1)
    index = torch.tensor(slot, device=device)
    logits = out.logits[:, -1:][index]  # each row's first completion token

    # the completions (all but their last token) on top of their prompts' cache
    n = int(n_comp.max()) - 1
    if n > 0:
        for layer in cache.layers:
            layer.keys, layer.values = layer.keys[index], layer.values[index]
        starts = n_prompt[:, None] + torch.arange(n)
        inputs = batch["input_ids"].gather(1, starts.clamp_max(batch["input_ids"].shape[1] - 1))
        valid = torch.arange(n)[None] < (n_comp - 1)[:, None]
        inputs = inputs.masked_fill(~valid, 0).to(device)
        causal = torch.ones(n, n, dtype=torch.bool).tril()
        attend = torch.cat([enc["attention_mask"][slot].bool()[:, None].expand(-1, n, -1),
                            causal[None] & valid[:, None]], dim=2)[:, None].to(device)
        more = model(input_ids=inputs, attention_mask=attend,
                     position_ids=layout.positions(nxt[index], n), use_cache=True,
                     **{layout.cache_arg: cache})
        logits = torch.cat([logits, more.logits], dim=1)
    logp = sampler.logprobs(logits)  # (B, K, V): completion token k
    k = logp.shape[1]
    targets = batch["input_ids"].gather(
        1, (n_prompt[:, None] + torch.arange(k)).clamp_max(batch["input_ids"].shape[1] - 1))
    chosen, entropy = chosen_and_entropy(logp, targets, sampler.suppress)
    # into the one-sequence-a-row layout: completion token k of row i is entry P_i - 1 + k
    keep = (torch.arange(k)[None] < n_comp[:, None]).to(device)
    rows = torch.arange(len(slot), device=device)[:, None].expand(-1, k)[keep]
    cols = (n_prompt[:, None] - 1 + torch.arange(k)).to(device)[keep]
    shape = (len(slot), batch["input_ids"].shape[1] - 1)
    return (chosen.new_zeros(shape).index_put((rows, cols), chosen[keep]),
            entropy.new_zeros(shape).index_put((rows, cols), entropy[keep]))


def _left(x: torch.Tensor, rows: list[int], lengths: torch.Tensor, width: int, value: int
          ) -> torch.Tensor:
    """The first `lengths[r]` entries of the rows `rows` of `x`, left-padded to `width`."""
    return torch.stack([F.pad(x[r, :int(lengths[r])], (width - int(lengths[r]), 0), value=value)
                        for r in rows])

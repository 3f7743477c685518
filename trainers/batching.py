"""Turning (prompt, images, completion tokens) into model inputs, for SFT and RL alike.

Each prompt is encoded by the checkpoint's own processor (so image tokens are expanded
exactly as at evaluation), the completion's token ids are appended, and the batch is
right-padded. Position ids are left to the model, which computes Qwen2-VL's 3-D M-RoPE
positions from the image grid and the attention mask; passing 1-D positions would silently
break them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from harness.prompting import chat_text


@dataclass
class Encoded:
    """One prompt as the processor encodes it."""

    input_ids: torch.Tensor  # (L,)
    mm_token_type_ids: torch.Tensor | None  # (L,)
    vision: dict[str, torch.Tensor]  # what the processor made of the images: pixel_values,
    # and per architecture image_grid_thw (Qwen2-VL), pixel_attention_mask (Idefics3)...


TEXT_KEYS = ("input_ids", "attention_mask", "mm_token_type_ids")


def encode_prompt(processor, prompt: str, images: list) -> Encoded:
    enc = processor(text=[chat_text(processor, prompt, len(images))], images=images or None,
                    return_tensors="pt")
    mm = enc.get("mm_token_type_ids")
    return Encoded(enc["input_ids"][0], None if mm is None else mm[0],
                   {k: v for k, v in enc.items() if k not in TEXT_KEYS})


def collate(prompts: list[Encoded], completions: list[list[int]], pad_id: int) -> dict:
    """Model inputs for prompt + completion sequences, plus `completion_mask` (1 on the
    completion's tokens, aligned with `input_ids`). Vision tensors are concatenated along
    their first axis, as each architecture's processor batches them."""
    seqs, masks, mm_types = [], [], []
    for p, c in zip(prompts, completions, strict=True):
        comp = torch.tensor(c, dtype=torch.long)
        seqs.append(torch.cat([p.input_ids, comp]))
        masks.append(torch.cat([torch.zeros_like(p.input_ids), torch.ones_like(comp)]))
        if p.mm_token_type_ids is not None:
            mm_types.append(torch.cat([p.mm_token_type_ids, torch.zeros_like(comp)]))
    n = max(len(s) for s in seqs)

    def pad(xs: list[torch.Tensor], value: int) -> torch.Tensor:
        return torch.stack([F.pad(x, (0, n - len(x)), value=value) for x in xs])

    batch = {
        "input_ids": pad(seqs, pad_id),
        "attention_mask": pad([torch.ones_like(s) for s in seqs], 0),
        "completion_mask": pad(masks, 0),
    }
    if mm_types:
        batch["mm_token_type_ids"] = pad(mm_types, 0)
    for key in dict.fromkeys(k for p in prompts for k in p.vision):
        batch[key] = torch.cat([p.vision[key] for p in prompts if key in p.vision])
    return batch


def model_inputs(batch: dict, device) -> dict:
    """The tensors the model's forward takes, on `device`."""
    return {k: v.to(device) for k, v in batch.items() if k != "completion_mask"}


def token_logprobs(model, batch: dict, temperature: float = 1.0
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """(log-probs, entropies) of each next token under `model`, shape (B, L-1): entry t is
    about token t+1. Pair with `batch["completion_mask"][:, 1:]`."""
    device = next(model.parameters()).device
    logits = model(**model_inputs(batch, device)).logits[:, :-1].float()
    if temperature != 1.0:
        logits = logits / temperature
    logp = torch.log_softmax(logits, dim=-1)
    targets = batch["input_ids"][:, 1:].to(device)
    chosen = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    with torch.no_grad():
        entropy = -(logp.exp() * logp).sum(-1)
    return chosen, entropy

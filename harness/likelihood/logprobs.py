"""Turning (prompt, images, completion tokens) into model inputs, for SFT and RL alike.

Each prompt is encoded by the checkpoint's own processor (so image tokens are expanded
exactly as at evaluation), the completion's token ids are appended, and the batch is
right-padded. Position ids are left to the model, which computes Qwen2-VL's 3-D M-RoPE
positions from the image grid and the attention mask; passing 1-D positions would silently
break them.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from harness.backends.chat import chat_text
from harness.backends.sampling import Sampler

PLAIN = Sampler()  # the model's own distribution: temperature 1, nothing suppressed


@dataclass
class Encoded:
    """One prompt as the processor encodes it."""

    input_ids: torch.Tensor  # (L,)
    mm_token_type_ids: torch.Tensor | None  # (L,)
    vision: dict[str, torch.Tensor]  # what the processor made of the images: pixel_values,
    # and per architecture image_grid_thw (Qwen2-VL), pixel_attention_mask (Idefics3)...


TEXT_KEYS = ("input_ids", "attention_mask", "mm_token_type_ids")
SEQUENCE_KEYS = (*TEXT_KEYS, "completion_mask")  # (batch, length) tensors
IMAGE_KEY = "image_key"  # per row: the first row with the same prompt (and image)


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
    if any(p.vision for p in prompts):  # rows sharing one prompt (a group) share its image
        first: dict[int, int] = {}
        batch[IMAGE_KEY] = torch.tensor([first.setdefault(id(p), i)
                                         for i, p in enumerate(prompts)])
    return batch


def trim(batch: dict) -> dict:
    """The batch cut to its longest sequence (rows taken from a larger batch keep its
    padding otherwise)."""
    n = int(batch["attention_mask"].sum(1).max())
    return {k: v[:, :n] if k in SEQUENCE_KEYS else v for k, v in batch.items()}


def select_rows(batch: dict, rows) -> dict:
    """The sub-batch of some sequences, with their images (one image a sequence in the
    trainers' batches)."""
    idx = torch.arange(batch["input_ids"].shape[0])[rows]
    out = {k: v[idx] for k, v in batch.items() if k != "pixel_values"}
    if "image_grid_thw" in batch:  # Qwen2-VL: patches of all images in one flat tensor
        patches = batch["image_grid_thw"].prod(dim=1)
        starts = torch.cat([torch.zeros(1, dtype=torch.long), patches.cumsum(0)])
        out["pixel_values"] = torch.cat([batch["pixel_values"][starts[i]:starts[i + 1]]
                                         for i in idx.tolist()])
    elif "pixel_values" in batch:  # one entry an image
        out["pixel_values"] = batch["pixel_values"][idx]
    return out


@contextlib.contextmanager
def shared_images(model, keys: torch.Tensor | None, grid: torch.Tensor | None):
    """Run the vision tower once per distinct image. `keys` labels each image (one a row):
    equal keys, equal images (the responses of one prompt, an RL group). Qwen2-VL's tower
    encodes each image on its own, so the features of one image serve all its rows, and
    their gradients add up as if computed one by one. Other architectures run as usual."""
    inner = getattr(getattr(model, "module", model), "model", None)
    if keys is None or grid is None or not hasattr(inner, "get_image_features") or len(
            grid) != len(keys) or len(set(keys.tolist())) == len(keys):
        yield
        return
    original = inner.get_image_features
    first: dict[int, int] = {}  # key -> the first row that carries it
    for row, key in enumerate(keys.tolist()):
        first.setdefault(key, row)
    slot = {key: i for i, key in enumerate(first)}
    rows = list(first.values())

    def features(pixel_values, image_grid_thw=None, **kwargs):
        parts = torch.split(pixel_values, image_grid_thw.prod(-1).tolist())
        out = original(torch.cat([parts[r] for r in rows]), image_grid_thw[rows], **kwargs)
        feats = out.pooler_output
        out.pooler_output = tuple(feats[slot[key]] for key in keys.tolist())
        return out

    inner.get_image_features = features
    try:
        yield
    finally:
        del inner.get_image_features  # back to the class's method


def model_inputs(batch: dict, device) -> dict:
    """The tensors the model's forward takes, on `device`."""
    return {k: v.to(device) for k, v in batch.items() if k not in ("completion_mask", IMAGE_KEY)}


def next_token_logprobs(model, batch: dict, sampler: Sampler = PLAIN) -> torch.Tensor:
    """Log-probabilities over the vocabulary of each next token under `model`, shape
    (B, K, V): the last K of the L-1 positions, K covering every completion token (all
    positions for a model that cannot keep only the last logits, or without a
    `completion_mask`), under `sampler`'s distribution (its temperature and suppressed
    tokens: the one the tokens were drawn from; `PLAIN` is the model's own)."""
    device = next(model.parameters()).device
    width = batch["input_ids"].shape[1] - 1
    # logits of the completion positions only (the vocabulary projection of every prompt
    # position is most of the memory at a real model's vocabulary size)
    keep = width - int(batch["completion_mask"].float().argmax(1).min()) + 1 \
        if "completion_mask" in batch and _keeps_logits(model) else 0
    kwargs = {"logits_to_keep": keep + 1} if 0 < keep < width else {}
    with shared_images(model, batch.get(IMAGE_KEY), batch.get("image_grid_thw")):
        logits = model(**model_inputs(batch, device), **kwargs).logits[:, :-1]
    return sampler.logprobs(logits)


def token_logprobs(model, batch: dict, sampler: Sampler = PLAIN
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """(log-probs, entropies) of each next token under `model`, shape (B, L-1): entry t is
    about token t+1. Pair with `batch["completion_mask"][:, 1:]`. `sampler` as in
    `next_token_logprobs`."""
    logp = next_token_logprobs(model, batch, sampler)
    width = batch["input_ids"].shape[1] - 1
    chosen, entropy = chosen_and_entropy(
        logp, batch["input_ids"][:, width - logp.shape[1] + 1:], sampler.suppress)
    pad = width - chosen.shape[1]  # positions left out: prompt tokens, never scored
    return F.pad(chosen, (pad, 0)), F.pad(entropy, (pad, 0))


def chosen_and_entropy(logp: torch.Tensor, targets: torch.Tensor,
                       suppress: tuple[int, ...] = ()) -> tuple[torch.Tensor, torch.Tensor]:
    """From (B, K, V) log-probs: the `targets`' (B, K) and the entropies (no gradient)."""
    chosen = logp.gather(-1, targets.to(logp.device).unsqueeze(-1)).squeeze(-1)
    if suppress:  # a suppressed token in the prompt (an image pad) is never scored: not -inf
        chosen = chosen.masked_fill(chosen.isinf(), 0.0)
    with torch.no_grad():
        entropy = -(logp.exp() * logp.masked_fill(logp.isinf(), 0)).sum(-1)
    return chosen, entropy


@functools.cache
def _keeps_logits_type(cls) -> bool:
    return "logits_to_keep" in inspect.signature(cls.forward).parameters


def _keeps_logits(model) -> bool:
    """Whether the model's forward can compute the logits of the last positions only."""
    return _keeps_logits_type(type(getattr(model, "module", model)))

"""Memory per process, estimated before a model is loaded: what a run holds on each GPU
(weights, gradients, AdamW state, the RL reference model and rollout copy, the generation
cache), so that a run that cannot fit says so in one sentence instead of failing at its
first step.

The weights, gradients and optimizer state are exact (parameter counts from the model's
config on the meta device, times the bytes of `--param-dtype`; AdamW keeps two moments per
trained parameter; FSDP divides all three by the processes). Activations are not counted,
and the generation cache assumes `PROMPT_TOKENS` prompt tokens per sequence.
"""

from __future__ import annotations

import torch

from trainers.config import DTYPE_BYTES, TrainConfig
from trainers.parts import PARTS, parameter_parts
from vrbench.errors import VrbenchError

PROMPT_TOKENS = 1024  # an image and its question, for the generation cache
HEADROOM = 0.9  # of a GPU's memory the estimate may take (activations need the rest)
GB = 1024 ** 3


def parameter_counts(model_config) -> dict[str, int]:
    """Parameters per part of the model a config describes, counted without allocating."""
    from transformers import AutoModelForImageTextToText
    with torch.device("meta"):
        model = AutoModelForImageTextToText.from_config(model_config)
    counts = dict.fromkeys(PARTS, 0)
    part = parameter_parts(model)
    for name, p in model.named_parameters():
        counts[part[name]] += p.numel()
    return counts


def estimate(cfg: TrainConfig, trainer: str, world: int, model_config) -> dict[str, int]:
    """Bytes per process of each thing the run holds (see the module's docstring)."""
    counts = parameter_counts(model_config)
    total, trained = sum(counts.values()), sum(counts[p] for p in cfg.optim.train)
    if cfg.lora.r:
        trained = 0  # the adapters only: small beside the model, left out of the estimate
    size = DTYPE_BYTES[cfg.param_dtype]
    shards = world if cfg.fsdp and world > 1 else 1
    out = {"weights": total * size // shards, "gradients": trained * size // shards,
           "optimizer": 2 * trained * size // shards}
    if trainer == "rl":
        copies = DTYPE_BYTES[cfg.copies_dtype]
        if cfg.needs_reference():
            out["reference model"] = total * copies
        if shards > 1:
            out["rollout copy"] = total * copies
            size = copies  # the generation cache is the rollout copy's
        text = model_config.get_text_config()
        heads = getattr(text, "num_key_value_heads", None) or text.num_attention_heads
        head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
        sequences = cfg.gen_chunk * cfg.group_size
        out["generation cache"] = (sequences * (PROMPT_TOKENS + cfg.max_new_tokens)
                                   * text.num_hidden_layers * 2 * heads * head_dim * size)
    return out


def size(n: int) -> str:
    """Bytes in GB, or MB below one GB: "50.1 GB", "3.2 MB"."""
    return f"{n / GB:.1f} GB" if n >= GB else f"{n / 2 ** 20:.1f} MB"


def describe(parts: dict[str, int]) -> str:
    """ "about 50.1 GB per process: weights 4.4 GB, gradients 4.1 GB, ..." """
    return (f"about {size(sum(parts.values()))} per process: "
            + ", ".join(f"{k} {size(v)}" for k, v in parts.items()))


def capacity(device: torch.device) -> int | None:
    """The memory of the GPU a process trains on (None on the CPU)."""
    if device.type != "cuda":
        return None
    return torch.cuda.get_device_properties(device).total_memory


def check_fits(parts: dict[str, int], available: int | None, world: int, fsdp: bool) -> None:
    """One sentence, naming the fix, when the estimate exceeds the GPU's memory."""
    if available is None or sum(parts.values()) <= HEADROOM * available:
        return
    fix = ("shard over more GPUs" if fsdp and world > 1 else
           "shard it with --fsdp under torchrun" if not fsdp else "run it on more GPUs")
    raise VrbenchError(f"the run needs {describe(parts)}, more than {HEADROOM:.0%} of the "
                       f"{size(available)} each GPU here has; {fix}, train fewer parts "
                       "(--train language) or use --param-dtype bfloat16.")

"""LoRA through peft (`--lora-r R`, the `lora` extra): low-rank adapters on the linear layers
of the chosen parts (the language model by default); every other weight is frozen.

A checkpoint holds the adapter (`adapter/`, peft's format) and, beside it, the weights with
the adapter merged in, so `vrbench eval`, `vrbench kl` and every `from_pretrained` load it
like any other checkpoint.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import ClassVar

from trainers.parts import PARTS, check_parts, parameter_parts
from vrbench.errors import VrbenchError

ADAPTER_DIR = "adapter"
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class LoraSettings:
    FLAG_PREFIX: ClassVar[str] = "lora_"
    r: int = 0  # LoRA rank (0: off, every weight of the trained parts is trained)
    alpha: float = 0.0  # the adapters' scale is alpha / r (0: 2 r)
    dropout: float = 0.0  # dropout on the adapters' input
    targets: tuple[str, ...] = TARGETS  # the linear layers that get adapters, by last name
    parts: tuple[str, ...] = ("language",)  # the parts whose linear layers get adapters

    def check(self) -> None:
        check_parts(self.parts)
        if self.r < 0 or self.alpha < 0 or not 0 <= self.dropout < 1:
            raise VrbenchError("--lora-r and --lora-alpha must be 0 or more, --lora-dropout "
                               "in [0, 1).")


def target_modules(model, settings: LoraSettings) -> list[str]:
    """The names of the linear layers that get adapters: a target's last name, in a chosen
    part."""
    import torch
    part_of = parameter_parts(model)
    names = [name for name, m in model.named_modules()
             if isinstance(m, torch.nn.Linear) and name.rsplit(".", 1)[-1] in settings.targets
             and part_of.get(f"{name}.weight") in settings.parts]
    if not names:
        raise VrbenchError(f"no linear layer named {', '.join(settings.targets)} in the "
                           f"{' or '.join(settings.parts)} of {type(model).__name__}; set "
                           "--lora-targets.")
    return names


def attach(model, settings: LoraSettings):
    """The model with adapters on its target layers; only the adapters train. Returns the
    peft model and each part's parameter counts, in all and trained."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as e:
        raise VrbenchError(f"--lora-r needs peft (pip install -e '.[lora]'): {e}.") from e
    config = LoraConfig(r=settings.r, lora_alpha=settings.alpha or 2 * settings.r,
                        lora_dropout=settings.dropout,
                        target_modules=target_modules(model, settings), bias="none")
    base_part = parameter_parts(model)  # before peft renames the layers it wraps
    for p in model.parameters():
        p.requires_grad_(False)
    peft_model = get_peft_model(model, config)
    total, trained = dict.fromkeys(PARTS, 0), dict.fromkeys(PARTS, 0)
    for name, p in peft_model.named_parameters():
        base = name.removeprefix("base_model.model.").replace(".base_layer", "")
        owner = base.split(".lora_")[0] + ".weight" if ".lora_" in base else base
        part = base_part.get(owner, "connector")
        total[part] += p.numel()
        trained[part] += p.numel() if p.requires_grad else 0
    return peft_model, {"total": total, "trained": trained}


def is_adapted(model) -> bool:
    return hasattr(model, "merge_and_unload") and hasattr(model, "peft_config")


def merged(model):
    """A copy of an adapted model with its adapters merged into the weights (the model
    itself keeps training)."""
    return copy.deepcopy(model).merge_and_unload()

"""The trainable parts of a vision-language model (vision tower, connector, language model)
and freezing what is not trained."""

from __future__ import annotations

import torch

from tasks.errors import VrbenchError

PARTS = ("vision", "connector", "language")

def part_of(param_name: str) -> str:
    if ".visual.merger." in f".{param_name}":
        return "connector"
    if ".visual." in f".{param_name}":
        return "vision"
    return "language"

def check_parts(parts: tuple[str, ...]) -> None:
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise VrbenchError(f"unknown trainable part(s) {sorted(unknown)}; choose from {PARTS}.")

def set_trainable(model: torch.nn.Module, parts: tuple[str, ...]) -> dict[str, int]:
    """Freeze what is not trained; returns trainable parameter counts per part."""
    check_parts(parts)
    counts = dict.fromkeys(PARTS, 0)
    for name, p in model.named_parameters():
        part = part_of(name)
        p.requires_grad_(part in parts)
        if part in parts:
            counts[part] += p.numel()
    return counts

"""AdamW with decay on matrices only, a vision learning-rate multiplier, linear warm-up
then cosine decay, and gradient clipping."""

from __future__ import annotations

import math

import torch

from trainers.config import OptimSettings
from trainers.parts import parameter_parts


def lr_factor(step: int, total: int, warmup: float, min_ratio: float) -> float:
    """Linear warm-up over `warmup` of the steps, then cosine down to `min_ratio`."""
    w = max(1, int(total * warmup)) if warmup > 0 else 0
    if step < w:
        return (step + 1) / w
    progress = (step - w) / max(1, total - w)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(model: torch.nn.Module, o: OptimSettings, total_steps: int):
    groups: dict[tuple[bool, bool], list] = {}
    part = parameter_parts(model)
    for name, p in model.named_parameters():
        if p.requires_grad:
            key = (p.ndim >= 2, part[name] == "vision")
            groups.setdefault(key, []).append(p)
    params = [{"params": ps, "weight_decay": o.weight_decay if decay else 0.0,
               "lr": o.lr * (o.vision_lr_mult if vision else 1.0)}
              for (decay, vision), ps in sorted(groups.items())]
    opt = torch.optim.AdamW(params, lr=o.lr, betas=tuple(o.betas), eps=o.eps)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, total_steps, o.warmup, o.min_lr_ratio))
    return opt, sched


def clip_and_norm(model: torch.nn.Module, max_norm: float) -> float:
    params = [p for p in model.parameters() if p.grad is not None]
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm if max_norm > 0 else float("inf"))
    return float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)  # FSDP: DTensor

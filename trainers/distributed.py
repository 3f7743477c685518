"""Running under torchrun: reductions and FSDP2 (parameters, gradients and optimizer state
sharded over the processes). The process group and `Dist` are the harness's
(`harness.runs.ranks`): evaluation and training join it the same way."""

from __future__ import annotations

import torch
import torch.distributed as dist

from harness.runs.ranks import Dist


def all_reduce_sum(x: torch.Tensor, d: Dist) -> torch.Tensor:
    if d.world > 1:
        dist.all_reduce(x, op=dist.ReduceOp.SUM)
    return x


def barrier(d: Dist) -> None:
    if d.world > 1:
        dist.barrier()


def shard(model: torch.nn.Module) -> None:
    """FSDP2 over the processes: each transformer block (the model's `_no_split_modules`,
    for Qwen2-VL its decoder layers and vision blocks) is a unit, then the rest."""
    from torch.distributed.fsdp import fully_shard
    blocks = tuple(getattr(model, "_no_split_modules", None) or ())
    for m in model.modules():
        if type(m).__name__ in blocks:
            fully_shard(m)
    fully_shard(model)


def copy_weights(src: torch.nn.Module, dst: torch.nn.Module) -> None:
    """Load a sharded (FSDP) model's full weights into an unsharded copy on every process:
    the RL rollout model, as the hybrid engines of verl and EasyR1 sync their actor into the
    generation engine each step."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
    dst.load_state_dict(get_model_state_dict(src, options=StateDictOptions(
        full_state_dict=True)))


def _full_options():
    from torch.distributed.checkpoint.state_dict import StateDictOptions
    return StateDictOptions(full_state_dict=True, cpu_offload=True)


def gather_full_state(model: torch.nn.Module, opt) -> tuple[dict, dict]:
    """Full (unsharded) model and optimizer state on the main process; every process must
    call this."""
    from torch.distributed.checkpoint.state_dict import (
        get_model_state_dict,
        get_optimizer_state_dict,
    )
    weights = get_model_state_dict(model, options=_full_options())
    for tied in getattr(model, "all_tied_weights_keys", None) or {}:
        weights.pop(tied, None)  # stored once, as save_pretrained does for a whole model
    return weights, get_optimizer_state_dict(model, opt, options=_full_options())


def load_full_optimizer_state(model: torch.nn.Module, opt, state: dict) -> None:
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict
    set_optimizer_state_dict(model, opt, optim_state_dict=state,
                             options=StateDictOptions(full_state_dict=True))

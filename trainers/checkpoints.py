"""Checkpoints that load in transformers (`from_pretrained`) and resume exactly: weights,
processor, optimizer, schedule and RNG state, written atomically."""

from __future__ import annotations

import json
import pickle
import random
from pathlib import Path

import torch

from harness.runs.provenance import CHECKPOINT_INFO
from harness.runs.store import move, remove_tree
from trainers import lora
from vrbench.errors import VrbenchError

STATE_FILE = "trainer_state.pt"


def rng_state() -> dict:
    out = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_dir(out: Path, step: int) -> Path:
    return out / f"checkpoint-{step:06d}"


def save_checkpoint(out: Path, step: int, model, processor, optim_state: dict, scheduler,
                    config: dict, info: dict | None = None, weights: dict | None = None
                    ) -> Path:
    """A directory that `from_pretrained` loads, plus the trainer state to resume from and
    `info` (run name, trainer, step, seed) for the harness's results index. `weights` is a
    full state dict gathered from sharded parameters (FSDP). Written to a temporary name and
    renamed, so a kill never leaves half a checkpoint."""
    final = checkpoint_dir(out, step)
    tmp = out / f".tmp-{final.name}"
    remove_tree(tmp, out)  # a kill's leftover; a link planted there is refused
    model = getattr(model, "module", model)
    if lora.is_adapted(model):  # the adapter, and the weights with it merged in
        model.save_pretrained(tmp / lora.ADAPTER_DIR)
        model = lora.merged(model)
    model.save_pretrained(tmp, state_dict=weights)
    processor.save_pretrained(tmp)
    torch.save({"step": step, "optimizer": optim_state, "scheduler": scheduler.state_dict(),
                "rng": rng_state(), "config": config}, tmp / STATE_FILE)
    if info is not None:
        (tmp / CHECKPOINT_INFO).write_text(json.dumps(info, indent=2) + "\n")
    remove_tree(final, out)
    move(tmp, final, out)
    return final


def saved_checkpoints(out: Path) -> list[Path]:
    """The checkpoints in `out`, in step order."""
    return sorted(p for p in out.glob("checkpoint-*") if (p / STATE_FILE).is_file())


def latest_checkpoint(out: Path) -> Path | None:
    ck = saved_checkpoints(out)
    return ck[-1] if ck else None


def load_state(ckpt: Path) -> dict:
    """The trainer state saved with a checkpoint. It is read with `weights_only=True`: tensors
    and plain Python values only, so a state file from elsewhere cannot run code."""
    path = ckpt / STATE_FILE
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as e:
        raise VrbenchError(f"{path} holds objects other than tensors and plain values, which "
                           "are refused (unpickling them could run code); it was not written "
                           "by vrbench.") from e
    except Exception as e:  # corrupt or truncated
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise VrbenchError(f"{path} could not be read as a vrbench trainer state ({first}); "
                           "it is damaged or was not written by vrbench.") from e
    if not isinstance(state, dict) or not {"step", "optimizer", "scheduler", "rng"} <= set(
            state):
        raise VrbenchError(f"{path} is not a vrbench trainer state (it lacks the step, "
                           "optimizer, scheduler or RNG state).")
    return state

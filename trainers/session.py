"""A training session from start to checkpoint: the model loaded (or resumed), parts
frozen, optimizer built, the model wrapped for DDP or sharded; the training stream of
examples; saving and scoring checkpoints."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from harness.runs.provenance import CHECKPOINT_INFO
from harness.runs.ranks import Dist, setup_distributed
from harness.runs.store import (
    LOCK_FILE,
    append_jsonl,
    drop_after,
    repair_jsonl,
    run_file,
    try_lock,
    write_text_atomic,
)
from trainers import lora, memory
from trainers.checkpoints import (
    checkpoint_dir,
    latest_checkpoint,
    load_state,
    save_checkpoint,
    saved_checkpoints,
    set_rng_state,
)
from trainers.config import TrainConfig, config_dict
from trainers.distributed import barrier, gather_full_state, load_full_optimizer_state, shard
from trainers.dynamics import evaluate_checkpoint
from trainers.optim import make_optimizer
from trainers.parts import describe, set_trainable
from trainers.trackers import Tracker, open_tracker, preflight
from vrbench.errors import VrbenchError
from vrbench.seeds import derive


class TrainSet:
    """A train split's samples in a fixed order per epoch (a permutation seeded by seed and
    epoch): the examples of any step are known without replaying the steps before, which is
    what makes resuming exact."""

    def __init__(self, spec: str, split: str, seed: int, data_dir: str | None = None,
                 stream: str = "data-order"):
        import tasks as task_registry
        self.items = [(t, s) for t in task_registry.resolve(spec, data_dir)
                      for s in t.samples(split)]
        if not self.items:
            raise VrbenchError(f"no {split} samples in {spec!r}.")
        self.seed, self.stream = seed, stream
        self._perm: tuple[int, list[int]] | None = None

    def __len__(self) -> int:
        return len(self.items)

    def example(self, index: int):
        """The `index`-th example of the endless stream of epochs."""
        epoch, pos = divmod(index, len(self.items))
        if self._perm is None or self._perm[0] != epoch:
            g = torch.Generator().manual_seed(derive(self.seed, self.stream, epoch))
            self._perm = (epoch, torch.randperm(len(self.items), generator=g).tolist())
        return self.items[self._perm[1][pos]]


@dataclass
class Session:
    """A training run's state, as set up by `start`."""

    d: Dist
    out: Path
    processor: object
    model: torch.nn.Module
    wrapped: torch.nn.Module  # the model as forward and backward call it: wrapped in DDP
    # under torchrun without FSDP, else `model` itself
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    start: int  # the first step to run (> 0 when resumed)
    autocast: object
    fsdp: bool = False  # parameters sharded over the processes (else replicated)
    dtype: torch.dtype = torch.float32  # of the trained weights
    lock: object = None  # the main process's lock on `out`: one trainer writes a folder
    tracker: Tracker | None = None  # --report-to, on the main process

    def record(self, row: dict) -> None:
        """A train step's log line: to train_log.jsonl, and to the tracker."""
        append_jsonl(self.out / "train_log.jsonl", [row])
        if self.tracker is not None:
            self.tracker.train(row)

    def close(self) -> None:
        """Let another trainer write `out` (also done when the process ends), and leave the
        process group together (every process calls this at the end of training)."""
        if self.tracker is not None:
            self.tracker.close()
            self.tracker = None
        if self.lock is not None:
            self.lock.close()
            self.lock = None
        self.d.close()


def start(cfg: TrainConfig, trainer: str, total_updates: int, extra: dict | None = None
          ) -> Session:
    """Load the model (the latest checkpoint of `cfg.out` when resuming), freeze what is not
    trained, build optimizer and schedule, restore their state and the RNGs on resume, write
    `train_config.json` (with `extra`) and wrap the model for DDP (or shard it with FSDP)
    under torchrun. The main process holds the folder's lock until `close` (or its end): a
    second trainer on the same `out` is refused at once."""
    d = setup_distributed()
    cfg.check(d.world)
    if d.main:
        preflight(cfg.report_to)
    out = Path(cfg.out)
    lock = _lock(out) if d.main else None
    try:
        return _start(cfg, trainer, total_updates, extra, d, out, lock)
    except BaseException:
        if lock is not None:
            lock.close()
        raise


def _lock(out: Path):
    """The training folder's lock, or one sentence when another trainer holds it."""
    try:
        lock = try_lock(out / LOCK_FILE)
    except OSError as e:
        raise VrbenchError(f"the training folder {out} cannot be written ({e.strerror}).") from e
    if lock is None:
        raise VrbenchError(f"another trainer is writing {out}; wait for it to end or choose "
                           "another --out.")
    return lock


STEP_LOGS = ("train_log.jsonl", "rollouts.jsonl")  # a row per training step (or its rollouts)


def _start(cfg: TrainConfig, trainer: str, total_updates: int, extra: dict | None, d: Dist,
           out: Path, lock) -> Session:
    from harness.backends.hf import load_config, load_model
    ckpt = latest_checkpoint(out) if cfg.resume else None
    if not cfg.resume and latest_checkpoint(out) is not None:
        raise VrbenchError(f"{out} already holds checkpoints; pass --resume to continue.")
    logged = [log for log in STEP_LOGS if not (out / log).is_symlink()  # refused on writing
              and (out / log).is_file() and (out / log).stat().st_size]
    if not cfg.resume and logged:
        raise VrbenchError(f"{out} already holds {logged[0]} from an earlier run; pass --resume "
                           "to continue it (from step 0 while it has no checkpoint) or choose "
                           "another --out.")
    if cfg.resume and ckpt is None and d.main:
        print(f"resume: {out} holds no checkpoint yet; starting from step 0.")
    # what the run will hold on each GPU, from the config alone: refused here if it cannot fit
    need = memory.estimate(cfg, trainer, d.world, load_config(str(ckpt or cfg.model)))
    if d.main:
        print(f"memory: {memory.describe(need)}")
    memory.check_fits(need, memory.capacity(d.device), d.world, cfg.fsdp)
    dtype = getattr(torch, cfg.param_dtype)  # never the device's preference (bf16 on CUDA)
    processor, model = load_model(str(ckpt or cfg.model), device=str(d.device), dtype=dtype)
    model.train()
    check_model(cfg, processor, model)
    if cfg.lora.r:
        model, counts = lora.attach(model, cfg.lora)
    else:
        counts = set_trainable(model, tuple(cfg.optim.train))
    if d.main:
        print(f"parameters: {describe(counts['total'], counts['trained'])}")
    fsdp = cfg.fsdp and d.world > 1
    if fsdp:
        shard(model)
    opt, sched = make_optimizer(model, cfg.optim, total_updates)
    first = 0
    if ckpt is not None:
        state = load_state(ckpt)
        if fsdp:
            load_full_optimizer_state(model, opt, state["optimizer"])
        else:
            opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        first = state["step"]
    else:
        torch.manual_seed(cfg.seed)
    out.mkdir(parents=True, exist_ok=True)
    if d.main:  # the logs' only writer from here on: drop lines a kill cut short
        for log in out.glob("*.jsonl"):
            repair_jsonl(log)
        for log in STEP_LOGS:  # and the steps past the checkpoint it resumes from
            drop_after(out / log, first)
        if ckpt is not None:
            score_unscored(cfg, trainer, out)
    barrier(d)
    if d.main:
        write_text_atomic(run_file(out / "train_config.json"), json.dumps(
            config_dict(cfg) | {"trainer": trainer, "trainable": counts, "world_size": d.world,
                                "param_dtype": str(next(model.parameters()).dtype),
                                "compute": "bf16 autocast" if cfg.bf16
                                and d.device.type == "cuda" else "param_dtype"} | (extra or {}),
            indent=2))
    wrapped = (torch.nn.parallel.DistributedDataParallel(model) if d.world > 1 and not fsdp
               else model)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16)
                if cfg.bf16 and d.device.type == "cuda" else contextlib.nullcontext())
    tracker = open_tracker(cfg.report_to, out, cfg.name or out.name,
                           config_dict(cfg) | {"trainer": trainer}) if d.main else None
    return Session(d, out, processor, model, wrapped, opt, sched, first, autocast, fsdp, dtype,
                   lock, tracker)


def check_model(cfg: TrainConfig, processor, model) -> None:
    """What the loaded model must offer the run, in one sentence each, before any step: the
    tokens that end and pad a sequence, and room in its context for the responses."""
    tok = getattr(processor, "tokenizer", processor)
    for what, token_id in (("end-of-sequence", tok.eos_token_id),
                           ("padding", tok.pad_token_id)):
        if token_id is None:
            raise VrbenchError(f"the tokenizer of {cfg.model} has no {what} token; set one "
                               "(tokenizer_config.json) before training.")
    context = getattr(model.config.get_text_config(), "max_position_embeddings", None)
    for flag, n in (("--max-new-tokens", getattr(cfg, "max_new_tokens", None)),
                    ("--eval-max-new-tokens", cfg.eval.max_new_tokens)):
        if context is not None and n is not None and n >= context:
            raise VrbenchError(f"{flag} {n} does not fit the model's context of {context} "
                               "tokens (max_position_embeddings).")


def score_unscored(cfg: TrainConfig, trainer: str, out: Path) -> None:
    """Score the checkpoints whose scoring a kill cut short or kept from starting: a
    checkpoint is saved, then scored, and a run resumed from it starts past it (with no step
    left to run when it was the last). Those scored already are skipped (`dynamics.jsonl`);
    a cut evaluation run resumes where it stopped."""
    for path in saved_checkpoints(out):
        info = json.loads((path / CHECKPOINT_INFO).read_text())
        evaluate_checkpoint(path, out, info["step"], info["epoch"], cfg.eval, trainer,
                            cfg.seed, cfg.data_dir, final=info["step"] == cfg.steps)


def maybe_save(s: Session, cfg: TrainConfig, trainer: str, done: int, epoch: float) -> None:
    """Every `save_every` steps and at the end: write a checkpoint and score it."""
    if done != cfg.steps and not (cfg.save_every and done % cfg.save_every == 0):
        return
    barrier(s.d)
    weights, optim_state = gather_full_state(s.model, s.opt) if s.fsdp else (
        None, s.opt.state_dict())
    if s.d.main:
        # the starting checkpoint relative to this one (a published folder names no path of
        # the machine that trained it), or its Hub id
        base = os.path.relpath(Path(cfg.model).resolve(), checkpoint_dir(s.out, done).resolve()
                               ) if Path(cfg.model).exists() else cfg.model
        info = {"name": cfg.name or s.out.name, "trainer": trainer, "step": done,
                "epoch": round(epoch, 4), "seed": cfg.seed, "base_model": base}
        path = save_checkpoint(s.out, done, s.model, s.processor, optim_state, s.sched,
                               config_dict(cfg), info=info, weights=weights)
        rows = evaluate_checkpoint(path, s.out, done, epoch, cfg.eval, trainer, cfg.seed,
                                   cfg.data_dir, final=done == cfg.steps)
        if s.tracker is not None:
            s.tracker.evaluation(rows)
    barrier(s.d)


def grad_sync(s: Session, last: bool):
    """The context of one micro-batch's backward: gradients are reduced over the processes
    on the last micro-batch of an optimizer step only."""
    if s.fsdp:
        s.model.set_requires_gradient_sync(last)
        return contextlib.nullcontext()
    return contextlib.nullcontext() if s.d.world == 1 or last else s.wrapped.no_sync()

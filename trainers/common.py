"""What the SFT and RL trainers share: trainable parts, optimizer and schedule, checkpoints
that both load in transformers and resume exactly, distributed set-up, and the training
dynamics written by scoring each checkpoint with the harness."""

from __future__ import annotations

import contextlib
import json
import math
import os
import pickle
import random
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import ClassVar

import torch
import torch.distributed as dist

from harness.config import EvalConfig
from harness.results import CHECKPOINT_INFO
from harness.store import append_jsonl, read_jsonl
from tasks.errors import VrbenchError

PARTS = ("vision", "connector", "language")
PARAM_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
STATE_FILE = "trainer_state.pt"


@dataclass
class CheckpointEval(EvalConfig):
    """How each saved checkpoint is scored: ID tasks on their validation split, OOD tasks on
    test (the paper's scheme), under one or more generation presets; every other setting is
    an `EvalConfig` field (its flags are prefixed: `--eval-limit`)."""

    FLAG_PREFIX: ClassVar[str] = "eval_"
    # set per evaluation by the trainer: the split by domain, the preset from `presets`, the
    # seed from training, the output under the run, the data from the trainer's --data-dir
    NOT_FLAGS: ClassVar[tuple[str, ...]] = ("split", "preset", "samples", "temperature",
                                            "top_p", "seed", "output", "root", "data_dir")
    id_tasks: str = "id"  # ID tasks, scored on their validation split ('' for none)
    ood_tasks: str = "ood"  # tasks scored on their test split: the OOD macro ('ood,far' adds
    # the far shifts; '' for none)
    presets: tuple[str, ...] = ("greedy",)  # generation presets, one evaluation each
    limit: int | None = 64  # the first N samples of each task at every checkpoint
    final_limit: int | None = None  # ... and at the last one, where a verdict is read (None:
    # as at every checkpoint)
    max_new_tokens: int | None = 96
    batch_size: int = 32

    def check(self) -> None:
        super().check()
        if self.final_limit is not None and self.final_limit < 1:
            raise VrbenchError(f"--eval-final-limit must be at least 1, not {self.final_limit}.")


@dataclass
class OptimSettings:
    FLAG_PREFIX: ClassVar[str] = ""  # plain flags: --lr
    lr: float = 1e-3  # peak learning rate (AdamW)
    vision_lr_mult: float = 1.0  # the vision tower's learning rate is lr times this (a
    # tower trained from scratch learns faster with more)
    weight_decay: float = 0.01  # AdamW weight decay of matrices (not of biases and norms)
    betas: tuple[float, float] = (0.9, 0.95)  # AdamW betas
    eps: float = 1e-8  # AdamW epsilon
    warmup: float = 0.1  # linear warm-up over this share of the steps
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    grad_clip: float = 1.0  # gradient-norm clipping (0: none)
    train: tuple[str, ...] = PARTS  # which of vision, connector, language are trained


@dataclass
class TrainConfig:
    """What every trainer takes; `SFTConfig` and `RLConfig` add their own fields."""

    model: str  # the starting checkpoint
    out: str  # output directory: checkpoints, logs, dynamics, evaluation runs
    name: str = ""  # the run's name in results and leaderboards (default: out's last part)
    tasks: str = "id"  # training tasks: names, suites or task YAML paths
    split: str = "train"  # the tasks' split to train on
    steps: int = 300  # optimizer steps (SFT) or generation steps (RL)
    seed: int = 0  # data order, sampling and initialisation seed
    save_every: int = 0  # save and score a checkpoint every N steps (0: the final one only)
    log_every: int = 10  # append a line to train_log.jsonl every N steps
    resume: bool = False  # continue from the latest checkpoint in out
    bf16: bool = True  # bf16 autocast on CUDA for the forward and backward passes (the CPU
    # always computes in float32)
    param_dtype: str = "float32"  # the dtype of the trained weights and the optimizer's
    # state: float32 master weights (bfloat16 ones lose most updates at small learning rates)
    fsdp: bool = False  # under torchrun, shard the model over the processes (FSDP2), not DDP
    data_dir: str | None = None  # local copies of published benchmarks, for training or
    # scoring on them (default: $VRBENCH_DATA)
    optim: OptimSettings = field(default_factory=OptimSettings)
    eval: CheckpointEval = field(default_factory=CheckpointEval)

    def check(self, world: int) -> None:
        """Refuse impossible settings with one sentence, before anything is loaded or
        written; `world` is the number of processes."""
        check_finite(self)
        check_finite(self.optim)
        for name in ("steps", "log_every"):
            if getattr(self, name) < 1:
                raise VrbenchError(f"--{name.replace('_', '-')} must be at least 1.")
        if self.save_every < 0:
            raise VrbenchError("--save-every must be 0 or more.")
        if self.param_dtype not in PARAM_DTYPES:
            raise VrbenchError(f"--param-dtype must be one of {', '.join(PARAM_DTYPES)}.")
        o = self.optim
        for name, ok in (("lr", o.lr > 0), ("vision_lr_mult", o.vision_lr_mult >= 0),
                         ("weight_decay", o.weight_decay >= 0), ("eps", o.eps > 0),
                         ("warmup", 0 <= o.warmup <= 1), ("min_lr_ratio", 0 <= o.min_lr_ratio <= 1),
                         ("grad_clip", o.grad_clip >= 0),
                         ("betas", len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas))):
            if not ok:
                raise VrbenchError(f"--{name.replace('_', '-')} is out of range: "
                                   f"{getattr(o, name)}.")
        _check_parts(o.train)
        self.eval.check()


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0


class TrainSet:
    """A train split's samples in a fixed order per epoch (a permutation seeded by seed and
    epoch): the examples of any step are known without replaying the steps before, which is
    what makes resuming exact."""

    def __init__(self, spec: str, split: str, seed: int, data_dir: str | None = None):
        import tasks as task_registry
        self.items = [(t, s) for t in task_registry.resolve(spec, data_dir)
                      for s in t.samples(split)]
        if not self.items:
            raise VrbenchError(f"no {split} samples in {spec!r}.")
        self.seed = seed
        self._perm: tuple[int, list[int]] | None = None

    def __len__(self) -> int:
        return len(self.items)

    def example(self, index: int):
        """The `index`-th example of the endless stream of epochs."""
        epoch, pos = divmod(index, len(self.items))
        if self._perm is None or self._perm[0] != epoch:
            g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            self._perm = (epoch, torch.randperm(len(self.items), generator=g).tolist())
        return self.items[self._perm[1][pos]]


def setup_distributed() -> Dist:
    """Under torchrun, join the process group (nccl on GPUs, gloo on the CPU)."""
    if "RANK" not in os.environ:
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return Dist(device=dev)
    cuda = torch.cuda.is_available()
    local = int(os.environ.get("LOCAL_RANK", 0))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    if cuda:
        torch.cuda.set_device(local)
    return Dist(dist.get_rank(), dist.get_world_size(), local,
                torch.device(f"cuda:{local}" if cuda else "cpu"))


def all_reduce_sum(x: torch.Tensor, d: Dist) -> torch.Tensor:
    if d.world > 1:
        dist.all_reduce(x, op=dist.ReduceOp.SUM)
    return x


def barrier(d: Dist) -> None:
    if d.world > 1:
        dist.barrier()


def part_of(param_name: str) -> str:
    if ".visual.merger." in f".{param_name}":
        return "connector"
    if ".visual." in f".{param_name}":
        return "vision"
    return "language"


def check_finite(cfg) -> None:
    """Every float setting of a config (not of its nested configs) is a finite number."""
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        values = value if isinstance(value, tuple) else (value,)
        if any(isinstance(v, float) and not math.isfinite(v) for v in values):
            raise VrbenchError(f"--{f.name.replace('_', '-')} must be a finite number, not "
                               f"{value}.")


def _check_parts(parts: tuple[str, ...]) -> None:
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise VrbenchError(f"unknown trainable part(s) {sorted(unknown)}; choose from {PARTS}.")


def set_trainable(model: torch.nn.Module, parts: tuple[str, ...]) -> dict[str, int]:
    """Freeze what is not trained; returns trainable parameter counts per part."""
    _check_parts(parts)
    counts = dict.fromkeys(PARTS, 0)
    for name, p in model.named_parameters():
        part = part_of(name)
        p.requires_grad_(part in parts)
        if part in parts:
            counts[part] += p.numel()
    return counts


def lr_factor(step: int, total: int, warmup: float, min_ratio: float) -> float:
    """Linear warm-up over `warmup` of the steps, then cosine down to `min_ratio`."""
    w = max(1, int(total * warmup)) if warmup > 0 else 0
    if step < w:
        return (step + 1) / w
    progress = (step - w) / max(1, total - w)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(model: torch.nn.Module, o: OptimSettings, total_steps: int):
    groups: dict[tuple[bool, bool], list] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            key = (p.ndim >= 2, part_of(name) == "vision")
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
    shutil.rmtree(tmp, ignore_errors=True)
    model = getattr(model, "module", model)
    model.save_pretrained(tmp, state_dict=weights)
    processor.save_pretrained(tmp)
    torch.save({"step": step, "optimizer": optim_state, "scheduler": scheduler.state_dict(),
                "rng": rng_state(), "config": config}, tmp / STATE_FILE)
    if info is not None:
        (tmp / CHECKPOINT_INFO).write_text(json.dumps(info, indent=2) + "\n")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return final


def latest_checkpoint(out: Path) -> Path | None:
    ck = sorted(p for p in out.glob("checkpoint-*") if (p / STATE_FILE).is_file())
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


@dataclass
class Session:
    """A training run's state, as set up by `start`."""

    d: Dist
    out: Path
    processor: object
    model: torch.nn.Module
    ddp: torch.nn.Module  # the model wrapped for data parallelism (or the model itself)
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    start: int  # the first step to run (> 0 when resumed)
    autocast: object
    fsdp: bool = False  # parameters sharded over the processes (else replicated)
    dtype: torch.dtype = torch.float32  # of the trained weights


def start(cfg: TrainConfig, trainer: str, total_updates: int, extra: dict | None = None
          ) -> Session:
    """Load the model (the latest checkpoint of `cfg.out` when resuming), freeze what is not
    trained, build optimizer and schedule, restore their state and the RNGs on resume, write
    `train_config.json` (with `extra`) and wrap the model for DDP (or shard it with FSDP)
    under torchrun."""

    from harness.backends.hf import load_model
    d = setup_distributed()
    cfg.check(d.world)
    out = Path(cfg.out)
    ckpt = latest_checkpoint(out) if cfg.resume else None
    if not cfg.resume and latest_checkpoint(out) is not None:
        raise VrbenchError(f"{out} already holds checkpoints; pass --resume to continue.")
    dtype = PARAM_DTYPES[cfg.param_dtype]  # never the device's preference (bf16 on CUDA)
    processor, model = load_model(str(ckpt or cfg.model), device=str(d.device), dtype=dtype)
    model.train()
    counts = set_trainable(model, tuple(cfg.optim.train))
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
    if d.main:
        (out / "train_config.json").write_text(json.dumps(
            config_dict(cfg) | {"trainer": trainer, "trainable": counts, "world_size": d.world,
                                "param_dtype": str(next(model.parameters()).dtype),
                                "compute": "bf16 autocast" if cfg.bf16
                                and d.device.type == "cuda" else "param_dtype"} | (extra or {}),
            indent=2))
    ddp = (torch.nn.parallel.DistributedDataParallel(model) if d.world > 1 and not fsdp
           else model)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16)
                if cfg.bf16 and d.device.type == "cuda" else contextlib.nullcontext())
    return Session(d, out, processor, model, ddp, opt, sched, first, autocast, fsdp, dtype)


def maybe_save(s: Session, cfg: TrainConfig, trainer: str, done: int, epoch: float) -> None:
    """Every `save_every` steps and at the end: write a checkpoint and score it."""
    if done != cfg.steps and not (cfg.save_every and done % cfg.save_every == 0):
        return
    barrier(s.d)
    weights, optim_state = gather_full_state(s.model, s.opt) if s.fsdp else (
        None, s.opt.state_dict())
    if s.d.main:
        info = {"name": cfg.name or s.out.name, "trainer": trainer, "step": done,
                "epoch": round(epoch, 4), "seed": cfg.seed,
                "base_model": str(Path(cfg.model).resolve()) if Path(cfg.model).exists()
                else cfg.model}
        path = save_checkpoint(s.out, done, s.model, s.processor, optim_state, s.sched,
                               config_dict(cfg), info=info, weights=weights)
        evaluate_checkpoint(path, s.out, done, epoch, cfg.eval, trainer, cfg.seed,
                            cfg.data_dir, final=done == cfg.steps)
    barrier(s.d)


def grad_sync(s: Session, last: bool):
    """The context of one micro-batch's backward: gradients are reduced over the processes
    on the last micro-batch of an optimizer step only."""
    if s.fsdp:
        s.model.set_requires_gradient_sync(last)
        return contextlib.nullcontext()
    return contextlib.nullcontext() if s.d.world == 1 or last else s.ddp.no_sync()


# -- FSDP: parameters, gradients and optimizer state sharded over the processes ---------------
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


def config_dict(cfg) -> dict:
    return json.loads(json.dumps(asdict(cfg), default=str))


def evaluate_checkpoint(ckpt: Path, out: Path, step: int, epoch: float, ev: CheckpointEval,
                        trainer: str, seed: int, data_dir: str | None = None,
                        final: bool = False) -> list[dict]:
    """Score a checkpoint with the harness and append one row per task and preset to
    `out/dynamics.jsonl`. Runs land in `out/evals/`, resumable like any run. The `final`
    checkpoint is scored on `final_limit` samples per task."""
    from harness.runner import evaluate
    dyn = out / "dynamics.jsonl"
    done = {(r["checkpoint"], r["preset"], r["split"]) for r in read_jsonl(dyn)}
    rows = []
    for preset in ev.presets:
        for spec, split in ((ev.id_tasks, "validation"), (ev.ood_tasks, "test")):
            if not spec or (ckpt.name, preset, split) in done:
                continue
            limit = ev.final_limit if final and ev.final_limit is not None else ev.limit
            res = evaluate(str(ckpt), spec, ev.base(), split=split, preset=preset, seed=seed,
                           limit=limit,
                           output=str(out / "evals" / f"{ckpt.name}-{preset}-{split}"),
                           data_dir=data_dir,
                           progress_desc=f"scoring {ckpt.name} ({split}, {preset})")
            for task, r in res["results"].items():
                rows.append({
                    "trainer": trainer, "seed": seed, "step": step, "epoch": round(epoch, 4),
                    "checkpoint": ckpt.name, "task": task,
                    "domain": res["config"]["tasks"][task]["domain"], "split": split,
                    "preset": preset, "acc": r["acc"], "acc_ci95": r["acc_ci95"],
                    "majority_baseline": r["majority_baseline"],
                    **{k: r.get(k) for k in (
                        "length_mean", "length_clip_ratio", "format_ratio",
                        "reflection_ratio", "reflection_ratio_in_correct_answers",
                        "reflection_ratio_in_incorrect_answers",
                        "correct_ratio_in_reflection_texts",
                        "correct_ratio_in_no_reflection_texts")},
                    "run_dir": res["run_dir"]})
    append_jsonl(dyn, rows)
    return rows

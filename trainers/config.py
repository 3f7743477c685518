"""What every trainer is configured with: the base `TrainConfig`, its optimizer settings
and how its checkpoints are scored (`CheckpointEval`). `SFTConfig` and `RLConfig` extend
the base with their own fields."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import ClassVar

import torch

from harness import flags
from harness.runs.config import EvalConfig
from tasks import EVAL_SPLIT
from tasks.errors import VrbenchError
from trainers.parts import PARTS, check_parts

PARAM_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


@dataclass
class CheckpointEval(EvalConfig):
    """How each saved checkpoint is scored: ID tasks on their validation split, OOD tasks on
    test (the paper's scheme, `tasks.EVAL_SPLIT`), under one or more generation presets;
    every other setting is an `EvalConfig` field (its flags are prefixed: `--eval-limit`)."""

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

    def scored(self) -> list[tuple[str, str]]:
        """(tasks, split) of each evaluation of a checkpoint: the ID tasks on their
        evaluation split, the OOD tasks on theirs (`tasks.EVAL_SPLIT`); empty specs left out."""
        return [(spec, EVAL_SPLIT[dom]) for spec, dom in ((self.id_tasks, "id"),
                                                          (self.ood_tasks, "ood")) if spec]

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

    CHOICES: ClassVar[dict] = {"param_dtype": PARAM_DTYPES}

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
        flags.check_choices(self)
        check_finite(self)
        check_finite(self.optim)
        for name in ("steps", "log_every"):
            if getattr(self, name) < 1:
                raise VrbenchError(f"--{name.replace('_', '-')} must be at least 1.")
        if self.save_every < 0:
            raise VrbenchError("--save-every must be 0 or more.")
        o = self.optim
        for name, ok in (("lr", o.lr > 0), ("vision_lr_mult", o.vision_lr_mult >= 0),
                         ("weight_decay", o.weight_decay >= 0), ("eps", o.eps > 0),
                         ("warmup", 0 <= o.warmup <= 1), ("min_lr_ratio", 0 <= o.min_lr_ratio <= 1),
                         ("grad_clip", o.grad_clip >= 0),
                         ("betas", len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas))):
            if not ok:
                raise VrbenchError(f"--{name.replace('_', '-')} is out of range: "
                                   f"{getattr(o, name)}.")
        check_parts(o.train)
        self.eval.check()


def check_finite(cfg) -> None:
    """Every float setting of a config (not of its nested configs) is a finite number."""
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        values = value if isinstance(value, tuple) else (value,)
        if any(isinstance(v, float) and not math.isfinite(v) for v in values):
            raise VrbenchError(f"--{f.name.replace('_', '-')} must be a finite number, not "
                               f"{value}.")


def config_dict(cfg) -> dict:
    return json.loads(json.dumps(asdict(cfg), default=str))

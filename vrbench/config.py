"""The main job's configuration: what `vrbench quickstart` trains and scores (no torch, so
`vrbench quickstart --help` starts at once)."""

from __future__ import annotations

from dataclasses import dataclass, field

from trainers.config import SIZES, CheckpointEval, check_finite
from vrbench.errors import VrbenchError


@dataclass
class QuickstartConfig:
    out: str = "runs/quickstart"  # where every stage, its runs and the summary go
    size: str = "small"  # the tiny reference model: tiny, small or base (3b is for a GPU)
    tasks: str = "id"  # the training tasks (their train split)
    seeds: tuple[int, ...] = (0,)  # one warm start and two arms per seed
    jobs: int = 1  # seeds trained at once, each in its own process with an equal share of
    # the CPU threads (the scoring and the summary over all seeds follow)
    warm_steps: int = 500  # SFT warm-start steps
    warm_lr: float = 2e-3  # the warm start's peak learning rate
    warm_eval_every: int = 100  # score the warm start every N steps: its learning curve
    reflective: float = 0.5  # share of warm-start solutions with a reflective check
    arm_steps: int = 40  # optimizer steps of each arm
    arm_points: int = 4  # checkpoints of each arm, evenly spaced (the frontier's points)
    prompts: int = 16  # prompts (SFT examples) per optimizer step, in both arms
    group_size: int = 4  # RL responses per prompt
    sft_lr: float = 1e-4  # the SFT arm's constant learning rate
    rl_lr: float = 2e-5  # the RL arm's constant learning rate (at 1e-4 its ID accuracy
    # falls below the warm start's: the README's quickstart results)
    sweep_lrs: tuple[float, ...] = ()  # each arm is also trained at these learning rates:
    # the points of the Pareto figure and of the matched-gain frontier
    long_rl_steps: int = 0  # also run the RL arm this many steps (0: not), scored at 10
    # checkpoints: the length trajectory per seed
    long_rl_lr: float | None = None  # the long RL arm's learning rate (default: --rl-lr)
    long_rl_terse: float = 0.0  # the long RL arm starts from a warm start of its own in
    # which this share of the solutions is the answer alone: a terse habit and a worked one
    # to choose between, where the longer one is the more often right (bench/length_pays.py);
    # 0: from the warm start
    kl_coef: float = 0.01  # RL's k3 KL loss to the warm start
    kl_prompts: int = 64  # ID validation prompts per task for each arm's KL to the warm start
    eval: CheckpointEval = field(default_factory=lambda: CheckpointEval(
        final_limit=200))  # how every checkpoint is scored (the last of each stage on
    # --eval-final-limit samples per task: the verdict's)

    def check(self) -> None:
        check_finite(self)
        if self.size not in SIZES:
            raise VrbenchError(f"unknown size {self.size!r}; choose one of "
                               f"{', '.join(SIZES)}.")
        for name in ("warm_steps", "arm_steps", "arm_points", "prompts", "kl_prompts", "jobs"):
            if getattr(self, name) < 1:
                raise VrbenchError(f"--{name.replace('_', '-')} must be at least 1, not "
                                   f"{getattr(self, name)}.")
        if self.group_size < 2:
            raise VrbenchError("--group-size must be at least 2 (RL compares responses).")
        if not self.seeds:
            raise VrbenchError("--seeds needs at least one seed.")
        if min(self.warm_lr, self.sft_lr, self.rl_lr, *self.sweep_lrs) <= 0 or (
                self.kl_coef < 0 or self.warm_eval_every < 0 or self.long_rl_steps < 0):
            raise VrbenchError("learning rates must be above 0, --kl-coef, --warm-eval-every "
                               "and --long-rl-steps 0 or more.")
        if not 0 <= self.reflective <= 1:
            raise VrbenchError(f"--reflective is a share in [0, 1], not {self.reflective}.")
        if not 0 <= self.long_rl_terse < 1:
            raise VrbenchError(f"--long-rl-terse is a share in [0, 1), not "
                               f"{self.long_rl_terse}.")
        if self.long_rl_lr is not None and not self.long_rl_lr > 0:
            raise VrbenchError("--long-rl-lr must be above 0.")
        self.eval.check()

"""What every trainer is configured with: the base `TrainConfig`, its optimizer settings
and how its checkpoints are scored (`CheckpointEval`); `SFTConfig` and `RLConfig` extend
the base with their own fields. Nothing here imports torch, so that reading a
configuration (a trainer's `--help`, `--dry-run`, a recipe) starts at once."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import ClassVar

from harness import flags
from harness.runs.config import GENERATION_DEFAULTS, EvalConfig
from harness.scoring.rewards import RewardTerms
from tasks import EVAL_SPLIT
from trainers import reward_fns
from trainers.lora import LoraSettings
from trainers.losses import AGGREGATIONS, LOSSES
from trainers.parts import PARTS, check_parts
from trainers.trackers import TRACKERS
from vrbench.errors import VrbenchError

DTYPE_BYTES = {"float32": 4, "bfloat16": 2}  # the weights' dtypes: bytes a value


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
    limit: int | None = 64  # the first N samples of each task at every checkpoint (0: all)
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

    CHOICES: ClassVar[dict] = {"param_dtype": DTYPE_BYTES, "report_to": TRACKERS}

    model: str  # the starting checkpoint
    out: str  # output directory: checkpoints, logs, dynamics, evaluation runs
    name: str = ""  # the run's name in results and leaderboards (default: out's last part)
    tasks: str = "id"  # training tasks: names, suites or task YAML paths
    split: str = "train"  # the tasks' split to train on
    steps: int = 300  # optimizer steps (SFT) or generation steps (RL)
    seed: int = 0  # data order, sampling and initialisation seed
    save_every: int = 0  # save and score a checkpoint every N steps (0: the final one only)
    log_every: int = 10  # append a line to train_log.jsonl every N steps
    report_to: str = "none"  # also send the logs and checkpoint evaluations to: none,
    # tensorboard (OUT/tensorboard) or wandb (WANDB_PROJECT, WANDB_MODE=offline...)
    resume: bool = False  # continue from the latest checkpoint in out
    bf16: bool = True  # bf16 autocast on CUDA for the forward and backward passes (the CPU
    # always computes in float32)
    param_dtype: str = "float32"  # the dtype of the trained weights and the optimizer's
    # state: float32 master weights (bfloat16 ones lose most updates at small learning rates)
    fsdp: bool = False  # under torchrun, shard the model over the processes (FSDP2), not DDP
    data_dir: str | None = None  # local copies of published benchmarks, for training or
    # scoring on them (default: $VRBENCH_DATA)
    optim: OptimSettings = field(default_factory=OptimSettings)
    lora: LoraSettings = field(default_factory=LoraSettings)  # --lora-r R: adapters only
    eval: CheckpointEval = field(default_factory=CheckpointEval)

    def check(self, world: int) -> None:
        """Refuse impossible settings with one sentence, before anything is loaded or
        written; `world` is the number of processes."""
        flags.check_choices(self)
        check_finite(self)
        check_finite(self.optim)
        for name in ("steps", "log_every"):
            if getattr(self, name) < 1:
                raise VrbenchError(f"--{name.replace('_', '-')} must be at least 1, not "
                                   f"{getattr(self, name)}.")
        if self.save_every < 0:
            raise VrbenchError(f"--save-every must be 0 or more, not {self.save_every}.")
        o = self.optim
        for name, ok, allowed in (
                ("lr", o.lr > 0, "above 0"), ("vision_lr_mult", o.vision_lr_mult >= 0, "0 or more"),
                ("weight_decay", o.weight_decay >= 0, "0 or more"), ("eps", o.eps > 0, "above 0"),
                ("warmup", 0 <= o.warmup <= 1, "a share of the steps in [0, 1]"),
                ("min_lr_ratio", 0 <= o.min_lr_ratio <= 1, "in [0, 1]"),
                ("grad_clip", o.grad_clip >= 0, "0 or more (0: no clipping)"),
                ("betas", len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas),
                 "two numbers in [0, 1)")):
            if not ok:
                value = " ".join(map(str, o.betas)) if name == "betas" else getattr(o, name)
                raise VrbenchError(f"--{name.replace('_', '-')} must be {allowed}, not {value}.")
        check_parts(o.train)
        self.lora.check()
        if self.lora.r and self.fsdp:
            raise VrbenchError("--lora-r with --fsdp is not supported; LoRA runs replicate "
                               "the model (DDP).")
        if self.lora.r and self.resume:
            raise VrbenchError("--resume with --lora-r is not supported yet; start a new run "
                               "from the last checkpoint (its weights have the adapter "
                               "merged in).")
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


@dataclass
class SFTConfig(TrainConfig):
    reflective: float = 0.0  # share of examples trained on the solution with a reflective check
    terse: float = 0.0  # share of examples trained on the answer alone (\boxed{target}, no
    # reasoning): a warm start that knows both habits, for RL to choose between
    batch_size: int = 16  # examples per micro-batch, over all processes
    grad_accum: int = 1  # micro-batches per optimizer step

    def check(self, world: int) -> None:
        super().check(world)
        for name in ("reflective", "terse"):
            if not 0 <= getattr(self, name) <= 1:
                raise VrbenchError(f"--{name} is a share in [0, 1], not {getattr(self, name)}.")
        if self.batch_size < 1 or self.grad_accum < 1:
            raise VrbenchError("--batch-size and --grad-accum must be at least 1.")
        if self.batch_size % world:
            raise VrbenchError(f"batch size {self.batch_size} does not split over {world} "
                               "processes.")


ADVANTAGES = ("reinforce_pp", "grpo")


@dataclass
class RLConfig(TrainConfig):
    CHOICES: ClassVar[dict] = {"advantage": ADVANTAGES, "loss_agg": AGGREGATIONS, "loss": LOSSES,
                               "copies_dtype": DTYPE_BYTES,
                               "generation_defaults": GENERATION_DEFAULTS,
                               "rollout_batching": ("continuous", "static")}
    COMMAND_LINE_ONLY: ClassVar[dict] = {"reward": reward_fns.code_named}  # not from a recipe

    steps: int = 50  # generation steps (rollout batches)
    log_every: int = 1
    optim: OptimSettings = field(default_factory=lambda: OptimSettings(
        lr=1e-4, warmup=0.0, min_lr_ratio=1.0))
    prompts_per_step: int = 16  # prompts per generation step, over all processes
    group_size: int = 4  # responses per prompt (G)
    gen_chunk: int = 8  # prompts whose responses are generated together (see rollout_batching)
    dynamic_sampling: bool = False  # DAPO's dynamic sampling: groups whose rewards are all
    # equal (no gradient) are dropped and more prompts sampled, until the step has
    # --prompts-per-step informative groups
    max_sampling_rounds: int = 4  # ... with at most this many extra rounds a step; when hit,
    # the step is filled up with dropped groups and logs it (dynamic_capped)
    temperature: float = 1.0  # rollout sampling temperature; the old, reference and new
    # log-probs are computed at the same temperature, so training stays on-policy
    top_p: float = 1.0  # rollout nucleus sampling threshold. Below 1 the recomputed log-probs
    # cannot mirror it (they renormalise over the whole vocabulary): the gap to the sampler's
    # log-probs is logged every step as logprob_gap_mean and logprob_gap_max
    generation_defaults: str = "neutral"  # top-k and repetition penalty of the rollouts: neutral
    # (off) or model (the starting checkpoint's generation config, e.g. a 1.05 penalty)
    max_new_tokens: int = 64  # token limit per response
    rollout_batching: str = "continuous"  # continuous: this process's prompts of a step share
    # gen_chunk x group_size places, a response that ends frees its place, each prompt's
    # group seeded by the prompt's index; static: a generate call per chunk of gen_chunk
    # prompts, seeded by the chunk's index (as vrbench did before continuous batching)
    # -- reward: the harness's grader, with the paper's penalties
    reward: tuple[str, ...] = ("vrbench",)  # reward functions, added up: NAME[=WEIGHT], NAME
    # vrbench (the grader with the penalties below), module:function or file.py:function
    # (called as TRL calls a reward function: trainers/reward_fns.py)
    correct_reward: float = 1.0  # reward of a correct final answer
    format_reward: float = 0.0  # added when the answer is in a non-empty \boxed{} or answer tag
    # (EasyR1-style shaping)
    language_coef: float = 0.1  # minus this times the share of CJK characters
    no_eos_reward: float = -0.1  # the whole reward of a response cut at the limit or too short
    min_tokens: int = 4  # shorter responses count as too short (the paper uses 18)
    # -- advantage
    advantage: str = "grpo"  # grpo (group-normalised) or reinforce_pp (the paper's)
    grpo_std_norm: bool = True  # grpo: divide by the group's std (GRPO), or not (Dr. GRPO)
    gamma: float = 1.0  # reinforce_pp: discount of the token-level returns
    kl_reward_coef: float = 0.0  # reinforce_pp: beta_rew, a per-token KL penalty in the return
    whiten_add_mean: bool = False  # reinforce_pp: the paper code's (A - mu) / sigma + mu
    adv_eps: float = 1e-6  # added to the std when normalising advantages
    # -- loss
    clip_low: float = 0.2  # PPO clip: the ratio is kept above 1 - clip_low
    clip_high: float = 0.2  # ... and below 1 + clip_high (DAPO's clip-higher: 0.28)
    loss: str = "ppo"  # the ratio the clipped surrogate takes (trainers/losses.py): each
    # token's (ppo) or each response's, the geometric mean of its tokens' (gspo)
    loss_agg: str = "token-mean"  # per-token terms to one number: token-mean (DAPO, verl),
    # seq-mean-token-mean (GRPO) or seq-mean-token-sum-norm (Dr. GRPO); also the KL loss's
    tis_cap: float = 0.0  # truncated importance sampling: each token's term weighted by the
    # trainer's over the sampler's probability, capped at this (0: off; 2 is common)
    kl_coef: float = 0.0  # weight of the k3 KL(pi || pi_ref) loss; 0 keeps no reference model
    copies_dtype: str = "float32"  # dtype of the frozen full copies: the reference model and,
    # under --fsdp, the rollout model (bfloat16 halves them; on a GPU their matmuls run in
    # bf16 under --bf16 autocast either way)
    ppo_epochs: int = 1  # passes over each rollout batch
    micro_batch_size: int = 32  # sequences per forward pass, grouped by length; gradients
    # add up over a mini-batch's micro-batches (0: a mini-batch in one pass)
    shared_prompts: bool = True  # run each prompt once for all its responses in the log-prob
    # passes (harness/likelihood/prefix.py; same log-probs and gradients); --no-shared-prompts:
    # every response repeats its prompt, as transformers' trainers do
    mini_batches: int = 1  # optimizer steps per ppo epoch
    log_rollouts: bool = True  # every response, its reward and advantage -> rollouts.jsonl

    def reward_terms(self) -> RewardTerms:
        """The terms vrbench's reward adds to the grader's verdict (`--reward vrbench`), the
        answer read after the reasoning block its checkpoints are scored with
        (`--eval-reasoning-tags`): one model, one way of writing its reasoning."""
        return RewardTerms(self.correct_reward, self.format_reward, self.language_coef,
                           self.no_eos_reward, self.min_tokens, tuple(self.eval.reasoning_tags))

    def needs_reference(self) -> bool:
        """A KL loss, or Reinforce++'s KL reward, keeps the starting model as the reference."""
        return bool(self.kl_coef or (self.advantage == "reinforce_pp" and self.kl_reward_coef))

    def check(self, world: int) -> None:
        super().check(world)
        if not self.reward:
            raise VrbenchError("--reward needs at least one function (e.g. vrbench).")
        for spec in self.reward:
            reward_fns.parse(spec)
        for name in ("prompts_per_step", "group_size", "gen_chunk", "max_new_tokens",
                     "ppo_epochs", "mini_batches", "max_sampling_rounds"):
            if getattr(self, name) < 1:
                raise VrbenchError(f"--{name.replace('_', '-')} must be at least 1, not "
                                   f"{getattr(self, name)}.")
        if self.micro_batch_size < 0:
            raise VrbenchError(f"--micro-batch-size must be 0 or more, not "
                               f"{self.micro_batch_size}.")
        if self.temperature <= 0:
            raise VrbenchError(f"--temperature must be above 0 (rollouts sample), not "
                               f"{self.temperature}.")
        if not 0 < self.top_p <= 1:
            raise VrbenchError(f"--top-p must be in (0, 1], not {self.top_p}.")
        for name in ("clip_low", "clip_high", "kl_coef", "kl_reward_coef", "adv_eps",
                     "language_coef", "min_tokens", "tis_cap"):
            if getattr(self, name) < 0:
                raise VrbenchError(f"--{name.replace('_', '-')} must be 0 or more, not "
                                   f"{getattr(self, name)}.")
        if not 0 <= self.gamma <= 1:
            raise VrbenchError(f"--gamma must be in [0, 1], not {self.gamma}.")
        if self.prompts_per_step % self.gen_chunk or (self.prompts_per_step // self.gen_chunk
                                                       ) % world:
            raise VrbenchError(f"prompts per step ({self.prompts_per_step}) must be a multiple "
                               f"of gen_chunk ({self.gen_chunk}) times the processes ({world}).")
        if self.advantage == "grpo" and self.group_size < 2:
            raise VrbenchError("grpo needs a group size of at least 2.")


@dataclass(frozen=True)
class TinySize:
    hidden: int
    layers: int
    heads: int
    vision_dim: int
    vision_depth: int
    vision_heads: int
    vocab: int = 1024  # the tokenizer's trained vocabulary
    kv_heads: int = 0  # key/value heads (0: as many as heads)
    intermediate: int = 0  # the MLP's width (0: 3 x hidden)
    vision_intermediate: int = 0  # Qwen2.5-VL's vision MLP (0: 2 x vision_dim)
    vocab_rows: int = 0  # the model's vocabulary: the tokenizer filled up with placeholder
    # tokens to this many (0: the tokenizer's own)
    window: int = 56  # Qwen2.5-VL's vision attention window, pixels
    full_attention: tuple[int, ...] = ()  # Qwen2.5-VL's full-attention vision blocks
    # (empty: the last)
    rope_theta: float = 10000.0


SIZES = {
    "tiny": TinySize(hidden=128, layers=2, heads=4, vision_dim=64, vision_depth=2, vision_heads=2),
    "small": TinySize(hidden=256, layers=4, heads=4, vision_dim=128, vision_depth=4,
                      vision_heads=4),
    "base": TinySize(hidden=512, layers=6, heads=8, vision_dim=256, vision_depth=6,
                     vision_heads=8),
    # Qwen2.5-VL-3B's published dimensions (3.8B parameters with its vocabulary), for a
    # realistic-size check on a GPU: random weights, the small tokenizer filled up
    "3b": TinySize(hidden=2048, layers=36, heads=16, kv_heads=2, intermediate=11008,
                   vision_dim=1280, vision_depth=32, vision_heads=16, vision_intermediate=3420,
                   vocab_rows=151936, window=112, full_attention=(7, 15, 23, 31),
                   rope_theta=1e6),
}

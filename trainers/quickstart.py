"""The main job: "does RL generalise better than SFT?" end to end on a CPU.

1. build the tiny reference model (random weights) and score it;
2. SFT warm start on the ID train split (a random model earns no RL reward);
3. from that same checkpoint, two arms with equal data and update budgets: more SFT, and RL
   (`arm_steps` optimizer steps over `prompts` prompts each);
4. score every final checkpoint on ID validation and OOD test; write a table and the
   dynamics figure.

Every stage resumes: running it again continues where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness import leaderboard
from harness.plots import plot_dynamics
from harness.store import write_text_atomic
from tasks.errors import VrbenchError
from trainers import common, rl, sft, tiny


@dataclass
class QuickstartConfig:
    out: str = "runs/quickstart"  # where every stage, its runs and the summary go
    size: str = "small"  # the tiny reference model: tiny, small or base
    tasks: str = "id"  # the training tasks (their train split)
    seeds: tuple[int, ...] = (0,)  # one warm start and two arms per seed
    warm_steps: int = 500  # SFT warm-start steps
    warm_lr: float = 2e-3  # the warm start's peak learning rate
    warm_eval_every: int = 100  # score the warm start every N steps: its learning curve
    reflective: float = 0.5  # share of warm-start solutions with a reflective check
    arm_steps: int = 40  # optimizer steps of each arm
    prompts: int = 16  # prompts (SFT examples) per optimizer step, in both arms
    group_size: int = 4  # RL responses per prompt
    arm_lr: float = 1e-4  # the same constant learning rate in both arms
    kl_coef: float = 0.01  # RL's k3 KL loss to the warm start
    eval: common.CheckpointEval = field(default_factory=common.CheckpointEval)  # how every
    # checkpoint is scored


    def check(self) -> None:
        common.check_finite(self)
        if self.size not in tiny.SIZES:
            raise VrbenchError(f"unknown size {self.size!r}; choose one of "
                               f"{', '.join(tiny.SIZES)}.")
        for name in ("warm_steps", "arm_steps", "prompts"):
            if getattr(self, name) < 1:
                raise VrbenchError(f"--{name.replace('_', '-')} must be at least 1.")
        if self.group_size < 2:
            raise VrbenchError("--group-size must be at least 2 (RL compares responses).")
        if not self.seeds:
            raise VrbenchError("--seeds needs at least one seed.")
        if self.warm_lr <= 0 or self.arm_lr <= 0 or self.kl_coef < 0 or self.warm_eval_every < 0:
            raise VrbenchError("learning rates must be above 0, --kl-coef and "
                               "--warm-eval-every 0 or more.")
        if not 0 <= self.reflective <= 1:
            raise VrbenchError(f"--reflective is a share in [0, 1], not {self.reflective}.")
        self.eval.check()


def run(cfg: QuickstartConfig) -> str:
    cfg.check()
    out = Path(cfg.out)
    model = out / f"model-{cfg.size}"
    if not (model / "config.json").exists():
        print(f"building the tiny reference model in {model}")
        tiny.build(model, size=cfg.size, seed=0)
    untrained = out / "untrained"
    untrained.mkdir(parents=True, exist_ok=True)
    common.evaluate_checkpoint(model, untrained, 0, 0.0, cfg.eval, "untrained", 0)
    runs = [untrained]
    for seed in cfg.seeds:
        base = out / f"seed{seed}"
        print(f"[seed {seed}] SFT warm start: {cfg.warm_steps} steps")
        warm = sft.train(sft.SFTConfig(
            model=str(model), out=str(base / "warm"), name="warm-start", tasks=cfg.tasks,
            steps=cfg.warm_steps, save_every=cfg.warm_eval_every,
            batch_size=cfg.prompts, seed=seed, resume=True, log_every=25,
            reflective=cfg.reflective, optim=common.OptimSettings(lr=cfg.warm_lr),
            eval=cfg.eval))
        print(f"[seed {seed}] SFT arm: {cfg.arm_steps} steps from {warm}")
        sft.train(sft.SFTConfig(
            model=str(warm), out=str(base / "sft"), name="sft-arm", tasks=cfg.tasks,
            steps=cfg.arm_steps,
            batch_size=cfg.prompts, seed=seed + 1000, resume=True, log_every=10,
            save_every=max(1, cfg.arm_steps // 2), reflective=cfg.reflective,
            optim=common.OptimSettings(lr=cfg.arm_lr, warmup=0.0, min_lr_ratio=1.0),
            eval=cfg.eval))
        print(f"[seed {seed}] RL arm: {cfg.arm_steps} steps from {warm}")
        rl.train(rl.RLConfig(
            model=str(warm), out=str(base / "rl"), name="rl-arm", tasks=cfg.tasks,
            steps=cfg.arm_steps,
            prompts_per_step=cfg.prompts, group_size=cfg.group_size, gen_chunk=cfg.prompts,
            seed=seed + 1000, resume=True, save_every=max(1, cfg.arm_steps // 2),
            kl_coef=cfg.kl_coef,
            optim=common.OptimSettings(lr=cfg.arm_lr, warmup=0.0, min_lr_ratio=1.0),
            eval=cfg.eval))
        runs += [base / "warm", base / "sft", base / "rl"]
    figure = plot_dynamics(runs, out / "dynamics.png",
                           offsets={"sft": cfg.warm_steps, "rl": cfg.warm_steps})
    board = leaderboard.write(out, out / "leaderboard",
                              f"vrbench leaderboard --root {out} --out {out / 'leaderboard'}")
    table = summary_table(leaderboard.build(out), model.name, cfg.eval.presets[0])
    write_text_atomic(out / "summary.md", table + "\n")
    print("\n" + table)
    print(f"\nwrote {out / 'summary.md'}, {figure}, the leaderboard ({board['markdown']}, "
          f"{board['html'].name}, {board['csv'].name}), and per-stage checkpoints, logs "
          f"(train_log.jsonl, dynamics.jsonl) and evaluation runs under {out}")
    return table


STAGES = (("SFT warm start", "warm-start"), ("+ SFT arm", "sft-arm"), ("+ RL arm", "rl-arm"))


def summary_table(board: leaderboard.Board, untrained: str, preset: str = "greedy") -> str:
    """The leaderboard's rows of each stage's final checkpoint (the untrained model, the warm
    start and both arms): ID and OOD accuracy (macro over tasks), the ID - OOD drop, response
    length and reflection ratio (means over all tasks), mean +- std over seeds; the last row
    is the accuracy of always giving each task's most common answer."""
    def final(name: str) -> leaderboard.Row | None:
        rows = [r for r in board.rows if r.name == name and r.preset == preset]
        return max(rows, key=lambda r: r.step or 0) if rows else None

    def cell(c: leaderboard.Cell | None, pct: bool = True) -> str:
        if c is None or c.mean is None:
            return "-"
        scale = 100 if pct else 1
        return f"{c.mean * scale:.1f}" + ("" if c.std is None else f" ± {c.std * scale:.1f}")

    lines = ["| stage | seeds | ID acc % | OOD acc % | ID - OOD | length (tokens) | "
             "reflection % |", "|" + "---|" * 7]
    for label, name in (("untrained", untrained), *STAGES):
        row = final(name)
        if row is not None:
            c = row.cells
            lines.append(f"| {label} | {len(row.seeds)} | {cell(c.get('ID avg'))} | "
                         f"{cell(c.get('OOD avg'))} | {cell(c.get('ID - OOD'))} | "
                         f"{cell(c.get('length'), pct=False)} | {cell(c.get('reflection'))} |")
    base = {k: leaderboard.Cell(v) for k, v in board.baseline.items()}
    lines.append(f"| always the most common answer | - | {cell(base.get('ID avg'))} | "
                 f"{cell(base.get('OOD avg'))} | | | |")
    return "\n".join(lines)

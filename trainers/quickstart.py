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

import statistics
from dataclasses import dataclass, field
from pathlib import Path

from harness import leaderboard
from harness.plots import plot_dynamics
from harness.store import read_jsonl
from trainers import common, rl, sft, tiny


@dataclass
class QuickstartConfig:
    out: str = "runs/quickstart"
    size: str = "small"
    tasks: str = "id"  # the training tasks (their train split)
    seeds: tuple[int, ...] = (0,)
    warm_steps: int = 500
    warm_lr: float = 2e-3
    warm_eval_every: int = 100  # score the warm start every N steps: its learning curve
    reflective: float = 0.5  # share of warm-start solutions with a reflective check
    arm_steps: int = 40
    prompts: int = 16  # prompts (SFT examples) per optimizer step, in both arms
    group_size: int = 4  # RL responses per prompt
    arm_lr: float = 1e-4  # the same constant learning rate in both arms
    kl_coef: float = 0.01  # RL's k3 KL loss to the warm start
    eval: common.EvalSettings = field(default_factory=lambda: common.EvalSettings(limit=64))


def run(cfg: QuickstartConfig) -> str:
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
    table = summary_table(runs)
    (out / "summary.md").write_text(table + "\n")
    board = leaderboard.write(out, out / "leaderboard",
                              f"vrbench leaderboard --root {out} --out {out / 'leaderboard'}")
    print("\n" + table)
    print(f"\nwrote {out / 'summary.md'}, {figure}, the leaderboard ({board['markdown']}, "
          f"{board['html'].name}, {board['csv'].name}), and per-stage checkpoints, logs "
          f"(train_log.jsonl, dynamics.jsonl) and evaluation runs under {out}")
    return table


def _final_rows(run: Path) -> list[dict]:
    rows = read_jsonl(run / "dynamics.jsonl")
    last = max(r["step"] for r in rows)
    return [r for r in rows if r["step"] == last]


def summary_table(runs: list[Path]) -> str:
    """Final-checkpoint accuracy per domain (macro over tasks), mean +- std over seeds, with
    the ID-to-OOD drop, response length and reflection ratio; the last row is the accuracy
    of always giving each task's most common answer."""
    stages: dict[str, list[dict]] = {}
    for run in runs:
        rows = _final_rows(run)
        name = {"untrained": "untrained", "warm": "SFT warm start", "sft": "+ SFT arm",
                "rl": "+ RL arm"}[run.name]
        means = {}
        for dom in ("id", "ood"):
            sel = [r for r in rows if r["domain"] == dom]
            if sel:
                means[dom] = {k: statistics.fmean(r[k] for r in sel)
                               for k in ("acc", "majority_baseline")}
        # length and reflection: the mean over all tasks, as in the leaderboard
        means["all"] = {k: statistics.fmean(r[k] for r in rows if r[k] is not None)
                         for k in ("length_mean", "reflection_ratio")}
        stages.setdefault(name, []).append(means)

    def cell(vals: list[float], pct: bool = True) -> str:
        scale = 100 if pct else 1
        m = statistics.fmean(vals) * scale
        if len(vals) < 2:
            return f"{m:.1f}"
        return f"{m:.1f} ± {statistics.stdev(vals) * scale:.1f}"

    head = ("| stage | seeds | ID acc % | OOD acc % | ID - OOD | length (tokens) | "
            "reflection % |")
    lines = [head, "|" + "---|" * 7]
    for name, per_seed in stages.items():
        ids = [s["id"]["acc"] for s in per_seed if "id" in s]
        oods = [s["ood"]["acc"] for s in per_seed if "ood" in s]
        gaps = [s["id"]["acc"] - s["ood"]["acc"] for s in per_seed if "id" in s and "ood" in s]
        lens = [s["all"]["length_mean"] for s in per_seed]
        refl = [s["all"]["reflection_ratio"] for s in per_seed]
        lines.append(f"| {name} | {len(per_seed)} | {cell(ids)} | {cell(oods)} | {cell(gaps)} | "
                     f"{cell(lens, pct=False)} | {cell(refl)} |")
    chance = stages["untrained"][0]
    lines.append(f"| always the most common answer | - | "
                 f"{cell([chance['id']['majority_baseline']])} | "
                 f"{cell([chance['ood']['majority_baseline']])} | | | |")
    return "\n".join(lines)

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

import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch

from harness.likelihood import kl
from harness.reports import claims, compare, leaderboard
from harness.reports.plots import plot_dynamics, plot_pareto
from harness.reports.tables import for_terminal
from harness.runs.index import index
from harness.runs.store import make_dirs, no_link, read_jsonl, write_text_atomic
from trainers import rl, sft, tiny
from trainers.checkpoints import checkpoint_dir
from trainers.config import OptimSettings
from trainers.dynamics import eval_run_dir, evaluate_checkpoint
from vrbench.config import QuickstartConfig


@dataclass(frozen=True)
class Arm:
    trainer: str  # sft or rl
    lr: float
    name: str  # its name in results and leaderboards
    folder: str  # under the seed's folder


def arms(cfg: QuickstartConfig) -> list[Arm]:
    """The two arms at their learning rates, then the sweep's other learning rates."""
    out = [Arm("sft", cfg.sft_lr, "sft-arm", "sft"), Arm("rl", cfg.rl_lr, "rl-arm", "rl")]
    for lr in cfg.sweep_lrs:
        for trainer, own in (("sft", cfg.sft_lr), ("rl", cfg.rl_lr)):
            if lr != own:
                out.append(Arm(trainer, lr, f"{trainer}-arm-lr{lr:g}", f"{trainer}-lr{lr:g}"))
    return out


def long_arm(cfg: QuickstartConfig) -> Arm | None:
    """The RL arm run `long_rl_steps` (the length trajectory), at `long_rl_lr` (default: the
    RL arm's)."""
    lr = cfg.rl_lr if cfg.long_rl_lr is None else cfg.long_rl_lr
    return Arm("rl", lr, claims.LONG_ARM, "rl-long") if cfg.long_rl_steps else None


def _every(steps: int, points: int) -> int:
    return max(1, steps // points)


def _arm_config(cfg: QuickstartConfig, arm: Arm, warm: Path, base: Path, seed: int
                ) -> sft.SFTConfig | rl.RLConfig:
    steps, points = ((cfg.long_rl_steps, LONG_POINTS) if arm == long_arm(cfg)
                     else (cfg.arm_steps, cfg.arm_points))
    common_kw = dict(model=str(warm), out=str(no_link(base / arm.folder, cfg.out)), name=arm.name,
                     tasks=cfg.tasks, steps=steps, seed=seed + 1000, resume=True,
                     save_every=_every(steps, points), eval=cfg.eval,
                     optim=OptimSettings(lr=arm.lr, warmup=0.0, min_lr_ratio=1.0))
    if arm.trainer == "sft":
        return sft.SFTConfig(batch_size=cfg.prompts, log_every=10, reflective=cfg.reflective,
                             **common_kw)
    return rl.RLConfig(prompts_per_step=cfg.prompts, group_size=cfg.group_size,
                       gen_chunk=cfg.prompts, kl_coef=cfg.kl_coef, **common_kw)


def _reward_check(cfg: QuickstartConfig, warm: Path, base: Path, seed: int) -> dict:
    """The RL arm's training reward against the warm start's on the same prompts (those of
    its last `REWARD_STEPS` steps, sampled as in training): rl/reward_check.json."""
    rcfg = _arm_config(cfg, arms(cfg)[1], warm, base, seed)
    path = base / "rl" / "reward_check.json"
    if path.exists():
        return json.loads(path.read_text())
    steps = range(max(0, cfg.arm_steps - REWARD_STEPS), cfg.arm_steps)
    out = {"warm": rl.reward_on_steps(str(warm), rcfg, steps),
           "rl": rl.reward_on_steps(str(checkpoint_dir(base / "rl", cfg.arm_steps)),
                                    rcfg, steps)}
    write_text_atomic(path, json.dumps(out, indent=2) + "\n")
    return out


def _arm_checkpoints(cfg: QuickstartConfig, base: Path, arm: Arm) -> list[Path]:
    every = _every(cfg.arm_steps, cfg.arm_points)
    steps = sorted({*range(every, cfg.arm_steps + 1, every), cfg.arm_steps})
    return [checkpoint_dir(base / arm.folder, s) for s in steps]


def long_logs(cfg: QuickstartConfig) -> dict[int, list[dict]]:
    """The long RL arm's train_log.jsonl rows, per seed that has one."""
    arm = long_arm(cfg)
    logs = {s: Path(cfg.out) / f"seed{s}" / arm.folder / "train_log.jsonl"
            for s in cfg.seeds} if arm else {}
    return {s: read_jsonl(p) for s, p in logs.items() if p.is_file()}


def _kl(cfg: QuickstartConfig, warm: Path, base: Path) -> dict:
    """KL(warm start || each arm checkpoint) on the ID validation prompts: kl.json."""
    path = base / "kl.json"
    ckpts = [c for arm in arms(cfg) for c in _arm_checkpoints(cfg, base, arm)]
    if path.exists():
        done = json.loads(path.read_text())
        if set(done["kl"]) == {str(c) for c in ckpts}:
            return done
    kcfg = kl.KLConfig(limit=cfg.kl_prompts, max_new_tokens=cfg.eval.max_new_tokens or 96,
                       seed=0)
    kl.write(path, str(warm), kl.measure(str(warm), [str(c) for c in ckpts], cfg.tasks, kcfg),
             kcfg)
    return json.loads(path.read_text())


def _final_runs(cfg: QuickstartConfig, base: Path, folder: str, steps: int) -> list[Path]:
    """The evaluation runs (ID on validation, OOD on test) of a stage's last checkpoint."""
    name = checkpoint_dir(base / folder, steps).name
    return [eval_run_dir(base / folder, name, cfg.eval.presets[0], split)
            for _, split in cfg.eval.scored()]


def train_seed(cfg: QuickstartConfig, model: Path, seed: int) -> tuple[dict, dict]:
    """One seed's stages: its warm start, every arm, the reward check and the arms' KL to
    the warm start (returned: the reward check, the KL)."""
    base = Path(cfg.out) / f"seed{seed}"
    print(f"[seed {seed}] SFT warm start: {cfg.warm_steps} steps")
    warm = _warm_start(cfg, model, seed, cfg.warm_eval_every)
    long = long_arm(cfg)
    long_warm = warm
    if long and cfg.long_rl_terse:
        print(f"[seed {seed}] the long RL arm's warm start: {cfg.warm_steps} steps, "
              f"{cfg.long_rl_terse:.0%} of the solutions the answer alone")
        long_warm = _warm_start(cfg, model, seed, 0, terse=cfg.long_rl_terse)
    for arm in arms(cfg) + [a for a in [long] if a]:
        start = long_warm if arm == long else warm
        acfg = _arm_config(cfg, arm, start, base, seed)
        print(f"[seed {seed}] {arm.name}: {acfg.steps} steps at lr {arm.lr:g} from {start}")
        (sft.train if arm.trainer == "sft" else rl.train)(acfg)
    rewards = _reward_check(cfg, warm, base, seed)
    print(f"[seed {seed}] KL of each arm to the warm start")
    return rewards, _kl(cfg, warm, base)


def _warm_start(cfg: QuickstartConfig, model: Path, seed: int, every: int, terse: float = 0.0
                ) -> Path:
    """A seed's warm start, scored every `every` steps (0: at its last): in `warm`, or with
    `terse` of its solutions the answer alone, in `warm-terse` (the long RL arm's)."""
    out = no_link(Path(cfg.out) / f"seed{seed}" / ("warm-terse" if terse else "warm"), cfg.out)
    return sft.train(sft.SFTConfig(
        model=str(model), out=str(out),
        name="warm-start-terse" if terse else "warm-start", tasks=cfg.tasks,
        steps=cfg.warm_steps, save_every=every, batch_size=cfg.prompts,
        seed=seed, resume=True, log_every=25, reflective=cfg.reflective, terse=terse,
        optim=OptimSettings(lr=cfg.warm_lr), eval=cfg.eval))


def _train_seeds(cfg: QuickstartConfig, model: Path) -> dict[int, tuple[dict, dict]]:
    """Every seed's stages, `cfg.jobs` seeds at a time in processes of their own (each with
    its share of the CPU threads); in the order of `cfg.seeds`."""
    jobs = min(cfg.jobs, len(cfg.seeds))
    if jobs == 1:
        return {seed: train_seed(cfg, model, seed) for seed in cfg.seeds}
    threads = max(1, len(os.sched_getaffinity(0)) // jobs)
    print(f"training seeds {', '.join(map(str, cfg.seeds))}, {jobs} at a time "
          f"({threads} thread{'s' if threads > 1 else ''} each)")
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                             initializer=torch.set_num_threads, initargs=(threads,)) as pool:
        futures = {seed: pool.submit(train_seed, cfg, model, seed) for seed in cfg.seeds}
        return {seed: f.result() for seed, f in futures.items()}


def run(cfg: QuickstartConfig) -> str:
    cfg.check()
    out = Path(cfg.out)
    model = out / f"model-{cfg.size}"
    if not (model / "config.json").exists():
        print(f"building the tiny reference model in {model}")
        tiny.build(model, size=cfg.size, seed=0)
    untrained = make_dirs(out / "untrained", out)
    evaluate_checkpoint(model, untrained, 0, 0.0, cfg.eval, "untrained", 0)
    runs, warms = [], [untrained]  # the arms' dynamics (the sweep: in the Pareto figure)
    kls, pairs, rewards = {}, [], {}
    for seed, (reward_check, kl_json) in _train_seeds(cfg, model).items():
        rewards[seed], kls[seed] = reward_check, kl_json
        base = out / f"seed{seed}"
        warms.append(base / "warm")
        runs += [base / "sft", base / "rl"] + [base / a.folder for a in [long_arm(cfg)] if a]
        pairs.append((_final_runs(cfg, base, "sft", cfg.arm_steps),
                      _final_runs(cfg, base, "rl", cfg.arm_steps)))
    warm_figure = plot_dynamics(warms, out / "warm_dynamics.png")
    figure = plot_dynamics(runs, out / "dynamics.png")
    board = leaderboard.write(out, out / "leaderboard",
                              f"vrbench leaderboard --root {out} --out {out / 'leaderboard'}")
    points = pareto_points(cfg, kls)
    pareto = plot_pareto(points, out / "pareto.png")
    write_text_atomic(out / "pareto.json", json.dumps(points, indent=2) + "\n")
    long = long_arm(cfg)
    measured = claims.measure(points, long_logs(cfg), index(out), setting=long and {
        "lr": long.lr, "terse": cfg.long_rl_terse})
    write_text_atomic(out / "claims.json", json.dumps(measured, indent=2) + "\n")
    claims_figure = claims.figure(measured, points, out / "claims.png")
    write_text_atomic(out / "per_seed.json", json.dumps(
        {"reward_check": rewards, "kl": kls}, indent=2) + "\n")
    kl_by_stage = {a.name: [_kl_average(kls[s], str(_arm_checkpoints(cfg, out / f"seed{s}", a)
                                                    [-1])) for s in cfg.seeds]
                   for a in arms(cfg)[:2]}
    table = summary_table(leaderboard.build(out), model.name, cfg.eval.presets[0], kl_by_stage)
    report = "\n\n".join(["## The paper's claims, as measured", *claims.sentences(measured),
                           f"![The claims' figures]({claims_figure.name})", "## The stages",
                           table, verdict_table(pairs, list(cfg.seeds)), reward_table(rewards),
                           f"![Pareto: ID gain, OOD change and KL to the warm start]"
                           f"({pareto.name})"])
    write_text_atomic(out / "summary.md", report + "\n")
    print("\n" + for_terminal(report))
    print(f"\nwrote {out / 'summary.md'}, {claims_figure}, {warm_figure}, {figure}, {pareto}, "
          f"claims.json, the leaderboard "
          f"({board['markdown']}, {board['html'].name}, {board['csv'].name}), and per-stage "
          f"checkpoints, logs (train_log.jsonl, dynamics.jsonl), kl.json and evaluation runs "
          f"under {out}")
    return report


LONG_POINTS = 10  # checkpoints of the long RL arm
REWARD_STEPS = 5  # the RL arm's last steps whose prompts the reward check samples again

STAGES = (("SFT warm start", "warm-start"), ("+ SFT arm", "sft-arm"), ("+ RL arm", "rl-arm"))


def _kl_average(kl_json: dict, ckpt: str) -> float | None:
    """The KL over tasks (or of the one task) of a checkpoint in a kl.json."""
    rows = kl_json["kl"].get(ckpt)
    return rows[-1]["kl"] if rows else None


def summary_table(board: leaderboard.Board, untrained: str, preset: str = "greedy",
                  kl_by_stage: dict[str, list[float]] | None = None) -> str:
    """The leaderboard's rows of each stage's final checkpoint (the untrained model, the warm
    start and both arms): ID and OOD accuracy (macro over tasks), the ID - OOD drop, response
    length and reflection ratio (means over all tasks), the KL to the warm start (nats per
    response, from `kl_by_stage`: stage name -> one value per seed), mean +- std over
    seeds; the last row is the accuracy of always giving each task's most common answer."""
    def final(name: str) -> leaderboard.Row | None:
        rows = [r for r in board.rows if r.name == name and r.preset == preset]
        return max(rows, key=lambda r: r.step or 0) if rows else None

    def cell(c: leaderboard.Cell | None, pct: bool = True, digits: int = 1) -> str:
        if c is None or c.mean is None:
            return "-"
        scale = 100 if pct else 1
        return f"{c.mean * scale:.{digits}f}" + (
            "" if c.std is None else f" ± {c.std * scale:.{digits}f}")

    kl_by_stage = kl_by_stage or {}
    lines = ["| stage | seeds | ID acc % | OOD acc % | ID - OOD | length (tokens) | "
             "reflection % | KL to warm start (nats) |", "|" + "---|" * 8]
    for label, name in (("untrained", untrained), *STAGES):
        row = final(name)
        if row is not None:
            c = row.cells
            kl_cell = leaderboard.Cell.over_seeds([(v, None, None) for v in
                                                   kl_by_stage.get(name, [])])
            lines.append(f"| {label} | {len(row.seeds)} | {cell(c.get('ID avg'))} | "
                         f"{cell(c.get('OOD avg'))} | {cell(c.get('ID - OOD'))} | "
                         f"{cell(c.get('length'), pct=False)} | {cell(c.get('reflection'))} | "
                         f"{cell(kl_cell, pct=False, digits=3)} |")
    base = {k: leaderboard.Cell(v) for k, v in board.baseline.items()}
    lines.append(f"| always the most common answer | - | {cell(base.get('ID avg'))} | "
                 f"{cell(base.get('OOD avg'))} | | | | |")
    return "\n".join(lines)


def verdict_table(pairs: list[tuple[list[Path], list[Path]]], seeds: list[int]) -> str:
    """RL - SFT from each seed's final checkpoints (paired: the same problems), per task and
    per domain, per seed and over seeds (`vrbench compare` with the seeds' pairs)."""
    def cells(a: list[Path], b: list[Path]) -> dict[str, compare.Comparison]:
        out = {}
        for split in range(len(a[0]) if a else 0):  # the validation runs, then the test runs
            out |= {c.label: c for c in compare.compare([x[split] for x in a],
                                                        [y[split] for y in b])}
        return out

    sft, rl = [p[0] for p in pairs], [p[1] for p in pairs]
    columns = [cells([x], [y]) for x, y in zip(sft, rl, strict=True)]
    if len(pairs) > 1:
        columns.append(cells(sft, rl))
    header = [f"seed {s}" for s in seeds] + (["over seeds"] if len(pairs) > 1 else [])

    def fmt(c: compare.Comparison | None) -> str:
        if c is None:
            return "-"
        mc = "" if c.mcnemar is None else f", McNemar {c.mcnemar[2]:.2g}"
        return (f"{100 * c.diff:+.1f} [{100 * c.ci[0]:+.1f}, {100 * c.ci[1]:+.1f}], "
                f"p {c.p_bootstrap:.2g}{mc}")

    lines = ["RL - SFT, accuracy points at the final checkpoints (paired: the same problems); "
             "95% paired-bootstrap interval, bootstrap p, McNemar's exact p. Over seeds: each "
             "seed's pair is a stratum.", "",
             "| task | " + " | ".join(header) + " |", "|" + "---|" * (len(header) + 1)]
    for label in columns[-1]:  # ID tasks and their average, then OOD's
        lines.append(f"| {label} | " + " | ".join(fmt(col.get(label)) for col in columns)
                     + " |")
    return "\n".join(lines)


def reward_table(rewards: dict[int, dict]) -> str:
    """Per seed: the RL arm's training reward and accuracy against the warm start's, both
    sampled on the prompts of the arm's last steps."""
    lines = ["RL training reward on the prompts of its last steps, sampled as in training "
             "(T = 1, the group size): the warm start against the RL arm's last checkpoint.",
             "", "| seed | steps | responses | warm start reward | RL arm reward | "
             "warm start acc % | RL arm acc % |", "|" + "---|" * 7]
    for seed, r in rewards.items():
        w, a = r["warm"], r["rl"]
        lines.append(f"| {seed} | {w['steps'][0]}-{w['steps'][1]} | {w['responses']} | "
                     f"{w['reward']:.3f} | {a['reward']:.3f} | {100 * w['accuracy']:.1f} | "
                     f"{100 * a['accuracy']:.1f} |")
    return "\n".join(lines)


def pareto_points(cfg: QuickstartConfig, kls: dict[int, dict]) -> list[dict]:
    """Per seed, arm and saved step: the change of ID and OOD accuracy (macro, points) from
    the warm start's last checkpoint, and the KL to it."""
    out = []
    for seed in cfg.seeds:
        base = Path(cfg.out) / f"seed{seed}"
        preset = cfg.eval.presets[0]
        start = _macros(base / "warm", cfg.warm_steps, preset)
        for arm in arms(cfg):
            for ckpt in _arm_checkpoints(cfg, base, arm):
                step = int(ckpt.name.split("-")[-1])
                here = _macros(base / arm.folder, step, preset)
                if "id" not in here or "id" not in start:
                    continue
                out.append({"seed": seed, "arm": arm.name, "trainer": arm.trainer,
                            "lr": arm.lr, "step": step,
                            "id_gain": 100 * (here["id"] - start["id"]),
                            "ood_change": 100 * (here["ood"] - start["ood"])
                            if "ood" in here and "ood" in start else None,
                            "kl": _kl_average(kls[seed], str(ckpt))})
    return out


def _macros(run: Path, step: int, preset: str) -> dict[str, float]:
    """Macro accuracy per domain of a training run's checkpoint, from its dynamics.jsonl."""
    rows = [r for r in read_jsonl(run / "dynamics.jsonl")
            if r["step"] == step and r["preset"] == preset]
    by_domain: dict[str, list[float]] = {}
    for r in rows:
        by_domain.setdefault(r["domain"], []).append(r["acc"])
    return {d: sum(v) / len(v) for d, v in by_domain.items()}

"""What DAPO's dynamic sampling does to `vrbench rl`, in one run.

    python bench/dynamic_sampling.py [--seeds 0 1] [--steps 30] [--warm-steps 300]

From one SFT warm start (the quickstart's recipe at a smaller size and length), three RL
arms per seed with the same seeds, prompts per step, group size and learning rate: plain,
and with `--dynamic-sampling`, for the same number of optimizer steps; and plain at equal
generation (as many steps as it takes to sample as many groups as the dynamic arm did).
Reported: the share of groups with no reward variance, what dynamic sampling drew (groups
sampled, kept, dropped, rounds), the generation it cost, the training reward resampled on
fixed prompts (the plain arm's last steps, as the quickstart's reward check does) and ID
and OOD accuracy at the end, as paired differences (dynamic - plain, at equal steps and at
equal generation) over the seeds with bootstrap intervals.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from harness.reports import compare
from harness.runs.runner import evaluate
from harness.runs.store import read_jsonl
from trainers import rl, tiny
from trainers.checkpoints import checkpoint_dir
from trainers.config import CheckpointEval, OptimSettings, RLConfig, SFTConfig
from trainers.sft import train as sft_train

TASKS, PROMPTS = "id", 8  # training tasks; prompts a step


def _arm(warm: str, out: Path, seed: int, steps: int, dynamic: bool, lr: float) -> RLConfig:
    return RLConfig(model=warm, out=str(out), tasks=TASKS, steps=steps, seed=seed,
                    prompts_per_step=PROMPTS, group_size=4, gen_chunk=4, max_new_tokens=48,
                    dynamic_sampling=dynamic, kl_coef=0.01,
                    optim=OptimSettings(lr=lr, warmup=0.0, min_lr_ratio=1.0),
                    eval=CheckpointEval(id_tasks="", ood_tasks=""))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warm-steps", type=int, default=300)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--limit", type=int, default=50, help="evaluation samples a task")
    args = ap.parse_args()
    arms = ("plain", "dynamic", "plain-equal-generation")
    rows, runs = [], {arm: {"id": [], "ood": []} for arm in arms}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base = tiny.build(root / "tiny", size="tiny", seed=0)
        warm = str(sft_train(SFTConfig(
            model=str(base), out=str(root / "warm"), tasks=TASKS, steps=args.warm_steps,
            batch_size=16, reflective=0.5, log_every=50, optim=OptimSettings(lr=3e-3),
            eval=CheckpointEval(id_tasks="", ood_tasks=""))))
        for seed in args.seeds:
            steps = args.steps
            for name in arms:
                out = root / f"{name}-{seed}"
                cfg = _arm(warm, out, seed, steps, name == "dynamic", args.lr)
                final = rl.train(cfg)
                log = read_jsonl(out / "train_log.jsonl")
                fixed = _arm(warm, root / "plain-check", seed, args.steps, False, args.lr)
                check = rl.reward_on_steps(str(final), fixed,
                                           range(args.steps - 5, args.steps))
                for dom, split in (("id", "validation"), ("ood", "test")):
                    res = evaluate(str(final), TASKS if dom == "id" else "ood", split=split,
                                   limit=args.limit, max_new_tokens=48, progress=False,
                                   output=str(root / f"eval-{name}-{seed}-{dom}"))
                    runs[name][dom].append(res["run_dir"])
                rows.append({
                    "seed": seed, "arm": name, "steps": steps,
                    "zero_std": sum(r["zero_std_group_ratio"] for r in log) / len(log),
                    "sampled": sum(r.get("dynamic_groups_sampled", PROMPTS) for r in log),
                    "dropped": sum(r.get("dynamic_groups_dropped", 0) for r in log),
                    "rounds": sum(r.get("dynamic_rounds", 0) for r in log) / len(log),
                    "capped": sum(r.get("dynamic_capped", 0) for r in log),
                    "gen_s": sum(r["gen_seconds"] for r in log),
                    "reward": check["reward"], "acc": check["accuracy"]})
                assert checkpoint_dir(out, steps) == final
                if name == "dynamic":  # the plain arm again, sampling as many groups
                    steps = -(-rows[-1]["sampled"] // PROMPTS)
        diffs = {(plain, dom): compare.compare(runs[plain][dom], runs["dynamic"][dom])
                 for plain in ("plain", "plain-equal-generation") for dom in ("id", "ood")}
    print(f"tiny Qwen2-VL, warm start {args.warm_steps} SFT steps; RL {args.steps} steps x "
          f"{PROMPTS} prompts x 4 responses, lr {args.lr}, seeds {args.seeds}\n")
    print("| seed | arm | steps | zero-variance groups | groups sampled | dropped | extra "
          "rounds/step | capped steps | generation s | reward on fixed prompts | its accuracy |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['seed']} | {r['arm']} | {r['steps']} | {r['zero_std']:.0%} | "
              f"{r['sampled']} | "
              f"{r['dropped']} | {r['rounds']:.2f} | {r['capped']:.0f} | {r['gen_s']:.1f} | "
              f"{r['reward']:.3f} | {r['acc']:.3f} |")
    print("\ndynamic - plain arm, paired over seeds (bootstrap 95% interval):")
    for (plain, dom), comps in diffs.items():
        c = next(x for x in comps if x.label == f"[{dom} average]")
        print(f"  against {plain}, {dom}: {100 * c.acc_a:.1f} -> {100 * c.acc_b:.1f} "
              f"({100 * c.diff:+.1f} [{100 * c.ci[0]:+.1f}, {100 * c.ci[1]:+.1f}]), n={c.n}")


if __name__ == "__main__":
    main()

"""Whether longer reasoning pays: RL from a warm start that knows a terse habit and a worked
one, over seeds; the length trajectories and the length-and-seed verdict.

    python bench/length_pays.py [--seeds 0 1 2] [--terse 0.5] [--warm-steps 500]
                                [--rl-steps 200] [--rl-lr 5e-5]
    python bench/length_pays.py --seeds 1 --train-only   # one seed per process, then
    python bench/length_pays.py --report                 # the report over every seed

Per seed: the quickstart's small model and warm start (500 SFT steps on the ID tasks, half
the solutions with a reflective check), except that `--terse` of its solutions are the answer
alone (`\\boxed{target}`). The worked solutions count what the question needs before
answering, which the small model needs when trained on them alone (`tasks/synthetic.py`);
the question is whether, on a warm start that knows both habits, the longer one is more
often right and RL lengthens responses by choosing it. Then the quickstart's RL arm (16
prompts x 4, k3 KL 0.01 to the warm start) for `--rl-steps` at `--rl-lr`. (Measured over 3
seeds: it is not; RL chose the terse habit. With `--terse 0.15`, over 3 seeds, the worked
habit is the more often right one and RL drops the terse habit, but sheds the reflective
check too, so length barely moves: bench/RESULTS.md.)

Reported: per seed, the first and last 10 steps' mean rollout length, shares of terse
rollouts (nothing before the `\\boxed{}`) and of reflective ones, and training accuracy; how
often each habit was right; and the verdict of
`harness.reports.claims.length_and_seed` over the seeds' training logs (the same test as
the leaderboard's length claim).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from harness.analyzers import analyze
from harness.reports import claims
from harness.runs.store import read_jsonl
from trainers import rl, sft, tiny
from trainers.config import CheckpointEval, OptimSettings
from vrbench.config import QuickstartConfig

BLOCK = 10


def train(root: Path, seed: int, args) -> None:
    q = QuickstartConfig()
    base = root / f"seed{seed}"
    model = tiny.build(base / "model", size=q.size, seed=seed)
    warm = sft.train(sft.SFTConfig(
        model=str(model), out=str(base / "warm"), tasks=q.tasks, steps=args.warm_steps,
        batch_size=q.prompts, reflective=q.reflective, terse=args.terse, log_every=50,
        seed=seed, resume=True, optim=OptimSettings(lr=q.warm_lr),
        eval=CheckpointEval(id_tasks="", ood_tasks="")))
    rl.train(rl.RLConfig(
        model=str(warm), out=str(base / "rl"), tasks=q.tasks, steps=args.rl_steps,
        seed=seed + 1000, resume=True, save_every=args.rl_steps // 4,
        prompts_per_step=q.prompts, group_size=q.group_size, gen_chunk=q.prompts,
        kl_coef=q.kl_coef, optim=OptimSettings(lr=args.rl_lr, warmup=0.0, min_lr_ratio=1.0),
        eval=CheckpointEval(id_tasks="id", ood_tasks="", limit=64)))


def _mean(rows: list[dict], key: str) -> float:
    return statistics.fmean(r[key] for r in rows)


def _right(rows: list[dict], keep) -> str:
    picked = [r["correct"] for r in rows if keep(r)]
    return f"{statistics.fmean(picked):.2f}" if picked else "-"


def report(root: Path) -> None:
    trajectories, habits = {}, []
    print("| seed | rollout length, first -> last 10 steps | terse rollouts | reflective "
          "rollouts | train accuracy | greedy ID accuracy (length), first -> last checkpoint |"
          "\n| --- | --- | --- | --- | --- | --- |")
    for run in sorted(root.glob("seed*/rl")):
        seed = int(run.parent.name[4:])
        log = read_jsonl(run / "train_log.jsonl")
        if not log:
            continue
        trajectories[seed] = [(r["step"], r["length_mean"]) for r in log]
        rollouts = read_jsonl(run / "rollouts.jsonl")
        for r in rollouts:
            r["terse"] = r["response"].lstrip().startswith("\\boxed")
            r["reflective"] = analyze(r["response"])["has_reflection"]
            r["task"] = r["doc_id"].rsplit("-", 2)[0]
        first, last = log[:BLOCK], log[-BLOCK:]

        def share(rows, key, rollouts=rollouts):
            steps = {r["step"] for r in rows}
            return statistics.fmean(x[key] for x in rollouts if x["step"] in steps)

        by_step: dict[int, list[dict]] = {}
        for r in read_jsonl(run / "dynamics.jsonl"):
            by_step.setdefault(r["step"], []).append(r)
        greedy = " -> ".join(f"{100 * _mean(by_step[s], 'acc'):.1f} % "
                             f"({_mean(by_step[s], 'length_mean'):.1f} tokens)"
                             for s in sorted({min(by_step), max(by_step)})) if by_step else "none"
        print(f"| {seed} | {_mean(first, 'length_mean'):.1f} -> {_mean(last, 'length_mean'):.1f}"
              f" | {share(first, 'terse'):.0%} -> {share(last, 'terse'):.0%} | "
              f"{share(first, 'reflective'):.0%} -> {share(last, 'reflective'):.0%} | "
              f"{_mean(first, 'train_acc'):.2f} -> {_mean(last, 'train_acc'):.2f} | {greedy} |")
        tasks = sorted({r["task"] for r in rollouts})
        habits.append(f"| {seed} | " + " | ".join(
            f"{_right(rollouts, lambda r, t=t: r['task'] == t and r['terse'])} / "
            f"{_right(rollouts, lambda r, t=t: r['task'] == t and not r['terse'])}"
            for t in tasks) + f" | {_right(rollouts, lambda r: r['reflective'])} / "
            f"{_right(rollouts, lambda r: not r['terse'] and not r['reflective'])} |")
    if habits:
        print(f"\nhow often each habit was right, all steps: terse / worked by task, and worked "
              f"with / without the reflective check\n\n| seed | {' | '.join(tasks)} | "
              f"reflective |\n|{' --- |' * (len(tasks) + 2)}")
        print("\n".join(habits))
    v = claims.length_and_seed(trajectories)
    print()
    if v is None:
        print("length and the seed: needs at least two seeds with 20 steps each")
        return
    lo, hi = v["icc_ci95"] or (float("nan"), float("nan"))
    print(f"length and the seed, last half of training in {v['block_steps']}-step blocks: "
          f"ICC {v['icc']:.2f} [{lo:.2f}, {hi:.2f}], F test p {v['p']:.2g}; between-seed SD "
          f"{v['sd_between']:.1f} tokens, within {v['sd_within']:.1f}")
    (root / "length_verdict.json").write_text(json.dumps(v, indent=1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--terse", type=float, default=0.5)
    ap.add_argument("--warm-steps", type=int, default=QuickstartConfig().warm_steps)
    ap.add_argument("--rl-steps", type=int, default=200)
    ap.add_argument("--rl-lr", type=float, default=5e-5)
    ap.add_argument("--out", default="runs/bench-length-pays")
    ap.add_argument("--train-only", action="store_true")
    ap.add_argument("--report", action="store_true", help="only the report")
    args = ap.parse_args()
    root = Path(args.out)
    if not args.report:
        t0 = time.perf_counter()
        for seed in args.seeds:
            train(root, seed, args)
        print(f"trained seeds {args.seeds} in {time.perf_counter() - t0:.0f} s")
    if not args.train_only:
        report(root)


if __name__ == "__main__":
    main()

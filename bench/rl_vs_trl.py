"""`vrbench rl` against TRL's GRPOTrainer, side by side on the CPU, from one warm start.

    python bench/rl_vs_trl.py [--warm CHECKPOINT] [--steps 20] [--limit 100]

Both train the same warm-start checkpoint on the same ID train prompts (vrbench's prompts
and images), with vrbench's grader as the reward (correct: 1, else 0), GRPO advantages over
4 responses per prompt, 16 prompts per step, 64 new tokens at temperature 1, AdamW at a
constant lr 1e-4 (betas 0.9, 0.95; weight decay 0.01), a k3 KL loss of 0.01 to the start,
clip 0.2, token-mean loss, one PPO epoch, gradient clipping at 1, for the same number of
steps and seed. Then `vrbench eval` scores both final checkpoints (greedy, ID tasks on
validation, OOD on test) and `vrbench compare` pairs them. Seconds per step are medians
over the steps after the first; vrbench's phases are also shown with `--no-shared-prompts`
(every response repeats its prompt in the log-prob passes, as in TRL) and with that and
`--rollout-batching static` (a generate call per chunk), each run the same number of steps
(not scored). Without --warm, a warm start is trained first (the
quickstart's: 500 SFT steps of the small model).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from transformers import AutoProcessor, TrainerCallback

from harness.reports import compare
from harness.runs.runner import evaluate
from harness.runs.store import read_jsonl
from trainers import rl, sft, tiny
from trainers.config import CheckpointEval, OptimSettings
from trainers.integrations import trl_dataset, trl_reward

LR, KL, STEPS_DEFAULT = 1e-4, 0.01, 20
# vrbench without what makes its steps fast, run the same number of steps (not scored)
BASELINES = {"no-shared-prompts": {"shared_prompts": False},
             "static-rollouts-no-shared-prompts": {"shared_prompts": False,
                                                   "rollout_batching": "static"}}


def warm_start(root: Path, steps: int) -> str:
    model = tiny.build(root / "model-small", size="small", seed=0)
    return str(sft.train(sft.SFTConfig(
        model=str(model), out=str(root / "warm"), tasks="id", steps=steps, batch_size=16,
        reflective=0.5, log_every=50, resume=True, optim=OptimSettings(lr=2e-3),
        eval=CheckpointEval(id_tasks="", ood_tasks=""))))


def run_vrbench(warm: str, out: Path, steps: int, **options) -> tuple[str, list[dict]]:
    final = rl.train(rl.RLConfig(
        model=warm, out=str(out), tasks="id", steps=steps, prompts_per_step=16, group_size=4,
        gen_chunk=16, max_new_tokens=64, temperature=1.0, advantage="grpo", adv_eps=1e-4,
        kl_coef=KL, clip_low=0.2, clip_high=0.2, loss_agg="token-mean", no_eos_reward=0.0,
        min_tokens=0, language_coef=0.0, seed=0, resume=True,
        optim=OptimSettings(lr=LR, warmup=0.0, min_lr_ratio=1.0),
        eval=CheckpointEval(id_tasks="", ood_tasks=""), **options))
    return str(final), read_jsonl(out / "train_log.jsonl")


class _Clock(TrainerCallback):
    def __init__(self):
        self.times = [time.perf_counter()]

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter())


def run_trl(warm: str, out: Path, steps: int, gpu: bool = False) -> tuple[str, list[float]]:
    """TRL's GRPOTrainer with vrbench rl's settings (on a GPU: bf16 autocast, float32 weights,
    as vrbench rl runs there)."""
    import trl
    args = trl.GRPOConfig(
        output_dir=str(out), max_steps=steps, per_device_train_batch_size=64,
        num_generations=4, generation_batch_size=64, max_completion_length=64,
        temperature=1.0, top_p=1.0, learning_rate=LR, lr_scheduler_type="constant",
        warmup_steps=0, adam_beta1=0.9, adam_beta2=0.95, weight_decay=0.01,
        max_grad_norm=1.0, beta=KL, epsilon=0.2, loss_type="dapo", scale_rewards="group",
        num_iterations=1, save_strategy="no", logging_steps=1, report_to=[], use_cpu=not gpu,
        bf16=gpu, seed=0, dataloader_num_workers=0)
    clock = _Clock()
    trainer = trl.GRPOTrainer(model=warm, reward_funcs=[trl_reward], args=args,
                              train_dataset=trl_dataset("id"),
                              processing_class=AutoProcessor.from_pretrained(warm),
                              callbacks=[clock])
    trainer.train()
    final = out / "final"
    trainer.save_model(str(final))
    AutoProcessor.from_pretrained(warm).save_pretrained(final)
    return str(final), [b - a for a, b in zip(clock.times, clock.times[1:], strict=False)]


def score(model: str, root: Path, name: str, limit: int) -> list[str]:
    runs = []
    for spec, split in (("id", "validation"), ("ood", "test")):
        out = evaluate(model, spec, split=split, limit=limit, max_new_tokens=64, batch_size=32,
                       output=str(root / f"eval-{name}-{split}"), progress=False)
        runs.append(out["run_dir"])
    return runs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warm", help="warm-start checkpoint (default: train one)")
    ap.add_argument("--warm-steps", type=int, default=500)
    ap.add_argument("--steps", type=int, default=STEPS_DEFAULT)
    ap.add_argument("--limit", type=int, default=100, help="samples per task when scoring")
    ap.add_argument("--out", default="runs/bench-rl-vs-trl")
    args = ap.parse_args()
    root = Path(args.out)
    warm = args.warm or warm_start(root, args.warm_steps)
    t0 = time.perf_counter()
    ours, our_log = run_vrbench(warm, root / "vrbench", args.steps)
    t_ours = time.perf_counter() - t0
    baselines = [run_vrbench(warm, root / f"vrbench-{name}", args.steps, **options)[1]
                 for name, options in BASELINES.items()]
    t0 = time.perf_counter()
    theirs, their_steps = run_trl(warm, root / "trl", args.steps)
    t_theirs = time.perf_counter() - t0
    our_steps = [r["step_seconds"] for r in our_log]
    med_ours, med_theirs = (statistics.median(x[1:]) for x in (our_steps, their_steps))
    print(f"\nwarm start: {warm}; {args.steps} steps each")
    print(f"vrbench rl: {med_ours:.2f} s/step (median after the first), {t_ours:.0f} s in all")
    print(f"TRL GRPOTrainer: {med_theirs:.2f} s/step, {t_theirs:.0f} s in all")
    print(f"vrbench steps per second / TRL's: {med_theirs / med_ours:.2f}x")
    print("vrbench's phases, median s/step after the first (default / "
          + " / ".join(BASELINES) + "):")
    for key in ("step_seconds", "gen_seconds", "logprob_seconds", "update_seconds"):
        print(f"  {key}: " + " / ".join(f"{statistics.median(r[key] for r in log[1:]):.2f}"
                                        for log in (our_log, *baselines)))
    ours_runs, theirs_runs = score(ours, root, "vrbench", args.limit), score(
        theirs, root, "trl", args.limit)
    table = {}
    for ours_run, theirs_run in zip(ours_runs, theirs_runs, strict=True):
        for row in compare.compare(theirs_run, ours_run, n_boot=10_000):
            if row.label.startswith("["):
                table[row.label] = row
    print("\nscored by vrbench eval (greedy), paired by vrbench compare (B = vrbench, A = TRL):")
    print("| | TRL % | vrbench % | vrbench - TRL | 95% CI | p (bootstrap) |")
    print("|---|---|---|---|---|---|")
    for label, c in table.items():
        print(f"| {label} | {100 * c.acc_a:.1f} | {100 * c.acc_b:.1f} | {100 * c.diff:+.1f} | "
              f"[{100 * c.ci[0]:+.1f}, {100 * c.ci[1]:+.1f}] | {c.p_bootstrap:.3g} |")
    (root / "summary.json").write_text(json.dumps({
        "steps": args.steps, "vrbench_step_seconds": our_steps, "trl_step_seconds": their_steps,
        "speedup": med_theirs / med_ours,
        "accuracy": {k: c.as_dict() for k, c in table.items()}}, indent=2))


if __name__ == "__main__":
    main()

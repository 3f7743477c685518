"""Time RL steps on the tiny model, split into rollout, log-prob and update phases.

    python bench/rl_step.py [--size tiny] [--steps 4] [--prompts 16] [--group-size 4]

The policy is first warm-started with a short SFT (a random model answers nothing, so its
responses run to the token limit), then `--steps` RL steps run; the first is dropped as
warm-up. Figures come from the trainer's own per-step log.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch

from harness.runs.store import read_jsonl
from trainers import rl, sft, tiny
from trainers.config import CheckpointEval, OptimSettings


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="tiny")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--group-size", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    args = ap.parse_args()
    no_eval = CheckpointEval(id_tasks="count_shapes", ood_tasks="", limit=1,
                                  max_new_tokens=4)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = tiny.build(root / "model", size=args.size, seed=0)
        warm = sft.train(sft.SFTConfig(model=str(model), out=str(root / "warm"), steps=60,
                                       tasks="count_shapes", log_every=60, eval=no_eval,
                                       optim=OptimSettings(lr=3e-3)))
        rl.train(rl.RLConfig(model=str(warm), out=str(root / "rl"), steps=args.steps,
                             tasks="count_shapes", prompts_per_step=args.prompts,
                             gen_chunk=args.prompts, group_size=args.group_size,
                             max_new_tokens=args.max_new_tokens, eval=no_eval))
        log = read_jsonl(root / "rl" / "train_log.jsonl")[1:]
    phases = {"rollout (generate)": ("gen_seconds", "gen_tokens_per_s"),
              "log-probs (old policy, no grad)": ("logprob_seconds", "logprob_tokens_per_s"),
              "update (forward + backward + step)": ("update_seconds", "update_tokens_per_s")}
    total = sum(statistics.fmean(r[k] for r in log) for k, _ in phases.values())
    print(f"model {args.size}, {args.prompts} prompts x {args.group_size} responses, "
          f"{statistics.fmean(r['length_mean'] for r in log):.1f} tokens per response, "
          f"{torch.get_num_threads()} threads, mean of {len(log)} steps")
    for name, (sec, tps) in phases.items():
        s = statistics.fmean(r[sec] for r in log)
        print(f"{name:36s} {s:6.2f} s  {100 * s / total:5.1f}%  "
              f"{statistics.fmean(r[tps] for r in log):8.0f} tokens/s")


if __name__ == "__main__":
    main()

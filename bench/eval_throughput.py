"""Samples/s of `vrbench eval` against a naive one-sample-at-a-time loop, in one run.

    python bench/eval_throughput.py [--n 64] [--batch-size 16] [--max-new-tokens 64]

Both sides use the same tiny model, task, samples and greedy settings. The naive loop is
what a user writes first: processor + `model.generate` per sample. The harness side is the
full `evaluate` call (scoring, analyzers, the run directory written as it goes).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

import tasks
from harness.backends.chat import chat_text
from harness.runs.runner import evaluate
from tasks import decode_images
from trainers import tiny


def naive(model_dir: str, task_name: str, n: int, max_new_tokens: int) -> float:
    processor = AutoProcessor.from_pretrained(model_dir)
    model = AutoModelForImageTextToText.from_pretrained(model_dir).eval()
    task = tasks.load(task_name)
    samples = task.samples("test", n)
    t0 = time.perf_counter()
    for s in samples:
        text = chat_text(processor, task.prompt(s), 1)
        enc = processor(text=[text], images=decode_images(s), return_tensors="pt")
        with torch.inference_mode():
            model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False)
    return n / (time.perf_counter() - t0)


def harness(model_dir: str, task_name: str, n: int, max_new_tokens: int, batch_size: int,
            root: Path) -> float:
    t0 = time.perf_counter()
    evaluate(model_dir, task_name, limit=n, max_new_tokens=max_new_tokens,
             batch_size=batch_size, output=root / f"bs{batch_size}", progress=False)
    return n / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--task", default="count_shapes")
    ap.add_argument("--size", default="tiny")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model_dir = str(tiny.build(root / "model", size=args.size, seed=0))
        tasks.load(args.task).samples("test", args.n)  # warm the data build for both sides
        base = naive(model_dir, args.task, args.n, args.max_new_tokens)
        one = harness(model_dir, args.task, args.n, args.max_new_tokens, 1, root)
        batched = harness(model_dir, args.task, args.n, args.max_new_tokens, args.batch_size,
                          root)
    print(f"model {args.size}, task {args.task}, {args.n} samples, {args.max_new_tokens} new "
          f"tokens, greedy, {torch.get_num_threads()} threads")
    print(f"naive loop (1 at a time):     {base:7.2f} samples/s  1.00x")
    print(f"vrbench eval, batch 1:        {one:7.2f} samples/s  {one / base:.2f}x")
    print(f"vrbench eval, batch {args.batch_size:<3}       {batched:7.2f} samples/s  "
          f"{batched / base:.2f}x")


if __name__ == "__main__":
    main()

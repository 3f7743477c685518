"""Evaluation at scale, in one run: vrbench against lm-eval and against the bare loop, and
data-parallel ranks against one process.

    python bench/eval_scale.py [--sft-steps 300] [--limit 64]

1. Whole process: `vrbench eval` against lm-eval's `hf-multimodal` on the same 4 tasks x
   `--limit` samples (exported with `vrbench export-lmeval`), same model, greedy, same token
   limit and batch size: wall time of each command, start-up included.
2. In process: `evaluate()` (greedy: continuous batching, `--batch-size` rows in flight)
   against a bare loop of processor + batched `model.generate` over the same samples in the
   same order, batches of `--batch-size` (best of three, interleaved; the model loaded
   beforehand on both sides), on a model SFT'd so that its responses end on their own; at
   each of `--in-process-tokens` (a short limit most responses end within, and vrbench's
   default of 256, where the responses that do not end run on). The bare loop runs the
   model as transformers loads it, and again with its patch embedding run as vrbench runs
   it (`harness.backends.patch_embedding`), to tell the decoding's share from that one's; and
   `evaluate()` again with its decode steps through the multimodal wrapper's forward, as
   they ran before they went straight to the language model; and one decode step alone
   both ways (16 rows after their prefill, 60 steps, best of five, interleaved).
3. `vrbench eval --data-parallel 2` against one process, both with one thread per process:
   generation throughput (the slowest rank's seconds) and the whole command's.

Last, the share of the CPU time the hypervisor gave other machines while it ran (steal): on
a shared virtual machine, the sign of a run whose timings are noise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

import tasks
from harness.backends import continuous, patch_embedding
from harness.backends.chat import chat_text
from harness.backends.hf import HFBackend
from harness.runs.runner import evaluate
from harness.runs.store import read_jsonl
from tasks import decode_images
from trainers import tiny
from trainers.config import CheckpointEval, OptimSettings, SFTConfig
from trainers.sft import train

TASKS = "count_shapes,sides_sum,compare_count,bar_chart"


def _cpu_ticks() -> tuple[int, int] | None:
    """(the CPUs' ticks so far, those of them the hypervisor gave other machines: steal),
    from /proc/stat; None where there is none."""
    try:
        ticks = [int(x) for x in Path("/proc/stat").read_text().split()[1:9]]
    except (OSError, ValueError):
        return None
    return sum(ticks), ticks[7]


def _wall(cmd: list[str], env: dict | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    return time.perf_counter() - t0


def bare_loop(model_dir: str, limit: int, batch: int, tokens: int, products: bool = False
              ) -> float:
    """Seconds of processor + batched greedy `generate` over the same samples, in order
    (with `products`, the patch embedding run as vrbench runs it)."""
    processor = AutoProcessor.from_pretrained(model_dir)
    processor.tokenizer.padding_side = "left"
    model = AutoModelForImageTextToText.from_pretrained(model_dir).eval()
    if products:
        patch_embedding.as_products(model)
    work = [(t, s) for t in tasks.resolve(TASKS) for s in t.samples("test", limit)]
    t0 = time.perf_counter()
    for i in range(0, len(work), batch):
        chunk = work[i:i + batch]
        enc = processor(text=[chat_text(processor, t.prompt(s), 1) for t, s in chunk],
                        images=[im for _, s in chunk for im in decode_images(s)],
                        padding=True, return_tensors="pt")
        with torch.inference_mode():
            model.generate(**enc, max_new_tokens=tokens, do_sample=False)
    return time.perf_counter() - t0


def in_process(model_dir: str, limit: int, batch: int, tokens: int, root: Path,
               wrapper: bool = False) -> float:
    """Seconds of `evaluate()` with the model already loaded, as the bare loop has it (with
    `wrapper`, its decode steps through the multimodal wrapper's forward)."""
    shutil.rmtree(root, ignore_errors=True)
    engine = HFBackend(model_dir)
    through_wrapper = mock.patch.object(continuous, "_direct", return_value=None)
    with through_wrapper if wrapper else contextlib.nullcontext():
        t0 = time.perf_counter()
        evaluate(model_dir, TASKS, limit=limit, batch_size=batch, max_new_tokens=tokens,
                 output=str(root), progress=False, engine=engine)
        return time.perf_counter() - t0


def step_ms(model_dir: str, rows: int = 16, steps: int = 60) -> dict[str, float]:
    """Milliseconds of one greedy decode step of `rows` rows after their prefill, straight
    through the language model and through the multimodal wrapper (best of five each)."""
    engine = HFBackend(model_dir)
    decoder = continuous.ContinuousDecoder(engine.model, engine.eos_ids, engine.pad_id)
    straight = decoder.direct
    work = [(t, s) for t in tasks.resolve("count_shapes") for s in t.samples("test", rows)]
    enc = engine.processor(text=[chat_text(engine.processor, t.prompt(s), 1) for t, s in work],
                           images=[im for _, s in work for im in decode_images(s)],
                           padding=True, return_tensors="pt")
    best = {"straight": float("inf"), "wrapper": float("inf")}
    with torch.inference_mode():
        for _ in range(5):
            for way in best:
                logits, state = decoder._prefill(dict(enc))
                decoder.direct = straight if way == "straight" else None
                token = logits.argmax(-1)
                t0 = time.perf_counter()
                for _ in range(steps):
                    token = decoder._step(token, state).argmax(-1)
                best[way] = min(best[way], (time.perf_counter() - t0) / steps * 1000)
    return best


def _shape(run: Path, batch: int, tokens: int) -> str:
    """How long the responses are, and the decode steps static batches of `batch` take
    against the fewest `batch` rows in flight could."""
    lengths = [a["n_tokens"] for r in read_jsonl(run / "samples.jsonl") for a in r["analysis"]]
    static = sum(max(lengths[i:i + batch]) for i in range(0, len(lengths), batch))
    return (f"mean {sum(lengths) / len(lengths):.1f} tokens, "
            f"{sum(x >= tokens for x in lengths) / len(lengths):.0%} at the limit; static "
            f"batches {static} steps, at best {sum(lengths) / batch:.0f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sft-steps", type=int, default=300)
    ap.add_argument("--limit", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--in-process-tokens", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--dp-limit", type=int, default=192, help="samples a task, data-parallel")
    args = ap.parse_args()
    n, b, k = args.limit, args.batch_size, args.max_new_tokens
    ticks = _cpu_ticks()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base = tiny.build(root / "tiny", size="tiny", seed=0)
        model = str(train(SFTConfig(
            model=str(base), out=str(root / "sft"), tasks="count_shapes,sides_sum,compare_count",
            steps=args.sft_steps, batch_size=16, log_every=50, optim=OptimSettings(lr=3e-3),
            eval=CheckpointEval(id_tasks="", ood_tasks="", limit=8))))
        for t in tasks.resolve(TASKS):
            t.samples("test", n)  # the data built once, for every side
        vr = [sys.executable, "-m", "vrbench", "eval", "--model", model, "--tasks", TASKS,
              "--limit", str(n), "--batch-size", str(b), "--max-new-tokens", str(k),
              "--no-progress"]
        subprocess.run([sys.executable, "-m", "vrbench", "export-lmeval", str(root / "lm"),
                        "--tasks", TASKS, "--limit", str(n), "--max-new-tokens", str(k)],
                       check=True, capture_output=True)
        lm = [sys.executable, "-m", "lm_eval", "--model", "hf-multimodal", "--model_args",
              f"pretrained={model},max_images=1", "--apply_chat_template", "--include_path",
              str(root / "lm"), "--tasks", ",".join(f"vrbench_{t}" for t in TASKS.split(",")),
              "--batch_size", str(b), "--output_path", str(root / "lm-out")]
        whole = {"vrbench": [], "lm-eval": []}
        for i in range(2):
            whole["vrbench"].append(_wall(vr + ["--output", str(root / f"vr{i}")]))
            whole["lm-eval"].append(_wall(lm))
        lengths = [a["n_tokens"] for r in read_jsonl(root / "vr0" / "samples.jsonl")
                   for a in r["analysis"]]
        ours: dict[int, list] = {}
        bare: dict[int, list] = {}
        bare_products: dict[int, list] = {}
        ours_wrapper: dict[int, list] = {}
        shape = {}
        for tokens in args.in_process_tokens:
            ours[tokens], bare[tokens], bare_products[tokens] = [], [], []
            ours_wrapper[tokens] = []
            for i in range(3):
                ours[tokens].append(in_process(model, n, b, tokens, root / f"ip{tokens}-{i}"))
                ours_wrapper[tokens].append(in_process(model, n, b, tokens,
                                                       root / f"ipw{tokens}-{i}", wrapper=True))
                bare[tokens].append(bare_loop(model, n, b, tokens))
                bare_products[tokens].append(bare_loop(model, n, b, tokens, products=True))
            shape[tokens] = _shape(root / f"ip{tokens}-0", b, tokens)
        step = step_ms(model)
        same_ways = all((root / f"ip{t}-0" / "samples.jsonl").read_bytes()
                        == (root / f"ipw{t}-0" / "samples.jsonl").read_bytes() for t in ours)
        one_thread = dict(os.environ, OMP_NUM_THREADS="1")
        dp, gen = {}, {}
        n_dp = 4 * args.dp_limit
        for ranks in (1, 2):
            out = root / f"dp{ranks}"
            dp[ranks] = _wall(vr + ["--limit", str(args.dp_limit), "--output", str(out),
                                    "--data-parallel", str(ranks)], one_thread)
            res = json.loads((out / "results.json").read_text())["distributed"]
            gen[ranks] = max(res["seconds_per_rank"])
        same = ((root / "dp1" / "samples.jsonl").read_bytes()
                == (root / "dp2" / "samples.jsonl").read_bytes())
    total = 4 * n
    print(f"tiny Qwen2-VL SFT'd {args.sft_steps} steps; {TASKS}; {n} samples each ({total}); "
          f"batch {b}; {k} new tokens; greedy; {torch.get_num_threads()} threads")
    print(f"responses: mean {sum(lengths) / len(lengths):.1f} tokens, "
          f"{sum(x < k for x in lengths) / len(lengths):.0%} end before the limit\n")
    print("| comparison | A | B | A / B |\n| --- | ---: | ---: | ---: |")
    v, lme = min(whole["vrbench"]), min(whole["lm-eval"])
    print(f"| whole process: lm-eval hf-multimodal (A) vs vrbench eval (B), s | {lme:.1f} | "
          f"{v:.1f} | {lme / v:.2f}x |")
    for tokens in args.in_process_tokens:
        print(f"| in process, {tokens} new tokens ({shape[tokens]}): evaluate() (A) vs bare "
              f"batched generate loop (B), s | {min(ours[tokens]):.2f} | "
              f"{min(bare[tokens]):.2f} | {min(ours[tokens]) / min(bare[tokens]):.2f}x |")
        print(f"| ... the bare loop with the patch embedding as a product (B), s | "
              f"{min(ours[tokens]):.2f} | {min(bare_products[tokens]):.2f} | "
              f"{min(ours[tokens]) / min(bare_products[tokens]):.2f}x |")
        print(f"| ... evaluate() with decode steps through the multimodal wrapper (A) vs the "
              f"bare loop (B), s | {min(ours_wrapper[tokens]):.2f} | {min(bare[tokens]):.2f} "
              f"| {min(ours_wrapper[tokens]) / min(bare[tokens]):.2f}x |")
    print(f"| one decode step of 16 rows: straight to the language model (A) vs through the "
          f"multimodal wrapper (B), ms | {step['straight']:.2f} | {step['wrapper']:.2f} | "
          f"{step['straight'] / step['wrapper']:.2f}x |")
    print(f"| data-parallel, 1 thread a rank, {n_dp} samples: 2 ranks (A) vs 1 (B), "
          f"samples/s of generation | {n_dp / gen[2]:.1f} | {n_dp / gen[1]:.1f} | "
          f"{gen[1] / gen[2]:.2f}x |")
    print(f"| ... whole command, start-up included | {n_dp / dp[2]:.1f} | {n_dp / dp[1]:.1f} | "
          f"{dp[1] / dp[2]:.2f}x |")
    print(f"\nsamples.jsonl of 1 and 2 ranks identical: {same}; with decode steps "
          f"through the wrapper and straight: {same_ways}")
    end = _cpu_ticks()
    if ticks and end and end[0] > ticks[0]:
        print(f"CPU time the hypervisor gave other machines while this ran (steal): "
              f"{(end[1] - ticks[1]) / (end[0] - ticks[0]):.1%} (timings of a run with more "
              f"than a few % are noisy)")


if __name__ == "__main__":
    main()

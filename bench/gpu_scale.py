"""At a realistic size on a GPU: `vrbench eval` against the bare generate loop and `vrbench rl`
against TRL's GRPOTrainer, on a model of Qwen2.5-VL-3B's published dimensions with random
weights (nothing downloaded).

    python bench/gpu_scale.py [--out /tmp/gpu-scale] [--samples 128] [--batch-sizes 8 32 128]
                              [--rl-steps 4]
    python bench/gpu_scale.py --size tiny --samples 16 --batch-sizes 2 4 --rl-steps 2
        # the same script at toy size, on the CPU when there is no GPU (a test runs it)

The default size needs a CUDA GPU: without one the script says so and exits 0. Sized to
finish in about 8 minutes on one H200 (carry a `trl` wheel where the machine has none).
What it measures:

1. Evaluation, bfloat16 (float32 on the CPU): for each batch size, `evaluate()` (the hf
   backend: greedy requests with continuous batching) and a bare loop of processor + batched
   `model.generate` over the same samples (the model as transformers loads it): seconds,
   samples/s, generated tokens/s, peak GPU memory. A random model answers to the token limit,
   so this is the worst case for continuous batching: every row runs as long as the others.
2. Batch invariance: the share of samples whose greedy response differs between batch
   sizes 1 and 32 (bf16 kernels do not promise invariance), and between world size 1 and 2
   where the machine has two GPUs (`vrbench eval --data-parallel 2`, one rank a GPU).
3. RL: `vrbench rl` and TRL's `GRPOTrainer` with the settings of `bench/rl_vs_trl.py` (16
   prompts x 4 responses, 64 new tokens at T = 1, lr 1e-4, k3 KL 0.01), float32 master
   weights under bf16 autocast: seconds a step (median after the first), peak GPU memory,
   and vrbench's sampler-vs-trainer log-prob gap. TRL is skipped where it is not installed.

The figures are printed as tables and written to OUT/gpu_scale.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

import tasks
from harness.backends.chat import chat_text
from harness.backends.hf import HFBackend
from harness.runs.runner import evaluate
from harness.runs.store import read_jsonl
from tasks import decode_images
from trainers import tiny

sys.path.insert(0, str(Path(__file__).parent))
import rl_vs_trl  # noqa: E402  (a sibling script: the same RL settings on both sides)

TASKS = "count_shapes,sides_sum,compare_count,bar_chart"


def _peak_reset(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _peak_gib(device: str) -> float | None:
    if device != "cuda":
        return None
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / 2**30


def _responses(run: Path) -> dict[str, str]:
    return {r["doc_id"]: r["resps"][0] for r in read_jsonl(run / "samples.jsonl")}


def bare_loop(model, processor, work: list, batch: int, tokens: int, device: str) -> float:
    """Seconds of processor + batched greedy `generate` over `work` ((task, sample) pairs)."""
    t0 = time.perf_counter()
    for i in range(0, len(work), batch):
        chunk = work[i:i + batch]
        enc = processor(text=[chat_text(processor, t.prompt(s), 1) for t, s in chunk],
                        images=[im for _, s in chunk for im in decode_images(s)],
                        padding=True, return_tensors="pt").to(device)
        with torch.inference_mode():
            model.generate(**enc, max_new_tokens=tokens, do_sample=False)
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def evaluation(model_dir: str, root: Path, args, device: str) -> dict:
    per_task = max(1, args.samples // 4)
    engine = HFBackend(model_dir)
    dtype = next(engine.model.parameters()).dtype
    out = {"dtype": str(dtype).removeprefix("torch."), "samples": 4 * per_task, "rows": []}
    processor = AutoProcessor.from_pretrained(model_dir)
    processor.tokenizer.padding_side = "left"
    plain = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=dtype).to(device).eval()
    work = [(t, s) for t in tasks.resolve(TASKS) for s in t.samples("test", per_task)]
    for b in args.batch_sizes:
        _peak_reset(device)
        t0 = time.perf_counter()
        evaluate(model_dir, TASKS, engine=engine, limit=per_task, batch_size=b,
                 max_new_tokens=args.max_new_tokens, output=str(root / f"eval-b{b}"),
                 progress=False)
        ours, peak = time.perf_counter() - t0, _peak_gib(device)
        tokens = sum(a["n_tokens"] for r in read_jsonl(root / f"eval-b{b}" / "samples.jsonl")
                     for a in r["analysis"])
        bare = bare_loop(plain, processor, work, b, args.max_new_tokens, device)
        out["rows"].append({"batch_size": b, "vrbench_s": ours, "bare_s": bare,
                            "samples_per_s": len(work) / ours, "tokens_per_s": tokens / ours,
                            "peak_gib": peak})
    del plain
    # invariance: greedy responses at batch 1 and 32, on a few samples
    few = max(1, args.invariance_samples // 4)
    for b in (1, 32):
        evaluate(model_dir, TASKS, engine=engine, limit=few, batch_size=b,
                 max_new_tokens=args.max_new_tokens, output=str(root / f"inv-b{b}"),
                 progress=False)
    one, many = _responses(root / "inv-b1"), _responses(root / "inv-b32")
    out["batch_1_vs_32_differ"] = sum(one[k] != many[k] for k in one) / len(one)
    out["invariance_samples"] = len(one)
    del engine
    if device == "cuda" and torch.cuda.device_count() >= 2:
        for ranks in (1, 2):
            subprocess.run([sys.executable, "-m", "vrbench", "eval", "--model", model_dir,
                            "--tasks", TASKS, "--limit", str(few), "--max-new-tokens",
                            str(args.max_new_tokens), "--batch-size", "32", "--no-progress",
                            "--output", str(root / f"dp{ranks}"), "--data-parallel",
                            str(ranks)], check=True, capture_output=True)
        one, two = _responses(root / "dp1"), _responses(root / "dp2")
        out["world_1_vs_2_differ"] = sum(one[k] != two[k] for k in one) / len(one)
    else:
        out["world_1_vs_2_differ"] = None  # one device: one rank a GPU needs two
    return out


def training(model_dir: str, root: Path, args, device: str) -> dict:
    out = {}
    _peak_reset(device)
    _, log = rl_vs_trl.run_vrbench(model_dir, root / "rl-vrbench", args.rl_steps)
    out["vrbench"] = {
        "s_per_step": statistics.median(r["step_seconds"] for r in log[1:] or log),
        "peak_gib": _peak_gib(device),
        "logprob_gap_mean": statistics.fmean(r["logprob_gap_mean"] for r in log),
        "logprob_gap_max": max(r["logprob_gap_max"] for r in log)}
    try:
        import trl  # noqa: F401
    except ImportError:
        out["trl"] = None
        return out
    _peak_reset(device)
    _, steps = rl_vs_trl.run_trl(model_dir, root / "rl-trl", args.rl_steps, gpu=device == "cuda")
    out["trl"] = {"s_per_step": statistics.median(steps[1:] or steps),
                  "peak_gib": _peak_gib(device)}
    return out


def _gib(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def report(result: dict) -> None:
    ev, rl = result["eval"], result["rl"]
    print(f"{result['size']} ({result['parameters'] / 1e6:,.1f}M parameters), {result['device']},"
          f" eval in {ev['dtype']}, {ev['samples']} samples of {TASKS}, "
          f"{result['max_new_tokens']} new tokens, greedy; built in {result['build_s']:.0f} s\n")
    print("| batch | vrbench eval, s | bare generate loop, s | vrbench / bare | samples/s | "
          "generated tokens/s | peak GPU memory, GiB |\n| ---: | ---: | ---: | ---: | ---: | "
          "---: | ---: |")
    for r in ev["rows"]:
        print(f"| {r['batch_size']} | {r['vrbench_s']:.1f} | {r['bare_s']:.1f} | "
              f"{r['vrbench_s'] / r['bare_s']:.2f}x | {r['samples_per_s']:.1f} | "
              f"{r['tokens_per_s']:.0f} | {_gib(r['peak_gib'])} |")
    world = ev["world_1_vs_2_differ"]
    print(f"\ngreedy responses that differ, batch 1 vs 32: {ev['batch_1_vs_32_differ']:.1%} of "
          f"{ev['invariance_samples']}; world size 1 vs 2: "
          f"{'not measured (one GPU)' if world is None else f'{world:.1%}'}\n")
    print("| trainer | s/step | peak GPU memory, GiB | vs TRL |\n| --- | ---: | ---: | ---: |")
    ours, theirs = rl["vrbench"], rl["trl"]
    if theirs is not None:
        print(f"| TRL GRPOTrainer | {theirs['s_per_step']:.2f} | {_gib(theirs['peak_gib'])} | "
              "1.00x |")
    ratio = f"{theirs['s_per_step'] / ours['s_per_step']:.2f}x" if theirs else "-"
    print(f"| vrbench rl | {ours['s_per_step']:.2f} | {_gib(ours['peak_gib'])} | {ratio} |")
    print(f"\nvrbench rl's sampler vs trainer log-probs: gap mean {ours['logprob_gap_mean']:.4f}, "
          f"max {ours['logprob_gap_max']:.3f} nats" + ("" if theirs else "; TRL not installed"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="3b", choices=tiny.SIZES)
    ap.add_argument("--out", default="/tmp/gpu-scale")
    ap.add_argument("--samples", type=int, default=128, help="evaluation samples, all tasks")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 32, 128])
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--invariance-samples", type=int, default=64)
    ap.add_argument("--rl-steps", type=int, default=4)
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device != "cuda" and args.size == "3b":
        print("gpu_scale: the 3b size needs a CUDA GPU, and there is none here; skipped "
              "(--size tiny runs the same steps on the CPU).")
        return
    root = Path(args.out)
    t0 = time.perf_counter()
    model_dir = str(tiny.build(root / "model", size=args.size, arch="qwen2_5_vl"))
    build_s = time.perf_counter() - t0
    with torch.device("meta"):
        n_params = sum(p.numel() for p in AutoModelForImageTextToText.from_config(
            AutoConfig.from_pretrained(model_dir)).parameters())
    result = {"size": args.size, "parameters": n_params, "build_s": build_s,
              "max_new_tokens": args.max_new_tokens, "torch": torch.__version__,
              "device": torch.cuda.get_device_name(0) if device == "cuda" else "CPU",
              "eval": evaluation(model_dir, root, args, device),
              "rl": training(model_dir, root, args, device)}
    (root / "gpu_scale.json").write_text(json.dumps(result, indent=1))
    report(result)


if __name__ == "__main__":
    main()

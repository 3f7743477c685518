"""Long generations: peak memory of a sampled evaluation at a reasoning model's token budget,
continuous batching against static batches, in one run.

    python bench/long_generation.py [--max-new-tokens 4096] [--limit 4] [--samples 8]

Both paths evaluate the same freshly built tiny model (random weights: a response ends when
it happens to draw the end-of-sequence token, so lengths vary widely, as a reasoning model's
do) on `--limit` prompts of count_shapes with `--samples` responses each at temperature 1
and `--max-new-tokens`, all the prompts in one batch (`--batch-size limit`), so that both
hold the same rows in flight: `evaluate()` as vrbench runs it (continuous batching: a row
that ends leaves the cache, and the columns no row needs are cut off) and through a backend
without `stream` (one static `generate` per batch: every row's cache grows to the longest
response's length). Each path runs in a process of its own, and reports the peak resident
memory above the process once the model is loaded (VmHWM at the end less VmRSS before the
run), the wall time, the generated tokens and the longest and mean response. The paths draw
different samples (the static one seeds a batch, the continuous one each response), so the
peak per thousand generated tokens is given beside the peak.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _status(field: str) -> int:
    """A /proc/self/status memory field, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) // 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


class StaticOnly:
    """The hf backend without `stream`: static batches."""

    name = "hf"

    def __init__(self, engine):
        self.engine = engine

    def generate(self, requests, config):
        return self.engine.generate(requests, config)

    def count_tokens(self, text: str) -> int:
        return self.engine.count_tokens(text)


def child(path: str, model: str, out: str, limit: int, samples: int, tokens: int) -> dict:
    import torch

    from harness.backends.hf import HFBackend
    from harness.runs.runner import evaluate
    from harness.runs.store import read_jsonl
    torch.set_num_threads(2)
    engine = HFBackend(model)
    before = _status("VmRSS")
    start = time.perf_counter()
    evaluate(model, "count_shapes", engine=engine if path == "continuous" else StaticOnly(engine),
             limit=limit, samples=samples, temperature=1.0, max_new_tokens=tokens,
             batch_size=limit, output=out, progress=False)
    seconds = time.perf_counter() - start
    lengths = [a["n_tokens"] for r in read_jsonl(Path(out) / "samples.jsonl")
               for a in r["analysis"]]
    return {"path": path, "peak_mib": _status("VmHWM") - before, "seconds": round(seconds, 1),
            "tokens": sum(lengths), "longest": max(lengths),
            "mean": round(sum(lengths) / len(lengths)), "rows": len(lengths),
            "at_limit": sum(n >= tokens for n in lengths)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-new-tokens", type=int, default=4096)
    ap.add_argument("--limit", type=int, default=4)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--child", nargs=3, metavar=("PATH", "MODEL", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(*args.child, args.limit, args.samples, args.max_new_tokens)))
        return
    from trainers import tiny
    with tempfile.TemporaryDirectory() as tmp:
        model = str(tiny.build(Path(tmp) / "tiny"))
        rows = []
        for path in ("continuous", "static"):
            done = subprocess.run(
                [sys.executable, __file__, "--child", path, model, str(Path(tmp) / path),
                 "--limit", str(args.limit), "--samples", str(args.samples),
                 "--max-new-tokens", str(args.max_new_tokens)],
                check=True, capture_output=True, text=True, cwd=ROOT)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"sampled eval, {args.limit} prompts x {args.samples} responses at T=1, "
          f"--max-new-tokens {args.max_new_tokens}, all rows in flight at once")
    print("| path | peak MiB above the loaded model | MiB per 1k tokens | seconds | tokens | "
          "longest | mean | at the limit |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['path']} | {r['peak_mib']} | {1000 * r['peak_mib'] / r['tokens']:.2f} | "
              f"{r['seconds']} | {r['tokens']} | {r['longest']} | {r['mean']} | "
              f"{r['at_limit']}/{r['rows']} |")
    c, s = rows
    print(f"continuous / static peak: {c['peak_mib'] / max(1, s['peak_mib']):.2f}x")


if __name__ == "__main__":
    main()

"""What only a CUDA GPU can show: master weights, bf16 autocast and on-policy log-probs.

    python bench/gpu_check.py [--out /tmp/gpu-check]

1. One AdamW step at the paper's lr 5e-6 from the same gradient, on bfloat16 weights and on
   float32 ones: the share of weights that change (bf16 rounds most updates away).
2. SFT of the tiny model on the GPU with the defaults: float32 weights, bf16 autocast.
3. RL steps at T = 0.7 from it, with and without bf16 autocast: the gap between the
   sampler's log-probs and the trainer's recomputed ones (logprob_gap_max / _mean).
4. `vrbench eval` of the RL checkpoint on the GPU.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from harness.likelihood.logprobs import collate, encode_prompt, token_logprobs
from harness.runs.runner import evaluate
from harness.runs.store import read_jsonl
from trainers import rl, sft, tiny
from trainers.config import CheckpointEval, OptimSettings


def bf16_update_loss(model_dir: str) -> dict:
    """Share of weights one AdamW step (lr 5e-6) changes, bf16 vs fp32 weights."""
    import tasks
    from harness.backends.hf import load_model
    from tasks import decode_images
    from trainers.sft import completion_ids
    processor, model = load_model(model_dir, device="cuda", dtype=torch.float32)
    t = tasks.load("count_shapes")
    samples = t.samples("train", 8)
    batch = collate([encode_prompt(processor, t.prompt(s), decode_images(s)) for s in samples],
                    [completion_ids(processor.tokenizer, s.solution) for s in samples],
                    processor.tokenizer.pad_token_id)
    logp, _ = token_logprobs(model, batch)
    (-(logp * batch["completion_mask"][:, 1:].cuda()).sum()).backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    out = {}
    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        params = {n: torch.nn.Parameter(p.detach().clone().to(dtype))
                  for n, p in model.named_parameters()}
        before = {n: p.detach().clone() for n, p in params.items()}
        for n, p in params.items():
            p.grad = grads[n].to(dtype)
        torch.optim.AdamW(params.values(), lr=5e-6, betas=(0.9, 0.95), eps=1e-5).step()
        changed = sum(int((params[n] != before[n]).sum()) for n in params)
        out[name] = changed / sum(p.numel() for p in params.values())
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="/tmp/gpu-check")
    args = ap.parse_args()
    assert torch.cuda.is_available(), "this check needs a CUDA GPU"
    root = Path(args.out)
    report = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name(0)}
    model = str(tiny.build(root / "model", size="small", seed=0))
    report["share_of_weights_changed_by_one_step"] = bf16_update_loss(model)
    no_eval = CheckpointEval(id_tasks="", ood_tasks="")
    t0 = time.perf_counter()
    warm = sft.train(sft.SFTConfig(model=model, out=str(root / "sft"), tasks="count_shapes",
                                   steps=200, batch_size=16, log_every=50, eval=no_eval,
                                   optim=OptimSettings(lr=2e-3)))
    log = read_jsonl(root / "sft" / "train_log.jsonl")
    saved = json.loads((root / "sft" / "train_config.json").read_text())
    report["sft"] = {"seconds": round(time.perf_counter() - t0, 1),
                     "loss_first_last": [log[0]["loss"], log[-1]["loss"]],
                     "param_dtype": saved["param_dtype"], "compute": saved["compute"]}
    for bf16 in (True, False):
        out = root / f"rl-bf16-{bf16}"
        rl.train(rl.RLConfig(model=str(warm), out=str(out), tasks="count_shapes", steps=3,
                             prompts_per_step=16, gen_chunk=16, group_size=4, temperature=0.7,
                             max_new_tokens=64, kl_coef=0.01, mini_batches=2, bf16=bf16,
                             eval=no_eval))
        rows = read_jsonl(out / "train_log.jsonl")
        report[f"rl_bf16_autocast_{bf16}"] = {
            k: [round(r[k], 6) for r in rows] for k in (
                "logprob_gap_max", "logprob_gap_mean", "ratio", "kl", "train_acc",
                "step_seconds")}
    res = evaluate(str(root / "rl-bf16-True" / "checkpoint-000003"), "count_shapes",
                   split="validation", limit=64, max_new_tokens=64, output=str(root / "eval"),
                   progress=False)
    report["eval_on_gpu"] = {"acc": res["results"]["count_shapes"]["acc"],
                             "seconds": res["timing"]["seconds_this_session"]}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

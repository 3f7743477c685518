"""Supervised fine-tuning on worked solutions, in one loop you can read top to bottom.

    from trainers.sft import SFTConfig, train
    train(SFTConfig(model="runs/model-tiny", out="runs/sft", steps=300))

Loss: cross-entropy on the solution tokens only (the prompt and the image are context),
averaged over all solution tokens of the optimizer step (the same under gradient
accumulation and over any number of processes). AdamW, warm-up then cosine, gradient
clipping, bf16 autocast on a GPU. Every `save_every` steps a checkpoint directory is written
that transformers loads and `resume=True` continues exactly.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from harness.backends.hf import load_model
from harness.errors import VrbenchError
from harness.runner import decode_images
from harness.store import append_jsonl
from trainers import common
from trainers.batching import collate, encode_prompt, token_logprobs


@dataclass
class SFTConfig:
    model: str  # checkpoint to start from
    out: str  # output directory: checkpoints, logs, dynamics
    tasks: str = "id"
    split: str = "train"
    reflective: float = 0.0  # share of examples trained on the solution with a reflective check
    steps: int = 300  # optimizer steps
    batch_size: int = 16  # examples per micro-batch, over all processes
    grad_accum: int = 1  # micro-batches per optimizer step
    seed: int = 0
    save_every: int = 0  # 0: save (and evaluate) the final checkpoint only
    log_every: int = 10
    resume: bool = False
    bf16: bool = True  # autocast on CUDA; the CPU always trains in float32
    optim: common.OptimSettings = field(default_factory=common.OptimSettings)
    eval: common.EvalSettings = field(default_factory=common.EvalSettings)


def completion_ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]


def train(cfg: SFTConfig) -> Path:
    """Run SFT; returns the final checkpoint directory."""
    d = common.setup_distributed()
    out = Path(cfg.out)
    G = cfg.batch_size * cfg.grad_accum
    if cfg.batch_size % d.world:
        raise VrbenchError(f"batch size {cfg.batch_size} does not split over {d.world} "
                           "processes.")
    ckpt = common.latest_checkpoint(out) if cfg.resume else None
    if not cfg.resume and common.latest_checkpoint(out) is not None:
        raise VrbenchError(f"{out} already holds checkpoints; pass --resume to continue.")
    processor, model = load_model(str(ckpt or cfg.model), device=str(d.device))
    model.train()
    counts = common.set_trainable(model, tuple(cfg.optim.train))
    opt, sched = common.make_optimizer(model, cfg.optim, cfg.steps)
    start = 0
    if ckpt is not None:
        state = common.load_state(ckpt)
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        common.set_rng_state(state["rng"])
        start = state["step"]
    else:
        torch.manual_seed(cfg.seed)
    if d.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "train_config.json").write_text(json.dumps(
            common.config_dict(cfg) | {"trainer": "sft", "trainable": counts,
                                       "world_size": d.world}, indent=2))
    ddp = (torch.nn.parallel.DistributedDataParallel(model) if d.world > 1 else model)
    data = common.TrainSet(cfg.tasks, cfg.split, cfg.seed)
    tok = processor.tokenizer
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16)
                if cfg.bf16 and d.device.type == "cuda" else contextlib.nullcontext())

    bar = tqdm(range(start, cfg.steps), desc="sft", disable=not d.main, initial=start,
               total=cfg.steps)
    t_last, tokens_since = time.perf_counter(), 0
    for step in bar:
        # -- the examples of this optimizer step, identical on every process ----------------
        examples = []
        for i in range(step * G, (step + 1) * G):
            task, sample = data.example(i)
            refl = random.Random(f"{cfg.seed}/{i}").random() < cfg.reflective
            text = sample.solution_reflective if refl else sample.solution
            examples.append((task, sample, completion_ids(tok, text)))
        n_tokens = sum(len(c) for _, _, c in examples)  # the loss is a mean over these

        # -- forward / backward over micro-batches --------------------------------------------
        loss_sum = 0.0
        for m in range(cfg.grad_accum):
            micro = examples[m * cfg.batch_size:(m + 1) * cfg.batch_size][d.rank::d.world]
            batch = collate([encode_prompt(processor, t.prompt(s), decode_images(s))
                             for t, s, _ in micro], [c for _, _, c in micro], tok.pad_token_id)
            sync = (contextlib.nullcontext() if d.world == 1 or m == cfg.grad_accum - 1
                    else ddp.no_sync())
            with sync, autocast:
                logp, _ = token_logprobs(ddp, batch)
                mask = batch["completion_mask"][:, 1:].to(logp.device)
                nll = -(logp * mask).sum()
                # DDP averages gradients over processes: scale so the result is the mean
                # over every solution token of the step.
                (nll * d.world / n_tokens).backward()
            loss_sum += nll.item()
        grad_norm = common.clip_and_norm(model, cfg.optim.grad_clip)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        loss = common.all_reduce_sum(torch.tensor(loss_sum), d).item() / n_tokens
        tokens_since += n_tokens

        # -- log, save, evaluate -----------------------------------------------------------------
        done = step + 1
        if d.main and (done % cfg.log_every == 0 or done == cfg.steps):
            now = time.perf_counter()
            row = {"step": done, "epoch": done * G / len(data), "loss": loss,
                   "lr": sched.get_last_lr()[0], "grad_norm": grad_norm,
                   "tokens_per_s": tokens_since / (now - t_last)}
            append_jsonl(out / "train_log.jsonl", [row])
            bar.set_postfix(loss=f"{loss:.3f}")
            t_last, tokens_since = now, 0
        if done == cfg.steps or (cfg.save_every and done % cfg.save_every == 0):
            common.barrier(d)
            if d.main:
                path = common.save_checkpoint(out, done, model, processor, opt, sched,
                                              common.config_dict(cfg))
                common.evaluate_checkpoint(path, out, done, done * G / len(data), cfg.eval,
                                           "sft", cfg.seed)
            common.barrier(d)
    bar.close()
    return common.checkpoint_dir(out, cfg.steps)

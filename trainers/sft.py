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

import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from harness.likelihood.logprobs import collate, encode_prompt, token_logprobs
from tasks import decode_images
from trainers import session
from trainers.checkpoints import checkpoint_dir
from trainers.config import SFTConfig
from trainers.distributed import all_reduce_sum
from trainers.optim import clip_and_norm
from trainers.session import TrainSet, grad_sync, maybe_save
from vrbench.seeds import unit


def completion_ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]


def solution_text(cfg: SFTConfig, sample, i: int) -> str:
    """The solution example `i` is trained on: the answer alone (a `terse` share), else the
    one with a reflective check (a `reflective` share) or the plain one; each drawn from the
    example's index and the seed, independently."""
    if unit(cfg.seed, "terse", i) < cfg.terse:
        return f"\\boxed{{{sample.target}}}"
    refl = unit(cfg.seed, "reflective", i) < cfg.reflective
    return sample.solution_reflective if refl else sample.solution


def train(cfg: SFTConfig) -> Path:
    """Run SFT; returns the final checkpoint directory."""
    global_batch = cfg.batch_size * cfg.grad_accum
    sess = session.start(cfg, "sft", cfg.steps)
    d, model, wrapped, opt, sched = sess.d, sess.model, sess.wrapped, sess.opt, sess.sched
    data = TrainSet(cfg.tasks, cfg.split, cfg.seed, cfg.data_dir)
    processor, tok = sess.processor, sess.processor.tokenizer

    bar = tqdm(range(sess.start, cfg.steps), desc="sft", disable=not d.main, initial=sess.start,
               total=cfg.steps)
    t_last, tokens_since = time.perf_counter(), 0
    for step in bar:
        # -- the examples of this optimizer step, identical on every process ----------------
        examples = []
        for i in range(step * global_batch, (step + 1) * global_batch):
            task, sample = data.example(i)
            examples.append((task, sample, completion_ids(tok, solution_text(cfg, sample, i))))
        n_tokens = sum(len(c) for _, _, c in examples)  # the loss is a mean over these

        # -- forward / backward over micro-batches --------------------------------------------
        loss_sum = 0.0
        for m in range(cfg.grad_accum):
            micro = examples[m * cfg.batch_size:(m + 1) * cfg.batch_size][d.rank::d.world]
            batch = collate([encode_prompt(processor, t.prompt(s), decode_images(s))
                             for t, s, _ in micro], [c for _, _, c in micro], tok.pad_token_id)
            with grad_sync(sess, last=m == cfg.grad_accum - 1), sess.autocast:
                logp, _ = token_logprobs(wrapped, batch)
                mask = batch["completion_mask"][:, 1:].to(logp.device)
                nll = -(logp * mask).sum()
                # DDP averages gradients over processes: scale so the result is the mean
                # over every solution token of the step.
                (nll * d.world / n_tokens).backward()
            loss_sum += nll.item()
        grad_norm = clip_and_norm(model, cfg.optim.grad_clip)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        loss = all_reduce_sum(torch.tensor(loss_sum), d).item() / n_tokens
        tokens_since += n_tokens

        # -- log, save, evaluate -----------------------------------------------------------------
        done = step + 1
        if d.main and (done % cfg.log_every == 0 or done == cfg.steps):
            now = time.perf_counter()
            row = {"step": done, "epoch": done * global_batch / len(data), "loss": loss,
                   "lr": sched.get_last_lr()[0], "grad_norm": grad_norm,
                   "tokens_per_s": tokens_since / (now - t_last)}
            sess.record(row)
            bar.set_postfix(loss=f"{loss:.3f}")
            t_last, tokens_since = now, 0
        maybe_save(sess, cfg, "sft", done, done * global_batch / len(data))
    bar.close()
    sess.close()
    return checkpoint_dir(sess.out, cfg.steps)

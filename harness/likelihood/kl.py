"""How far a fine-tuned checkpoint moved from its base: the forward KL on a task's prompts.

    KL(base || ckpt) = E_{x, y ~ base(.|x)} [ sum_t KL(base(.|x, y<t) || ckpt(.|x, y<t)) ]

For each prompt the base samples one response (temperature 1, no other sampling transform,
the vision tokens suppressed as in every vrbench generation); along that response both
models' next-token distributions are compared exactly, over the whole vocabulary, and the
per-token KLs are summed over the response. The mean over prompts is the sequence-level KL
in nats, with a bootstrap interval over prompts (stratified by task for the average). This
is the forward KL on the new task's prompts that "RL's Razor" (Shenfeld, Pari and Agrawal,
2025) finds to predict forgetting.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from harness.backends import GenerationConfig, Request
from harness.backends.hf import HFBackend, load_model
from harness.backends.sampling import Sampler
from harness.likelihood.logprobs import collate, encode_prompt, next_token_logprobs
from harness.runs.config import KLConfig
from harness.runs.store import write_text_atomic
from vrbench.errors import VrbenchError
from vrbench.seeds import derive

N_BOOT = 2000


@dataclass
class KL:
    task: str  # a task, or "[average]": the mean over tasks
    n: int  # prompts
    kl: float  # nats per response (mean over prompts)
    ci: tuple[float, float]  # bootstrap 95% interval of `kl`
    kl_per_token: float  # nats per response token (all tokens pooled)
    length: float  # mean response tokens


def _bootstrap(per_task: list[np.ndarray], seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of the mean over tasks of each task's mean, each task's
    prompts resampled on their own."""
    rng = np.random.default_rng(seed)
    boots = np.zeros(N_BOOT)
    for x in per_task:
        boots += x[rng.integers(0, len(x), size=(N_BOOT, len(x)))].mean(axis=1)
    lo, hi = np.percentile(boots / len(per_task), [2.5, 97.5])
    return float(lo), float(hi)


def _same_vocabulary(base_proc, proc, base: str, other: str) -> None:
    if base_proc.tokenizer.get_vocab() != proc.tokenizer.get_vocab():
        raise VrbenchError(f"{base} and {other} have different tokenizers; the KL compares "
                           "next-token distributions over one vocabulary.")


def _sequence_kl(lp_base: torch.Tensor, lp_other: torch.Tensor, mask: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """(per-sequence KL summed over the masked tokens, tokens per sequence). The log-prob
    tensors hold the last positions of the (B, L-1) next-token grid; `mask` is that grid's."""
    k = min(lp_base.shape[1], lp_other.shape[1])
    a, b, m = lp_base[:, -k:], lp_other[:, -k:], mask[:, -k:].to(lp_base.device)
    if a.shape[-1] != b.shape[-1]:
        raise VrbenchError(f"the two models' vocabularies differ in size ({a.shape[-1]} and "
                           f"{b.shape[-1]}).")
    p = a.exp()
    per_token = torch.where(p > 0, p * (a - b), torch.zeros_like(p)).sum(-1)
    return (per_token * m).sum(1).cpu(), m.sum(1).cpu()


@torch.inference_mode()
def measure(base: str, checkpoints: list[str], tasks_spec, cfg: KLConfig | None = None
            ) -> dict[str, list[KL]]:
    """checkpoint -> KL(base || checkpoint) per task and over tasks ("[average]")."""
    import tasks
    from tasks import decode_images
    cfg = cfg or KLConfig()
    cfg.check()
    if not checkpoints:
        raise VrbenchError("name at least one checkpoint to compare with the base.")
    task_list = tasks.resolve(tasks_spec, cfg.data_dir) if isinstance(tasks_spec, str) \
        else tasks_spec
    engine = HFBackend(base)
    others = {}
    for c in checkpoints:
        proc, model = load_model(c, device=str(engine.device))
        _same_vocabulary(engine.processor, proc, base, c)
        others[c] = model.eval()
    limit = cfg.limit or None
    sums = {c: {} for c in checkpoints}  # ckpt -> task -> (per-sequence KL, tokens)
    for t in task_list:
        samples = []
        for s in t.samples(cfg.split, limit):
            try:
                samples.append((s, decode_images(s)))
            except ValueError:  # a corrupt image: that prompt is left out
                continue
        if not samples:
            raise VrbenchError(f"task {t.name} has no prompt with readable images in its "
                               f"{cfg.split} split.")
        parts = {c: ([], []) for c in checkpoints}
        sampler = Sampler(suppress=tuple(engine.suppress))  # what every generation suppresses
        for i in range(0, len(samples), cfg.batch_size):
            chunk = samples[i:i + cfg.batch_size]
            reqs = [Request(t.prompt(s), ims) for s, ims in chunk]
            outs = engine.generate(reqs, GenerationConfig(
                max_new_tokens=cfg.max_new_tokens, temperature=1.0,
                seed=derive(cfg.seed, "kl-batch", i)))
            batch = collate([encode_prompt(engine.processor, r.prompt, r.images) for r in reqs],
                            [list(o[0].token_ids) for o in outs], engine.pad_id)
            mask = batch["completion_mask"][:, 1:].float()
            lp_base = next_token_logprobs(engine.model, batch, sampler)
            for c, model in others.items():
                kl, n_tok = _sequence_kl(lp_base, next_token_logprobs(model, batch, sampler),
                                         mask)
                parts[c][0].append(kl)
                parts[c][1].append(n_tok)
        for c in checkpoints:
            sums[c][t.name] = (torch.cat(parts[c][0]).numpy().astype(float),
                               torch.cat(parts[c][1]).numpy().astype(float))
    return {c: _summarize(by_task) for c, by_task in sums.items()}


def _summarize(by_task: dict[str, tuple[np.ndarray, np.ndarray]]) -> list[KL]:
    out = [KL(t, len(kl), float(kl.mean()), _bootstrap([kl]),
              float(kl.sum() / max(1.0, n.sum())), float(n.mean()))
           for t, (kl, n) in by_task.items()]
    if len(by_task) > 1:
        kls = [kl for kl, _ in by_task.values()]
        toks = [n for _, n in by_task.values()]
        out.append(KL("[average]", sum(map(len, kls)), float(np.mean([k.mean() for k in kls])),
                      _bootstrap(kls), float(np.mean([k.sum() / max(1.0, n.sum())
                                                      for k, n in zip(kls, toks, strict=True)])),
                      float(np.mean([n.mean() for n in toks]))))
    return out


def to_markdown(base: str, result: dict[str, list[KL]]) -> str:
    lines = [f"KL(base || checkpoint) on the base's own samples; base: {base}", "",
             "| checkpoint | task | n | KL (nats/response) | 95% CI | nats/token | tokens |",
             "|---|---|---|---|---|---|---|"]
    for c, rows in result.items():
        for r in rows:
            lines.append(f"| {c} | {r.task} | {r.n} | {r.kl:.4f} | [{r.ci[0]:.4f}, "
                         f"{r.ci[1]:.4f}] | {r.kl_per_token:.5f} | {r.length:.1f} |")
    return "\n".join(lines)


def write(path: str | Path, base: str, result: dict[str, list[KL]], cfg: KLConfig) -> Path:
    path = Path(path)
    write_text_atomic(path, json.dumps(
        {"base": base, "config": asdict(cfg),
         "kl": {c: [asdict(r) for r in rows] for c, rows in result.items()}}, indent=2) + "\n")
    return path

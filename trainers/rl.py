"""Reinforcement learning for VLMs in the paper's four steps, every choice named and logged.

    from trainers.rl import RLConfig, train
    train(RLConfig(model="runs/sft/checkpoint-000300", out="runs/rl", steps=50))

1. data flow       prompts of the step (fixed by seed and step) -> processor inputs
2. collection      `group_size` responses per prompt from the policy (the harness's hf backend)
3. trajectory      rewards from the harness's own `grade` (so training and leaderboard agree on
                   "correct"), old and reference log-probs, advantages
4. policy update   PPO-clipped policy gradient over `ppo_epochs` x `mini_batches`, with an
                   optional k3 KL loss to the frozen starting model

Advantage estimators: `reinforce_pp` (the paper's Reinforce++: the reward on the last token,
minus an optional per-token KL reward, summed into token-level returns and whitened over the
batch) and `grpo` (group-normalised over the responses of a prompt; `grpo_std_norm=False` is
Dr. GRPO). Loss aggregation: `token-mean` (DAPO / verl) or `seq-mean-token-mean` (original
GRPO). Clip-higher: set `clip_high` above `clip_low` (DAPO uses 0.28).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import torch
from tqdm.auto import tqdm

from harness import analyzers
from harness.backends import GenerationConfig, Request, Response
from harness.backends.hf import HFBackend, load_model
from harness.backends.sampling import Sampler
from harness.likelihood import prefix
from harness.likelihood.logprobs import (
    Encoded,
    collate,
    encode_prompt,
    select_rows,
    token_logprobs,
    trim,
)
from harness.runs.ranks import Dist
from harness.runs.store import append_jsonl
from harness.scoring.rewards import reward
from tasks import Sample, decode_images
from trainers import reward_fns, session
from trainers.checkpoints import checkpoint_dir
from trainers.config import RLConfig
from trainers.distributed import all_reduce_sum, copy_weights
from trainers.losses import AGGREGATIONS, LOSSES, Scale, truncated_is_weights
from trainers.optim import clip_and_norm
from trainers.session import TrainSet, grad_sync, maybe_save
from vrbench.seeds import derive


@dataclass
class Rollout:
    """One response to one prompt, with its reward parts."""

    prompt: Encoded  # the prompt as the processor encoded it
    response: Response
    reward: dict  # the reward and its parts (`harness.scoring.rewards.reward`)
    sample: Sample


# -- advantages -------------------------------------------------------------------------------
def grpo_advantages(rewards: torch.Tensor, group_size: int, std_norm: bool = True,
                    eps: float = 1e-6) -> torch.Tensor:
    """(N,) sequence rewards in consecutive groups -> (N,) group-normalised advantages."""
    r = rewards.view(-1, group_size)
    adv = r - r.mean(dim=1, keepdim=True)
    if std_norm:
        adv = adv / (r.std(dim=1, keepdim=True) + eps)
    return adv.view(-1)


def reinforce_pp_returns(rewards: torch.Tensor, mask: torch.Tensor, kl: torch.Tensor | None,
                         kl_coef: float, gamma: float) -> torch.Tensor:
    """Token-level returns: the sequence reward on its last token, minus kl_coef * KL_t on
    every token, summed backwards with discount gamma. Shapes (N,), (N, T), (N, T)."""
    last = mask.cumsum(1).argmax(1)  # index of each sequence's last valid token
    per_token = torch.zeros_like(mask, dtype=torch.float)
    per_token[torch.arange(len(rewards)), last] = rewards
    if kl is not None and kl_coef:
        per_token = per_token - kl_coef * kl * mask
    returns = torch.zeros_like(per_token)
    running = torch.zeros(len(rewards), device=rewards.device)
    for t in range(mask.shape[1] - 1, -1, -1):
        running = per_token[:, t] + gamma * running
        returns[:, t] = running
    return returns * mask


def whiten(x: torch.Tensor, mask: torch.Tensor, d: Dist, add_mean: bool = False,
           eps: float = 1e-8) -> torch.Tensor:
    """Masked whitening over every valid token of the batch (over all processes)."""
    s = all_reduce_sum(torch.stack([(x * mask).sum(), (x * x * mask).sum(), mask.sum()]
                                          ).double(), d)
    mean = s[0] / s[2]
    var = s[1] / s[2] - mean * mean
    out = (x - mean) / torch.sqrt(var.clamp_min(0) + eps)
    if add_mean:
        out = out + mean
    return (out * mask).float()


# -- loss -------------------------------------------------------------------------------------
def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """k3 estimator of KL(pi || pi_ref) per token, clamped to [-10, 10]."""
    delta = (ref_logp - logp).clamp(-10, 10)
    return torch.exp(delta) - delta - 1


# -- the loop ---------------------------------------------------------------------------------
@dataclass
class Learner:
    """What RL holds across steps: the session (the model being trained, its optimizer), the
    policy as a backend that generates (under FSDP from an unsharded copy, synced every
    step), the frozen reference, the prompt streams, the reward functions, the rollouts'
    generation settings and the distribution they are drawn from, as far as a gradient
    follows it (temperature and suppressed tokens: top-p, top-k and a repetition penalty
    are not mirrored, and the gap to the sampler's own log-probs is logged every step)."""

    cfg: RLConfig
    sess: session.Session
    policy: HFBackend
    ref: torch.nn.Module | None
    data: TrainSet
    extra: TrainSet | None  # dynamic sampling's prompts: a stream of their own, so a step's
    # are known on resume
    fns: list[reward_fns.RewardFn]
    gen: GenerationConfig
    sampler: Sampler
    shared: bool  # each prompt run once for its responses in the log-prob passes

    @classmethod
    def start(cls, cfg: RLConfig) -> Learner:
        fns = reward_fns.load(cfg.reward)  # a function that cannot load stops us at once
        gen = rollout_generation(cfg)
        sess = session.start(cfg, "rl", cfg.steps * updates_per_step(cfg),
                             extra={"rollout_generation": gen.to_dict()})
        device, copies = str(sess.d.device), getattr(torch, cfg.copies_dtype)
        ref = load_model(cfg.model, device=device, dtype=copies)[1].requires_grad_(False) \
            if cfg.needs_reference() else None
        rollout = load_model(cfg.model, device=device, dtype=copies)[1].eval() \
            if sess.fsdp else sess.model
        policy = HFBackend.from_loaded(sess.processor, rollout)
        return cls(cfg, sess, policy, ref, TrainSet(cfg.tasks, cfg.split, cfg.seed, cfg.data_dir),
                   TrainSet(cfg.tasks, cfg.split, cfg.seed, cfg.data_dir, "extra-prompts")
                   if cfg.dynamic_sampling else None, fns, gen,
                   Sampler(temperature=cfg.temperature, suppress=tuple(policy.suppress)),
                   cfg.shared_prompts and prefix.supported(sess.model))

    def logprobs(self, model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(log-probs, entropies) of every next token of `batch` under `model`, at the
        sampler's distribution."""
        return (prefix.token_logprobs if self.shared else token_logprobs)(model, batch,
                                                                          self.sampler)


def train(cfg: RLConfig) -> Path:
    """Run RL; returns the final checkpoint directory. A step in the paper's four stages:
    collect (prompts and responses), advantages (the trajectory's log-probs and
    advantages), update (the policy gradient), log."""
    run = Learner.start(cfg)
    sess = run.sess
    bar = tqdm(range(sess.start, cfg.steps), desc="rl", disable=not sess.d.main,
               initial=sess.start, total=cfg.steps)
    for step in bar:
        clock = [time.perf_counter()]
        rollouts, dynamic = collect_step(run, step)
        clock.append(time.perf_counter())
        traj = trajectory(run, rollouts)
        clock.append(time.perf_counter())
        stats = update(run, traj, step)
        clock.append(time.perf_counter())
        log_step(run, step, traj, stats | dynamic, clock, bar)
        maybe_save(sess, cfg, "rl", step + 1, (step + 1) * cfg.prompts_per_step / len(run.data))
    bar.close()
    sess.close()
    return checkpoint_dir(sess.out, cfg.steps)


def collect_step(run: Learner, step: int) -> tuple[list[Rollout], dict]:
    """1-2. The step's prompts and the policy's responses, rewarded; with dynamic sampling,
    only informative groups (and what that did)."""
    cfg, sess = run.cfg, run.sess
    if sess.fsdp:
        copy_weights(sess.model, run.policy.model)
    sess.model.eval()
    rollouts = collect(run.policy, run.data, cfg, run.gen, step, sess.d, run.fns)
    dynamic = {}
    if run.extra is not None:
        rollouts, dynamic = informative_groups(rollouts, partial(
            _extra_round, run.policy, run.extra, cfg, run.gen, step, sess.d, run.fns), cfg,
            sess.d)
    sess.model.train()
    return rollouts, dynamic


@dataclass
class Trajectory:
    """A step's rollouts as tensors, and what the update reads of them."""

    rollouts: list[Rollout]
    batch: dict  # prompt + response rows (`collate`)
    mask: torch.Tensor  # (B, L-1): 1 on the response tokens
    lengths: torch.Tensor  # each row's tokens
    groups: torch.Tensor | None  # each row's prompt (its responses share one prompt pass)
    adv: torch.Tensor  # (B, L-1) advantages
    seq_adv: torch.Tensor  # (B,) each response's mean advantage, for the logs
    ref_logp: torch.Tensor | None  # the reference's log-probs (a KL loss or reward)
    behaviour: torch.Tensor  # the sampler's own log-probs, recorded at generation
    old_logp: torch.Tensor  # the policy's before the update (see `old`)
    reused: bool  # one epoch of one mini-batch: the old log-probs are the update's own

    def old(self, micro: torch.Tensor, width: int, logp: torch.Tensor) -> torch.Tensor:
        """The old log-probs of a micro-batch's rows. Computed before the update, or, where
        they equal the current ones (one epoch of one mini-batch, no KL reward), taken
        detached from the update's own forward pass (no extra pass) and kept for the logs."""
        if self.reused:
            self.old_logp[micro, :width] = logp.detach()
        return self.old_logp[micro, :width]


def trajectory(run: Learner, rollouts: list[Rollout]) -> Trajectory:
    """3. The rollouts as a batch; the old and reference log-probs; the advantages."""
    cfg, d = run.cfg, run.sess.d
    batch = collate([x.prompt for x in rollouts], [list(x.response.token_ids) for x in rollouts],
                    run.sess.processor.tokenizer.pad_token_id)
    mask = batch["completion_mask"][:, 1:].float().to(d.device)
    rewards = torch.tensor([x.reward["reward"] for x in rollouts], device=d.device)
    lengths = batch["attention_mask"].sum(1)
    groups = torch.tensor(prefix.prompt_slots(batch)[0]) if run.shared else None
    reused = cfg.ppo_epochs == 1 and cfg.mini_batches == 1 and not (
        cfg.advantage == "reinforce_pp" and cfg.kl_reward_coef)
    with torch.no_grad(), run.sess.autocast:
        old_logp = torch.zeros_like(mask) if reused else _pass(
            lambda b: run.logprobs(run.sess.model, b), batch, lengths, groups,
            cfg.micro_batch_size)
        ref_logp = _pass(lambda b: run.logprobs(run.ref, b), batch, lengths, groups,
                         cfg.micro_batch_size) if run.ref is not None else None
    if cfg.advantage == "grpo":
        seq_adv = grpo_advantages(rewards, cfg.group_size, cfg.grpo_std_norm, cfg.adv_eps)
        adv = seq_adv[:, None] * mask
    else:
        kl_tok = k3_kl(old_logp, ref_logp) if cfg.kl_reward_coef else None
        returns = reinforce_pp_returns(rewards, mask, kl_tok, cfg.kl_reward_coef, cfg.gamma)
        adv = whiten(returns, mask, d, cfg.whiten_add_mean)
        seq_adv = (adv * mask).sum(1) / mask.sum(1).clamp_min(1)
    behaviour = _per_token(mask, [x.response.logprobs for x in rollouts])
    return Trajectory(rollouts, batch, mask, lengths, groups, adv, seq_adv, ref_logp,
                      behaviour, old_logp, reused)


_SUMMED = ("loss", "clip_frac", "ratio", "entropy", "kl", "tis_capped")


def update(run: Learner, traj: Trajectory, step: int) -> dict:
    """4. The policy update: `ppo_epochs` passes over the rollouts, each in `mini_batches`
    optimizer steps; the mean of what they log, and how far the sampler's log-probs were
    from the recomputed ones (0 when on-policy)."""
    cfg, n = run.cfg, len(traj.rollouts)
    stats = dict.fromkeys((*_SUMMED, "grad_norm"), 0.0)
    for epoch in range(cfg.ppo_epochs):
        g = torch.Generator().manual_seed(derive(cfg.seed, "ppo-order",
                                                 step * cfg.ppo_epochs + epoch))
        order = torch.randperm(n, generator=g) if cfg.ppo_epochs > 1 else torch.arange(n)
        for sl in _slices(n, cfg.mini_batches):
            for key, value in _mini_batch(run, traj, order[sl]).items():
                stats[key] += value
    stats = {k: v / updates_per_step(cfg) for k, v in stats.items()}
    gap = torch.where(traj.mask > 0, (traj.behaviour - traj.old_logp.float()).abs(), 0.0)
    return stats | {"logprob_gap_mean": (gap.sum() / traj.mask.sum().clamp_min(1)).item(),
                    "logprob_gap_max": gap.max().item()}


def _mini_batch(run: Learner, traj: Trajectory, rows: torch.Tensor) -> dict:
    """One optimizer step over `rows`, a micro-batch at a time (gradients add up); the loss
    and the per-token means it logs."""
    cfg, sess, d, mask = run.cfg, run.sess, run.sess.d, traj.mask
    # the mini-batch's counts over all processes: each update is an exact mean
    scale = Scale(all_reduce_sum(mask[rows].sum().double(), d).item(), float(len(rows) * d.world),
                  cfg.max_new_tokens, cfg.clip_low, cfg.clip_high, cfg.loss_agg)
    sums = dict.fromkeys(_SUMMED, 0.0)
    micros = _micro_batches(rows, traj.lengths, traj.groups, cfg.micro_batch_size)
    for j, micro in enumerate(micros):
        mb = trim(select_rows(traj.batch, micro))
        w = mb["input_ids"].shape[1] - 1
        m = mask[micro, :w]
        with grad_sync(sess, last=j == len(micros) - 1), sess.autocast:
            logp, ent = run.logprobs(sess.wrapped, mb)
            old = traj.old(micro, w, logp)
            weights = capped = None
            if cfg.tis_cap:  # rollout/trainer mismatch: truncated IS weights
                weights, capped = truncated_is_weights(old, traj.behaviour[micro, :w],
                                                       cfg.tis_cap)
            loss, ratio, clipped = LOSSES[cfg.loss](logp, old, traj.adv[micro, :w], m, scale,
                                                    weights)
            kl = k3_kl(logp, traj.ref_logp[micro, :w]) if traj.ref_logp is not None else None
            if kl is not None and cfg.kl_coef:
                loss = loss + cfg.kl_coef * AGGREGATIONS[cfg.loss_agg](kl, m, scale)
            # DDP averages gradients over processes: undo that, the mean is exact
            (loss * d.world).backward()
        sums["loss"] += loss.item()
        for key, x in (("clip_frac", clipped), ("ratio", ratio.detach()), ("entropy", ent),
                       ("kl", kl), ("tis_capped", capped)):
            if x is not None:
                sums[key] += (x.detach() * m).sum().item()
    grad_norm = clip_and_norm(sess.model, cfg.optim.grad_clip)
    sess.opt.step()
    sess.sched.step()
    sess.opt.zero_grad(set_to_none=True)
    local = max(1.0, mask[rows].sum().item())
    return {"loss": sums["loss"], "grad_norm": grad_norm,
            **{k: sums[k] / local for k in _SUMMED if k != "loss"}}


def log_step(run: Learner, step: int, traj: Trajectory, stats: dict, clock: list[float],
             bar) -> None:
    """Every response of the step to rollouts.jsonl; every `log_every` steps a line of
    train_log.jsonl (and the tracker) with what the rollouts and the update say, and the
    stages' speeds (`clock`: the times the stages began and the update ended)."""
    cfg, sess, d, mask = run.cfg, run.sess, run.sess.d, traj.mask
    if cfg.log_rollouts:
        append_jsonl(sess.out / f"rollouts-rank{d.rank}.jsonl" if d.world > 1 else
                     sess.out / "rollouts.jsonl",
                     [{"step": step + 1, "doc_id": x.sample.id, "response": x.response.text,
                       "token_ids": list(x.response.token_ids),
                       "finish_reason": x.response.finish_reason, **x.reward,
                       "advantage": a, "logprobs": _rounded(traj.old_logp[i][mask[i] > 0]),
                       "behaviour_logprobs": _rounded(torch.tensor(x.response.logprobs))}
                      for i, (x, a) in enumerate(zip(traj.rollouts, traj.seq_adv.tolist(),
                                                     strict=True))])
    done = step + 1
    if d.main and (done % cfg.log_every == 0 or done == cfg.steps):
        gen_s, lp_s, upd_s = (b - a for a, b in zip(clock, clock[1:], strict=False))
        row = {"step": done, "epoch": done * cfg.prompts_per_step / len(run.data),
               "lr": sess.sched.get_last_lr()[0], "step_seconds": time.perf_counter() - clock[0],
               **rollout_stats(traj.rollouts, cfg.group_size), **stats,
               **_speed(traj.rollouts, int(mask.sum().item()), cfg.ppo_epochs, gen_s, lp_s,
                        upd_s)}
        sess.record(row)
        bar.set_postfix(reward=f"{row['reward_mean']:.2f}", acc=f"{row['train_acc']:.2f}")


def collect(policy: HFBackend, data: TrainSet, cfg: RLConfig, gen: GenerationConfig,
            step: int, d: Dist | None = None,
            fns: list[reward_fns.RewardFn] | None = None) -> list[Rollout]:
    """The rollouts of one step: this process's chunks of the step's prompts, `group_size`
    responses each (seeded by the prompt's index, or with static batching by the chunk's),
    and their rewards (the `--reward` functions, weighted and added up, a chunk at a
    time)."""
    rank, world = (d.rank, d.world) if d is not None else (0, 1)
    fns = reward_fns.load(cfg.reward) if fns is None else fns
    per_step, n_chunks = cfg.prompts_per_step, cfg.prompts_per_step // cfg.gen_chunk
    chunks = [list(range(step * per_step + c * cfg.gen_chunk,
                         step * per_step + (c + 1) * cfg.gen_chunk))
              for c in range(rank, n_chunks, world)]
    items = {i: data.example(i) for chunk in chunks for i in chunk}
    reqs = {i: Request(t.prompt(s), decode_images(s)) for i, (t, s) in items.items()}
    if cfg.rollout_batching == "continuous":
        outs = dict(policy.stream(((i, reqs[i], derive(cfg.seed, "rollout", i))
                                   for i in items), gen, slots=cfg.gen_chunk * cfg.group_size))
    else:
        outs = {}
        for c, chunk in zip(range(rank, n_chunks, world), chunks, strict=True):
            seed = derive(cfg.seed, "rollout-chunk", step * n_chunks + c)
            outs |= zip(chunk, policy.generate([reqs[i] for i in chunk], replace(gen, seed=seed)),
                        strict=True)
    out: list[Rollout] = []
    for chunk_ids in chunks:
        chunk = []
        for i in chunk_ids:
            (t, s), req = items[i], reqs[i]
            enc = encode_prompt(policy.processor, req.prompt, req.images)
            for r in outs[i]:
                parts = reward(r.text, s.target, s.choices, s.meta.get("precision"),
                               cfg.reward_terms(), r.n_tokens, r.finish_reason)
                chunk.append((t, req.prompt, Rollout(enc, r, parts, s)))
        _add_up(chunk, fns)
        out += [x for _, _, x in chunk]
    return out


def _extra_round(policy, extra: TrainSet, cfg: RLConfig, gen: GenerationConfig, step: int,
                 d: Dist, fns: list, r: int) -> list[Rollout]:
    """Round r (from 1) of a step's dynamic sampling: prompts from the extra stream."""
    return collect(policy, extra, cfg, gen, step * cfg.max_sampling_rounds + r - 1, d, fns)


def informative_groups(rollouts: list[Rollout], more: Callable[[int], list[Rollout]],
                       cfg: RLConfig, d: Dist) -> tuple[list[Rollout], dict]:
    """DAPO's dynamic sampling: keep the groups whose rewards differ (the others give no
    gradient), sampling round after round (`more(r)`) until this process has its share of
    `prompts_per_step` such groups, or `max_sampling_rounds` were drawn; a step still short
    is filled up with dropped groups. Returns the rollouts and what it did (summed over the
    processes)."""
    size, want = cfg.group_size, cfg.prompts_per_step // d.world
    kept: list[list[Rollout]] = []
    dropped: list[list[Rollout]] = []
    sampled = rounds = 0
    batch = rollouts
    while True:
        for i in range(0, len(batch), size):
            group = batch[i:i + size]
            rewards = {x.reward["reward"] for x in group}
            (kept if len(rewards) > 1 else dropped).append(group)
        sampled += len(batch) // size
        if len(kept) >= want or rounds == cfg.max_sampling_rounds:
            break
        rounds += 1
        batch = more(rounds)
    fill = max(0, want - len(kept))
    chosen = kept[:want] + dropped[:fill]
    counts = all_reduce_sum(torch.tensor([sampled, min(len(kept), want), len(dropped),
                                          rounds, float(fill > 0)], dtype=torch.float64,
                                         device=d.device), d).tolist()
    return [x for g in chosen for x in g], {
        "dynamic_groups_sampled": int(counts[0]), "dynamic_groups_kept": int(counts[1]),
        "dynamic_groups_dropped": int(counts[2]), "dynamic_rounds": counts[3] / d.world,
        "dynamic_capped": counts[4] / d.world}


def _add_up(chunk: list[tuple], fns: list[reward_fns.RewardFn]) -> None:
    """Each rollout's reward: the weighted sum of the reward functions' (each one's also kept,
    as `fn_<name>`)."""
    fields = {"prompts": [p for _, p, _ in chunk],
              "completions": [x.response.text for _, _, x in chunk],
              "completion_ids": [list(x.response.token_ids) for _, _, x in chunk],
              "target": [x.sample.target for _, _, x in chunk],
              "choices": [x.sample.choices for _, _, x in chunk],
              "precision": [x.sample.meta.get("precision") for _, _, x in chunk],
              "task": [t.name for t, _, _ in chunk],
              "doc_id": [x.sample.id for _, _, x in chunk],
              "finish_reason": [x.response.finish_reason for _, _, x in chunk],
              "n_tokens": [x.response.n_tokens for _, _, x in chunk]}
    values = {f.key: [x.reward["reward"] for _, _, x in chunk] if f.fn is None
              else reward_fns.call(f, fields) for f in fns}
    for i, (_, _, x) in enumerate(chunk):
        x.reward |= {f"fn_{k}": v[i] for k, v in values.items()}
        x.reward["reward"] = sum(f.weight * values[f.key][i] for f in fns)


def reward_on_steps(model: str, cfg: RLConfig, steps: range) -> dict:
    """The mean reward and accuracy of `model`'s rollouts on the prompts of training `steps`
    of the run `cfg` describes, sampled as the trainer samples them: another policy's
    training reward on the very same prompts (the start's, against the end's)."""
    processor, m = load_model(model)
    policy = HFBackend.from_loaded(processor, m.eval())
    data = TrainSet(cfg.tasks, cfg.split, cfg.seed, cfg.data_dir)
    gen = replace(rollout_generation(cfg), logprobs=False)
    parts = [x.reward for step in steps for x in collect(policy, data, cfg, gen, step)]
    return {"model": model, "steps": [steps.start + 1, steps.stop], "responses": len(parts),
            "reward": sum(p["reward"] for p in parts) / len(parts),
            "accuracy": sum(p["correct"] for p in parts) / len(parts)}


def rollout_generation(cfg: RLConfig) -> GenerationConfig:
    """The rollouts' generation settings, all explicit: temperature and top-p from the config,
    top-k and repetition penalty off (or the starting checkpoint's, with
    `generation_defaults="model"`), and the sampled tokens' log-probabilities returned."""
    from harness.runs.config import checkpoint_generation_defaults
    ck = checkpoint_generation_defaults(cfg.model) if cfg.generation_defaults == "model" else {}
    return GenerationConfig(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature,
                            top_p=cfg.top_p, top_k=ck.get("top_k", 0),
                            repetition_penalty=ck.get("repetition_penalty", 1.0),
                            n=cfg.group_size, logprobs=True)


def _per_token(mask: torch.Tensor, values: list[tuple[float, ...]]) -> torch.Tensor:
    """Per-sequence values laid out like `mask` (on its 1s, in order)."""
    out = torch.zeros_like(mask)
    for i, v in enumerate(values):
        pos = mask[i].nonzero().squeeze(1)
        out[i, pos] = torch.tensor(v[:len(pos)], dtype=out.dtype, device=out.device)
    return out


def _rounded(x: torch.Tensor) -> list[float]:
    return [round(v, 5) for v in x.float().tolist()]


def updates_per_step(cfg: RLConfig) -> int:
    return cfg.ppo_epochs * cfg.mini_batches


def _micro_batches(rows: torch.Tensor, lengths: torch.Tensor, groups: torch.Tensor | None,
                   size: int) -> list[torch.Tensor]:
    """`rows` in groups of `size` (0: all at once), sorted by length, so that each forward
    pass pads to its own longest sequence; with `groups` (each row's prompt), the rows of a
    prompt kept together (sorted by their prompt's longest row), so it runs once."""
    if not size or size >= len(rows):
        return [rows]
    key = lengths[rows]
    if groups is not None:
        g = groups[rows]
        longest = torch.zeros(int(g.max()) + 1, dtype=key.dtype).scatter_reduce(
            0, g, key, "amax")
        key = longest[g] * (len(lengths) + 1) + g  # by the prompt's longest row, then prompt
    by_length = rows[torch.argsort(key, stable=True)]
    return list(torch.split(by_length, size))


def _pass(fn, batch: dict, lengths: torch.Tensor, groups: torch.Tensor | None, size: int
          ) -> torch.Tensor:
    """fn's (B, L-1) log-probs for the whole batch, computed micro-batch by micro-batch."""
    out = None
    for micro in _micro_batches(torch.arange(len(lengths)), lengths, groups, size):
        lp = fn(trim(select_rows(batch, micro)))[0]
        if out is None:  # on the model's device
            out = lp.new_zeros(batch["input_ids"].shape[0], batch["input_ids"].shape[1] - 1)
        out[micro, :lp.shape[1]] = lp.float()
    return out


def _slices(n: int, k: int) -> list[slice]:
    size = -(-n // k)
    return [slice(i, min(n, i + size)) for i in range(0, n, size)]


def rollout_stats(rollouts: list[Rollout], group_size: int) -> dict:
    """What a step's rollouts say: reward and its parts, accuracy, the share of groups with
    no reward variance, lengths, truncation, reflection ratios and word frequencies."""
    parts = [x.reward for x in rollouts]
    resp = [x.response for x in rollouts]
    rewards = torch.tensor([p["reward"] for p in parts])
    lengths = [r.n_tokens for r in resp]
    behaviour = analyzers.summarize([analyzers.analyze(r.text, r.n_tokens, r.finish_reason)
                                     | {"correct": bool(p["correct"])}
                                     for r, p in zip(resp, parts, strict=True)])
    n = len(parts)
    return {
        "reward_mean": rewards.mean().item(),
        **{f"reward_{k}": sum(p[k] for p in parts) / n for k in ("correct", "format",
                                                                  "language", "penalty")},
        **{f"reward_{k}": sum(p[k] for p in parts) / n for k in parts[0] if k.startswith("fn_")},
        "train_acc": sum(p["correct"] for p in parts) / n,
        "zero_std_group_ratio": (rewards.view(-1, group_size).std(dim=1) == 0
                                 ).float().mean().item(),
        "length_mean": sum(lengths) / n, "length_max": max(lengths),
        "length_clip_ratio": sum(r.finish_reason == "length" for r in resp) / n,
        "reflection_ratio": behaviour["reflection_ratio"],
        "reflection_ratio_in_correct_answers": behaviour["reflection_ratio_in_correct_answers"],
        "reflection_word_freq": behaviour["reflection_word_freq"],
    }


def _speed(rollouts: list[Rollout], n_tok: int, ppo_epochs: int, t_gen: float, t_lp: float,
           t_upd: float) -> dict:
    generated = sum(x.response.n_tokens for x in rollouts)
    return {"gen_tokens_per_s": generated / t_gen, "logprob_tokens_per_s": n_tok / t_lp,
            "update_tokens_per_s": n_tok * ppo_epochs / t_upd,
            "gen_seconds": t_gen, "logprob_seconds": t_lp, "update_seconds": t_upd}

"""The RL trainer is on-policy at any temperature, trains float32 master weights whatever the
device prefers, and samples with exactly the settings it records (a checkpoint's own
repetition penalty changes nothing unless asked)."""

import dataclasses
import json
import shutil

import pytest
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor
from transformers import GenerationConfig as HFGenerationConfig

import tasks
from harness.backends import GenerationConfig, Request
from harness.backends.chat import chat_text
from harness.backends.hf import HFBackend
from harness.runs.store import read_jsonl
from tasks import decode_images
from trainers import rl, session
from trainers.config import CheckpointEval, OptimSettings

NO_EVAL = CheckpointEval(id_tasks="", ood_tasks="")


def _rl(model, out, **kw):
    base = dict(model=model, out=str(out), tasks="count_shapes", steps=1, prompts_per_step=4,
                group_size=2, gen_chunk=4, max_new_tokens=16, eval=NO_EVAL,
                optim=OptimSettings(lr=1e-3, warmup=0.0, min_lr_ratio=1.0))
    return rl.RLConfig(**(base | kw))


def _generation_logprobs(model_path, rows, temperature) -> list[torch.Tensor]:
    """log_softmax(logits / T) of each rollout's sampled tokens, from a plain forward pass of
    the starting model over prompt + response (no trainer code), vision tokens suppressed
    as the sampler suppresses them."""
    proc = AutoProcessor.from_pretrained(model_path)
    model = AutoModelForImageTextToText.from_pretrained(model_path).eval()
    vocab = proc.tokenizer.get_vocab()
    banned = [vocab[t] for t in ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>",
                                 "<|vision_end|>") if t in vocab]
    t = tasks.load("count_shapes")
    by_id = {s.id: s for s in t.samples("train")}
    out = []
    for r in rows:
        s = by_id[r["doc_id"]]
        enc = proc(text=[chat_text(proc, t.prompt(s), 1)], images=decode_images(s),
                   return_tensors="pt")
        n, comp = enc["input_ids"].shape[1], torch.tensor([r["token_ids"]])
        inputs = dict(enc)
        inputs["input_ids"] = torch.cat([enc["input_ids"], comp], 1)
        inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
        if "mm_token_type_ids" in enc:
            inputs["mm_token_type_ids"] = torch.cat([enc["mm_token_type_ids"],
                                                     torch.zeros_like(comp)], 1)
        with torch.no_grad():
            logits = model(**inputs).logits[0, n - 1:-1].float()
        logits[:, banned] = float("-inf")
        lp = torch.log_softmax(logits / temperature, -1)
        out.append(lp.gather(1, comp[0][:, None]).squeeze(1))
    return out


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_trainer_log_probs_are_the_samplers_at_any_temperature(tmp_path, sft_model,
                                                               temperature):
    out = tmp_path / "rl"
    # two mini-batches: the old log-probs come from their own pass before the update
    rl.train(_rl(sft_model, out, temperature=temperature, mini_batches=2, kl_coef=0.01))
    rows = read_jsonl(out / "rollouts.jsonl")
    truth = _generation_logprobs(sft_model, rows, temperature)
    worst = max((torch.tensor(r[k]) - t).abs().max().item()
                for r, t in zip(rows, truth, strict=True)
                for k in ("logprobs", "behaviour_logprobs"))
    assert worst < 1e-3  # at T = 0.7 the old code was off by up to 2 nats
    log = read_jsonl(out / "train_log.jsonl")[0]
    assert log["logprob_gap_max"] < 1e-3 and log["logprob_gap_mean"] < 1e-4


def test_first_update_ratio_is_one_and_kl_zero(tmp_path, sft_model):
    out = tmp_path / "rl"
    rl.train(_rl(sft_model, out, temperature=0.7, kl_coef=0.01))  # one epoch, one mini-batch
    log = read_jsonl(out / "train_log.jsonl")[0]
    assert log["ratio"] == 1.0 and log["kl"] == 0.0 and log["clip_frac"] == 0.0


def test_trained_weights_are_float32_whatever_the_device_prefers(tmp_path, sft_model,
                                                                  monkeypatch):
    """On CUDA `load_model` picks bfloat16 unless told otherwise; the trainers tell it."""
    import harness.backends.hf as hf
    asked = []
    real = hf.load_model

    def spy(path, device=None, dtype=None):
        asked.append(dtype)
        return real(path, device="cpu", dtype=dtype or torch.bfloat16)  # as on a GPU

    monkeypatch.setattr(hf, "load_model", spy)
    cfg = _rl(sft_model, tmp_path / "rl", kl_coef=0.01)
    sess = session.start(cfg, "rl", 1)
    assert asked == [torch.float32]
    assert all(p.dtype == torch.float32 for p in sess.model.parameters() if p.requires_grad)
    saved = json.loads((tmp_path / "rl" / "train_config.json").read_text())
    assert saved["param_dtype"] == "torch.float32" and saved["compute"] == "param_dtype"
    sess16 = session.start(dataclasses.replace(cfg, out=str(tmp_path / "rl16"),
                                             param_dtype="bfloat16"), "rl", 1)
    assert asked[-1] == torch.bfloat16
    assert next(sess16.model.parameters()).dtype == torch.bfloat16


def test_a_checkpoints_repetition_penalty_changes_nothing_unless_asked(tmp_path, sft_model):
    penalised = tmp_path / "penalised"
    shutil.copytree(sft_model, penalised)
    g = HFGenerationConfig.from_pretrained(sft_model)
    g.do_sample, g.repetition_penalty, g.top_k = True, 1.8, 3  # as Instruct releases ship
    g.save_pretrained(penalised)
    t = tasks.load("count_shapes")
    reqs = [Request(t.prompt(s), decode_images(s)) for s in t.samples("validation", 4)]
    gen = GenerationConfig(max_new_tokens=24, temperature=1.0, n=2, seed=5)

    def texts(path, g):
        return [r.text for rs in HFBackend(str(path)).generate(reqs, g) for r in rs]

    assert texts(penalised, gen) == texts(sft_model, gen)  # neutral: its settings ignored
    assert texts(penalised, GenerationConfig(max_new_tokens=24)) == texts(
        sft_model, GenerationConfig(max_new_tokens=24))  # greedy too
    # rollouts: the same with and without, unless asked; the settings are recorded
    for name, path, mode in (("plain", sft_model, "neutral"), ("neutral", penalised, "neutral"),
                             ("model", penalised, "model")):
        rl.train(_rl(path, tmp_path / name, generation_defaults=mode))
    tokens = {name: [r["token_ids"] for r in read_jsonl(tmp_path / name / "rollouts.jsonl")]
              for name in ("plain", "neutral", "model")}
    assert tokens["plain"] == tokens["neutral"] != tokens["model"]
    recorded = json.loads((tmp_path / "model" / "train_config.json").read_text())
    assert recorded["rollout_generation"]["repetition_penalty"] == 1.8
    assert recorded["rollout_generation"]["top_k"] == 3


def test_micro_batches_and_shared_images_change_nothing(tmp_path, sft_model):
    """Sequences grouped by length into micro-batches, a group's image encoded once, the
    logits of completion positions only, each prompt run once for its responses: the same
    loss and gradient as one pass of one sequence a row."""
    logs = {}
    for micro, shared in ((0, False), (0, True), (3, True), (3, False)):
        out = tmp_path / f"micro{micro}-{shared}"
        rl.train(_rl(sft_model, out, group_size=4, kl_coef=0.01, micro_batch_size=micro,
                     shared_prompts=shared))
        logs[micro, shared] = read_jsonl(out / "train_log.jsonl")[0]
    for run in ((0, True), (3, True), (3, False)):
        for key in ("loss", "grad_norm", "kl", "entropy", "reward_mean"):
            assert logs[run][key] == pytest.approx(logs[0, False][key], rel=1e-4, abs=1e-7), (
                run, key)


def test_a_groups_image_is_encoded_once_with_the_same_result(sft_model):
    from harness.likelihood.logprobs import IMAGE_KEY, collate, encode_prompt, token_logprobs
    proc = AutoProcessor.from_pretrained(sft_model)
    model = AutoModelForImageTextToText.from_pretrained(sft_model)
    t = tasks.load("count_shapes")
    encs = [encode_prompt(proc, t.prompt(s), decode_images(s)) for s in t.samples("test", 2)]
    rows = [encs[0]] * 3 + [encs[1]] * 3  # two groups of three responses
    comps = [[105 + i, 106, 107 + i] for i in range(6)]
    batch = collate(rows, comps, proc.tokenizer.pad_token_id)
    assert batch[IMAGE_KEY].tolist() == [0, 0, 0, 3, 3, 3]
    calls = []
    original = model.model.visual.forward
    model.model.visual.forward = lambda *a, **k: calls.append(k["grid_thw"].shape[0]) or \
        original(*a, **k)

    def grads(b):
        lp, _ = token_logprobs(model, b)
        (lp * b["completion_mask"][:, 1:]).sum().backward()
        out = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        model.zero_grad()
        return lp.detach(), out

    shared, g_shared = grads(batch)
    alone, g_alone = grads({k: v for k, v in batch.items() if k != IMAGE_KEY})
    assert calls == [2, 6]  # the tower saw each distinct image once, then all six
    assert torch.equal(shared, alone)
    assert all(torch.allclose(g_shared[n], g_alone[n], rtol=1e-4, atol=1e-6) for n in g_alone)

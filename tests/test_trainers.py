import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForImageTextToText, AutoProcessor

import tasks
from harness.backends import GenerationConfig, Request
from harness.backends.hf import HFBackend
from harness.likelihood.logprobs import collate, encode_prompt, token_logprobs
from harness.runs.store import read_jsonl
from tasks import decode_images
from trainers import rl, session, sft
from trainers.config import CheckpointEval, OptimSettings
from trainers.parts import parameter_parts, set_trainable
from trainers.session import TrainSet
from vrbench.errors import VrbenchError

TINY_EVAL = CheckpointEval(id_tasks="count_shapes", ood_tasks="bar_chart", limit=4,
                         max_new_tokens=8)


def _weights(ckpt) -> dict:
    return load_file(str(Path(ckpt) / "model.safetensors"))


def _same_weights(a, b) -> bool:
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_collate_marks_exactly_the_completion_tokens(tiny_model):
    proc = AutoProcessor.from_pretrained(tiny_model)
    t = tasks.load("count_shapes")
    samples = t.samples("test", 3)
    comps = [[105, 106, 107], [108], [109, 110]]  # plain text tokens
    encs = [encode_prompt(proc, t.prompt(s), decode_images(s)) for s in samples]
    batch = collate(encs, comps, proc.tokenizer.pad_token_id)
    for i, (e, c) in enumerate(zip(encs, comps, strict=True)):
        m = batch["completion_mask"][i].bool()
        assert batch["input_ids"][i][m].tolist() == c
        assert batch["input_ids"][i][:len(e.input_ids)].tolist() == e.input_ids.tolist()
        assert batch["attention_mask"][i].sum() == len(e.input_ids) + len(c)
    # the shifted mask picks the log-probs of the completion tokens, and only those
    model = AutoModelForImageTextToText.from_pretrained(tiny_model)
    logp, _ = token_logprobs(model, batch)
    assert logp.shape == batch["completion_mask"][:, 1:].shape
    assert int(batch["completion_mask"][:, 1:].sum()) == 6


def test_trainable_parts(tiny_model):
    model = AutoModelForImageTextToText.from_pretrained(tiny_model)
    counts = set_trainable(model, ("language",))["trained"]
    assert counts["vision"] == counts["connector"] == 0 and counts["language"] > 0
    part = parameter_parts(model)
    for name, p in model.named_parameters():
        assert p.requires_grad == (part[name] == "language")
    assert {n for n, x in part.items() if x == "connector"} == {
        n for n, _ in model.named_parameters() if ".visual.merger." in f".{n}"}
    with pytest.raises(VrbenchError):
        set_trainable(model, ("eyes",))


def test_sft_learns_the_format_and_writes_a_loadable_checkpoint(sft_model):
    out = Path(sft_model).parent
    log = read_jsonl(out / "train_log.jsonl")
    assert log[-1]["loss"] < 0.5 * log[0]["loss"]
    # the checkpoint loads with the Auto classes and answers in the trained format
    be = HFBackend(sft_model)
    t = tasks.load("count_shapes")
    s = t.samples("validation", 4)
    outs = be.generate([Request(t.prompt(x), decode_images(x)) for x in s],
                       GenerationConfig(max_new_tokens=32))
    assert all("\\boxed{" in o[0].text and o[0].finish_reason == "stop" for o in outs)
    dyn = read_jsonl(out / "dynamics.jsonl")
    assert {(r["task"], r["split"], r["step"]) for r in dyn} == {
        ("count_shapes", "validation", 60)}
    assert dyn[0]["format_ratio"] == 1.0
    cfg = json.loads((out / "train_config.json").read_text())
    assert cfg["trainer"] == "sft" and cfg["trainable"]["trained"]["vision"] > 0


def _sft_cfg(model, out, **kw):
    return sft.SFTConfig(model=model, out=str(out), tasks="count_shapes,sides_sum", steps=4,
                         batch_size=4, grad_accum=2, save_every=2, log_every=1,
                         reflective=0.5, eval=TINY_EVAL, **kw)


def test_terse_solutions_are_the_answer_alone(tmp_path, tiny_model):
    """--terse: that share of examples is trained on `\\boxed{target}` alone, drawn apart
    from the reflective share (which is unchanged); a model trained on them answers
    directly, in a few tokens."""
    data = TrainSet("count_shapes", "train", 0, None)
    texts = {t: [sft.solution_text(_sft_cfg(tiny_model, tmp_path, terse=t), data.example(i)[1],
                                   i) for i in range(400)] for t in (0.0, 0.3)}
    bare = [x == f"\\boxed{{{data.example(i)[1].target}}}" for i, x in enumerate(texts[0.3])]
    assert 0.22 < sum(bare) / 400 < 0.38 and not any(x.startswith("\\boxed") for x in texts[0.0])
    assert [x for x, b in zip(texts[0.3], bare, strict=True) if not b] == [
        x for x, b in zip(texts[0.0], bare, strict=True) if not b]
    ck = sft.train(sft.SFTConfig(model=tiny_model, out=str(tmp_path / "terse"),
                                 tasks="count_shapes", steps=30, batch_size=8, terse=1.0,
                                 optim=OptimSettings(lr=3e-3), eval=TINY_EVAL))
    (row,) = [r for r in read_jsonl(tmp_path / "terse" / "dynamics.jsonl")
              if r["checkpoint"] == ck.name and r["task"] == "count_shapes"]
    assert row["length_mean"] <= 6 and row["format_ratio"] == 1.0


def test_sft_resume_is_exact(tmp_path, tiny_model):
    straight = sft.train(_sft_cfg(tiny_model, tmp_path / "a"))
    sft.train(_sft_cfg(tiny_model, tmp_path / "b"))
    shutil.rmtree(tmp_path / "b" / "checkpoint-000004")  # as if killed after step 2
    with pytest.raises(VrbenchError, match="--resume"):
        sft.train(_sft_cfg(tiny_model, tmp_path / "b"))
    resumed = sft.train(_sft_cfg(tiny_model, tmp_path / "b", resume=True))
    assert _same_weights(straight, resumed)
    assert not _same_weights(straight, tmp_path / "a" / "checkpoint-000002")
    # the evaluation of each checkpoint is in the dynamics exactly once
    dyn = read_jsonl(tmp_path / "b" / "dynamics.jsonl")
    keys = [(r["checkpoint"], r["task"], r["preset"]) for r in dyn]
    assert len(keys) == len(set(keys)) == 4


def test_a_log_without_a_checkpoint_is_kept_or_restarted_on_purpose(tmp_path, tiny_model,
                                                                     capsys):
    """A run stopped before its first checkpoint leaves only its log: a new run in that folder
    is refused (the log is kept), and `--resume` says it starts from step 0."""
    out = tmp_path / "b"
    out.mkdir()
    (out / "train_log.jsonl").write_text('{"step": 1, "loss": 2.5}\n')
    with pytest.raises(VrbenchError, match="train_log.jsonl from an earlier run; pass --resume"):
        sft.train(_sft_cfg(tiny_model, out))
    assert read_jsonl(out / "train_log.jsonl") == [{"step": 1, "loss": 2.5}]
    sft.train(_sft_cfg(tiny_model, out, resume=True))
    assert "holds no checkpoint yet; starting from step 0" in capsys.readouterr().out
    assert [r["step"] for r in read_jsonl(out / "train_log.jsonl")] == [1, 2, 3, 4]


def test_a_checkpoint_saved_but_not_scored_is_scored_on_resume(tmp_path, tiny_model,
                                                               monkeypatch):
    """A checkpoint is saved, then scored: a run stopped between the two (here at its last
    checkpoint, its scoring stopped before it began, as a kill stops it) scores it when resumed,
    though no step is left to run; each checkpoint's rows are in the dynamics once."""
    out = tmp_path / "b"
    real = session.evaluate_checkpoint

    def killed(path, *args, **kwargs):
        if path.name == "checkpoint-000004":
            raise KeyboardInterrupt
        return real(path, *args, **kwargs)

    monkeypatch.setattr(session, "evaluate_checkpoint", killed)
    with pytest.raises(KeyboardInterrupt):
        sft.train(_sft_cfg(tiny_model, out))
    monkeypatch.undo()
    assert {r["checkpoint"] for r in read_jsonl(out / "dynamics.jsonl")} == {
        "checkpoint-000002"}
    sft.train(_sft_cfg(tiny_model, out, resume=True))
    dyn = read_jsonl(out / "dynamics.jsonl")
    keys = [(r["checkpoint"], r["task"], r["preset"]) for r in dyn]
    assert len(keys) == len(set(keys)) == 4
    assert {(r["checkpoint"], r["step"]) for r in dyn} == {("checkpoint-000002", 2),
                                                          ("checkpoint-000004", 4)}
    assert (out / "evals" / "checkpoint-000004-greedy-validation" / "results.json").is_file()


def _rl_cfg(model, out, **kw):
    base = dict(model=model, out=str(out), tasks="count_shapes", steps=2, prompts_per_step=4,
                group_size=4, gen_chunk=2, max_new_tokens=24, save_every=1,
                optim=OptimSettings(lr=1e-3, warmup=0.0, min_lr_ratio=1.0),
                eval=CheckpointEval(id_tasks="count_shapes", ood_tasks="", limit=2,
                                  max_new_tokens=8))
    return rl.RLConfig(**(base | kw))


@pytest.mark.parametrize("advantage", ["grpo", "reinforce_pp"])
def test_rl_step_moves_the_policy_toward_positive_advantages(tmp_path, sft_model, advantage):
    out = tmp_path / advantage
    final = rl.train(_rl_cfg(sft_model, out, steps=1, advantage=advantage, kl_coef=0.01,
                             mini_batches=2, ppo_epochs=2))
    rolls = read_jsonl(out / "rollouts.jsonl")
    assert len(rolls) == 16 and {r["step"] for r in rolls} == {1}
    assert any(r["advantage"] > 0 for r in rolls) and any(r["advantage"] < 0 for r in rolls)
    t = tasks.load("count_shapes")
    by_id = {s.id: s for s in t.samples("train")}
    proc = AutoProcessor.from_pretrained(sft_model)
    encs = [encode_prompt(proc, t.prompt(by_id[r["doc_id"]]), decode_images(by_id[r["doc_id"]]))
            for r in rolls]
    batch = collate(encs, [r["token_ids"] for r in rolls], proc.tokenizer.pad_token_id)
    mask = batch["completion_mask"][:, 1:].float()

    def seq_logp(path):
        model = AutoModelForImageTextToText.from_pretrained(path)
        with torch.no_grad():
            return (token_logprobs(model, batch)[0] * mask).sum(1)

    delta = seq_logp(final) - seq_logp(sft_model)
    adv = torch.tensor([r["advantage"] for r in rolls])
    assert float((adv * delta).sum()) > 0  # likelier where better than the group, and back
    log = read_jsonl(out / "train_log.jsonl")[-1]
    for key in ("reward_mean", "train_acc", "length_mean", "length_max", "length_clip_ratio",
                "kl", "entropy", "clip_frac", "ratio", "grad_norm", "reflection_ratio",
                "zero_std_group_ratio", "gen_tokens_per_s", "update_tokens_per_s"):
        assert key in log, key
    assert log["kl"] >= 0 and 0 <= log["clip_frac"] <= 1


@pytest.mark.parametrize("loss,agg", [("ppo", "seq-mean-token-mean"),
                                      ("ppo", "seq-mean-token-sum-norm"),
                                      ("gspo", "seq-mean-token-mean")])
def test_every_objective_trains_and_logs(tmp_path, sft_model, loss, agg):
    out = tmp_path / f"{loss}-{agg}"
    rl.train(_rl_cfg(sft_model, out, steps=1, loss=loss, loss_agg=agg, tis_cap=2.0,
                     save_every=0, eval=CheckpointEval(id_tasks="", ood_tasks="")))
    (row,) = read_jsonl(out / "train_log.jsonl")
    assert math.isfinite(row["loss"]) and row["grad_norm"] > 0
    assert 0.0 <= row["tis_capped"] <= 1.0
    saved = json.loads((out / "train_config.json").read_text())
    assert (saved["loss"], saved["loss_agg"]) == (loss, agg)


def test_rl_resume_is_exact(tmp_path, sft_model):
    straight = rl.train(_rl_cfg(sft_model, tmp_path / "a"))
    rl.train(_rl_cfg(sft_model, tmp_path / "b"))
    shutil.rmtree(tmp_path / "b" / "checkpoint-000002")
    resumed = rl.train(_rl_cfg(sft_model, tmp_path / "b", resume=True))
    assert _same_weights(straight, resumed)
    # the killed run's step 2 is in the logs once, as the resumed run wrote it again
    a, b = (read_jsonl(tmp_path / x / "rollouts.jsonl") for x in ("a", "b"))
    assert [(r["step"], r["response"]) for r in a] == [(r["step"], r["response"]) for r in b]
    assert [r["step"] for r in read_jsonl(tmp_path / "b" / "train_log.jsonl")] == [1, 2]


def test_rl_config_errors(tmp_path, sft_model):
    with pytest.raises(VrbenchError, match="advantage"):
        rl.train(_rl_cfg(sft_model, tmp_path / "x", advantage="ppo"))
    with pytest.raises(VrbenchError, match="multiple of gen_chunk"):
        rl.train(_rl_cfg(sft_model, tmp_path / "y", prompts_per_step=5))


@pytest.mark.parametrize("damage,flags,message", [
    ("pad_token", {}, "has no padding token"),
    ("eos_token", {}, "has no end-of-sequence token"),
    (None, {"eval": CheckpointEval(id_tasks="", ood_tasks="", max_new_tokens=10**6)},
     "--eval-max-new-tokens 1000000 does not fit the model's context"),
    (None, {"optim": OptimSettings(train=("language", "eyes"))}, "unknown trainable part"),
])
def test_a_run_the_model_cannot_serve_is_refused_before_training(
        tiny_model, tmp_path, damage, flags, message):
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    if damage:
        path = model / "tokenizer_config.json"
        path.write_text(json.dumps(json.loads(path.read_text()) | {damage: None}))
    cfg = sft.SFTConfig(model=str(model), out=str(tmp_path / "out"), tasks="count_shapes",
                        steps=1, batch_size=2, **({"eval": CheckpointEval(
                            id_tasks="", ood_tasks="")} | flags))
    with pytest.raises(VrbenchError, match=message):
        sft.train(cfg)
    assert not list((tmp_path / "out").glob("checkpoint-*"))


def test_an_rl_response_longer_than_the_context_is_refused(tiny_model, tmp_path):
    cfg = rl.RLConfig(model=tiny_model, out=str(tmp_path / "rl"), tasks="count_shapes",
                      steps=1, prompts_per_step=2, gen_chunk=2, max_new_tokens=10**6,
                      eval=CheckpointEval(id_tasks="", ood_tasks=""))
    with pytest.raises(VrbenchError, match="--max-new-tokens 1000000 does not fit"):
        rl.train(cfg)


def test_a_model_without_a_vision_tower_cannot_freeze_one():
    from transformers import LlamaConfig, LlamaForCausalLM
    text_only = LlamaForCausalLM(LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32,
                                             num_hidden_layers=1, num_attention_heads=2))
    with pytest.raises(VrbenchError, match="exposes no vision tower"):
        set_trainable(text_only, ("language",))

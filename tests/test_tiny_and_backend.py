import hashlib
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

import tasks
from harness.backends import GenerationConfig, Request
from harness.backends.hf import HFBackend
from tasks import decode_images
from trainers import tiny


def _weights_digest(path) -> str:
    return hashlib.sha256((Path(path) / "model.safetensors").read_bytes()).hexdigest()


def test_tiny_checkpoint_loads_with_auto_classes(tiny_model):
    proc = AutoProcessor.from_pretrained(tiny_model)
    model = AutoModelForImageTextToText.from_pretrained(tiny_model)
    assert type(model).__name__ == "Qwen2VLForConditionalGeneration"
    tok = proc.tokenizer
    gen = model.generation_config
    assert tok.convert_tokens_to_ids("<|im_end|>") in gen.eos_token_id
    assert gen.pad_token_id == tok.pad_token_id and gen.bos_token_id == tok.bos_token_id
    cfg = model.config.text_config
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    assert sum(cfg.rope_parameters["mrope_section"]) == head_dim // 2
    # the chat template places one image and the text in a user turn
    text = proc.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "hi"}]}],
        add_generation_prompt=True, tokenize=False)
    assert text.endswith("<|im_start|>assistant\n") and "<|image_pad|>" in text
    # task text tokenizes into few tokens (the tokenizer was trained on it)
    sample = tasks.load("count_shapes").samples("test", 1)[0]
    assert len(tok.tokenize(sample.solution)) < len(sample.solution) / 2
    assert 0.3e6 < sum(p.numel() for p in model.parameters()) < 2e6


def test_tiny_build_is_deterministic(tmp_path, tiny_model):
    again = tiny.build(tmp_path / "again", size="tiny", seed=0)
    other = tiny.build(tmp_path / "other", size="tiny", seed=1)
    assert _weights_digest(again) == _weights_digest(tiny_model)
    assert _weights_digest(other) != _weights_digest(tiny_model)
    assert (again / "tokenizer.json").read_text() == (Path(tiny_model) / "tokenizer.json"
                                                      ).read_text()


def _requests(n):
    t = tasks.load("compare_figures")  # wide images: different sizes per batch are fine too
    c = tasks.load("count_shapes")
    out = []
    for task in (t, c):
        for s in task.samples("test", n):
            out.append(Request(task.prompt(s), decode_images(s)))
    return out


def test_batched_generation_equals_one_at_a_time(tiny_model):
    be = HFBackend(tiny_model)
    reqs = _requests(3)
    cfg = GenerationConfig(max_new_tokens=12)
    batched = be.generate(reqs, cfg)
    alone = [be.generate([r], cfg)[0] for r in reqs]
    assert [b[0].text for b in batched] == [a[0].text for a in alone]
    assert [b[0].n_tokens for b in batched] == [a[0].n_tokens for a in alone]


def test_sampling_n_responses_seeded_and_finish_reasons(tiny_model):
    be = HFBackend(tiny_model)
    reqs = _requests(2)
    cfg = GenerationConfig(max_new_tokens=6, temperature=1.0, top_p=0.9, n=3, seed=7)
    a, b = be.generate(reqs, cfg), be.generate(reqs, cfg)
    assert [len(x) for x in a] == [3] * len(reqs)
    assert [[r.text for r in x] for x in a] == [[r.text for r in x] for x in b]
    for resps in a:
        for r in resps:
            assert r.finish_reason in ("stop", "length")
            assert (r.finish_reason == "length") == (r.n_tokens == 6)
            assert r.n_tokens <= 6


def test_vision_tokens_are_never_generated(tiny_model):
    be = HFBackend(tiny_model)
    # make the image-pad token overwhelmingly likely, then check it is still never emitted
    pad = be.processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    with torch.no_grad():
        be.model.lm_head.weight[pad] += 50.0
    try:
        out = be.generate(_requests(2), GenerationConfig(max_new_tokens=8))
    finally:
        with torch.no_grad():
            be.model.lm_head.weight[pad] -= 50.0
    ids = [i for resps in out for i in resps[0].token_ids]
    assert len(ids) > 0 and pad not in ids


@pytest.mark.slow
def test_a_trained_tiny_model_answers(tmp_path, capsys):
    """The tour's model: built and trained in one command, it answers the ID tasks well
    above always giving their most common answer."""
    from vrbench.cli import main
    assert main(["build-tiny", str(tmp_path / "m"), "--trained"]) == 0
    printed = capsys.readouterr().out
    assert "trained 300 SFT steps on the ID tasks" in printed
    from harness.runs.runner import evaluate
    out = evaluate(str(tmp_path / "m"), "id", limit=16, max_new_tokens=48,
                   output=str(tmp_path / "run"), progress=False)
    for task, r in out["results"].items():
        assert r["acc"] >= 0.5 and r["acc"] > r["majority_baseline"], task
    assert not list(tmp_path.glob(".m.build"))  # its work folder is gone
    assert main(["build-tiny", str(tmp_path / "m"), "--trained"]) == 2  # never over a model

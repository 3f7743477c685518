"""`vrbench kl`: the forward KL from a base checkpoint on its own samples, checked against an
independent computation, zero for the base itself, and refused across vocabularies."""

import json
import shutil

import pytest
import torch
from transformers import AutoModelForImageTextToText

from harness.backends import GenerationConfig, Request
from harness.backends.hf import HFBackend
from harness.likelihood import kl
from tasks import decode_images, load
from vrbench.cli import main
from vrbench.errors import VrbenchError
from vrbench.seeds import derive


@pytest.fixture(scope="module")
def moved(tiny_model, tmp_path_factory):
    """The tiny model with its output layer nudged: a checkpoint at a known small distance."""
    out = tmp_path_factory.mktemp("moved") / "ckpt"
    shutil.copytree(tiny_model, out)
    model = AutoModelForImageTextToText.from_pretrained(out, dtype=torch.float32)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        head = model.get_output_embeddings().weight
        head.add_(0.5 * torch.randn(head.shape, generator=g))
    model.save_pretrained(out)
    return str(out)


def test_kl_matches_an_independent_computation(tiny_model, moved):
    cfg = kl.KLConfig(split="test", limit=3, max_new_tokens=12, batch_size=2, seed=5)
    (row,) = kl.measure(tiny_model, [moved], "count_shapes", cfg)[moved]
    # the same responses, sampled again; both models' full logits, no logits_to_keep
    base, other = HFBackend(tiny_model), HFBackend(moved)
    t = load("count_shapes")
    total, tokens = [], 0
    samples = t.samples("test", 3)
    for i in range(0, 3, 2):
        chunk = samples[i:i + 2]
        reqs = [Request(t.prompt(s), decode_images(s)) for s in chunk]
        outs = base.generate(reqs, GenerationConfig(max_new_tokens=12, temperature=1.0,
                                                    seed=derive(5, "kl-batch", i)))
        for req, (resp,) in zip(reqs, outs, strict=True):
            enc = base.processor(text=[base.processor.apply_chat_template(
                [{"role": "user", "content": [{"type": "image"},
                                              {"type": "text", "text": req.prompt}]}],
                add_generation_prompt=True, tokenize=False)], images=req.images,
                return_tensors="pt")
            ids = torch.cat([enc["input_ids"], torch.tensor([resp.token_ids])], dim=1)
            inputs = dict(enc) | {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
            if "mm_token_type_ids" in inputs:
                inputs["mm_token_type_ids"] = torch.cat([enc["mm_token_type_ids"], torch.zeros(
                    1, len(resp.token_ids), dtype=torch.long)], dim=1)
            n = len(resp.token_ids)
            lp = []
            for engine in (base, other):
                with torch.no_grad():
                    logits = engine.model(**inputs).logits[0, -n - 1:-1].float()
                logits[:, engine.suppress] = float("-inf")
                lp.append(torch.log_softmax(logits, -1))
            p = lp[0].exp()
            total.append(float(torch.where(p > 0, p * (lp[0] - lp[1]), 0.0).sum()))
            tokens += n
    assert row.n == 3
    assert row.kl == pytest.approx(sum(total) / 3, rel=1e-4)
    assert row.kl_per_token == pytest.approx(sum(total) / tokens, rel=1e-4)
    assert row.kl > 0.01 and row.ci[0] <= row.kl <= row.ci[1]


def test_kl_to_itself_is_zero_and_the_cli_writes_json(tiny_model, moved, tmp_path, capsys):
    out = tmp_path / "kl.json"
    assert main(["kl", tiny_model, tiny_model, moved, "--tasks", "count_shapes,sides_sum",
                 "--limit", "2", "--max-new-tokens", "8", "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| [average] |" in text and str(out) in text
    data = json.loads(out.read_text())
    assert data["base"] == tiny_model and data["config"]["limit"] == 2
    same, other = data["kl"][tiny_model], data["kl"][moved]
    assert [r["task"] for r in same] == ["count_shapes", "sides_sum", "[average]"]
    assert all(r["kl"] == pytest.approx(0, abs=1e-6) for r in same)
    assert all(r["kl"] > 0 for r in other)
    assert other[-1]["kl"] == pytest.approx((other[0]["kl"] + other[1]["kl"]) / 2)


def test_kl_refuses_checkpoints_with_another_tokenizer(tiny_model, tmp_path):
    from trainers import tiny
    llava = tiny.build(tmp_path / "llava", size="tiny", arch="llava")
    cfg = kl.KLConfig(limit=1, max_new_tokens=4)
    with pytest.raises(VrbenchError, match="different tokenizers"):
        kl.measure(tiny_model, [str(llava)], "count_shapes", cfg)
    with pytest.raises(VrbenchError, match="at least 1"):
        kl.measure(tiny_model, [tiny_model], "count_shapes", kl.KLConfig(batch_size=0))

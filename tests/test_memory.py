"""The pre-flight memory estimate: exact for the tensors a run holds (checked against those
of a tiny model's session after an optimizer step), a run that cannot fit refused before
its model loads, and the paper's recipes fitting the 80 GB GPUs they were run on."""

import re

import pytest
import torch
from transformers import AutoConfig, Qwen2_5_VLConfig, Qwen2VLConfig

from trainers import memory, recipes, session
from trainers.config import CheckpointEval, OptimSettings
from trainers.rl import RLConfig
from trainers.sft import SFTConfig, train
from vrbench.errors import VrbenchError

NO_EVAL = CheckpointEval(id_tasks="", ood_tasks="")
# the published sizes, as configs (nothing is downloaded; parameters are counted on "meta")
QWEN25_VL_7B = Qwen2_5_VLConfig(
    text_config=dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                     num_attention_heads=28, num_key_value_heads=4, vocab_size=152064,
                     tie_word_embeddings=False,
                     rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]}),
    vision_config=dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16,
                       out_hidden_size=3584), tie_word_embeddings=False)
QWEN2_VL_2B = Qwen2VLConfig(
    text_config=dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                     num_attention_heads=12, num_key_value_heads=2, vocab_size=151936,
                     tie_word_embeddings=True,
                     rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]}),
    vision_config=dict(depth=32, embed_dim=1280, hidden_size=1536, num_heads=16),
    tie_word_embeddings=True)


def _bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


@pytest.mark.parametrize("dtype,parts", [("float32", ("language",)),
                                         ("bfloat16", ("vision", "connector", "language"))])
def test_the_estimate_is_the_tensors_a_session_holds(tiny_model, tmp_path, dtype, parts):
    cfg = SFTConfig(model=tiny_model, out=str(tmp_path / "sft"), tasks="count_shapes", steps=1,
                    batch_size=2, param_dtype=dtype, optim=OptimSettings(train=parts),
                    eval=NO_EVAL)
    sess = session.start(cfg, "sft", 1)
    try:
        for p in sess.model.parameters():
            if p.requires_grad:
                p.grad = torch.ones_like(p)
        sess.opt.step()  # AdamW creates its two moments per trained parameter
        held = {"weights": _bytes(sess.model.parameters()),
                "gradients": _bytes(p.grad for p in sess.model.parameters()
                                    if p.grad is not None),
                "optimizer": _bytes(v for s in sess.opt.state.values()
                                    for k, v in s.items() if k != "step")}
    finally:
        sess.close()
    assert memory.estimate(cfg, "sft", 1, AutoConfig.from_pretrained(tiny_model)) == held


def test_a_run_that_cannot_fit_is_refused_before_its_model_loads(tiny_model, tmp_path,
                                                                 monkeypatch):
    monkeypatch.setattr(memory, "capacity", lambda device: 10 ** 6)  # a 1 MB "GPU"

    def never(*args, **kw):
        raise AssertionError("the model was loaded")
    monkeypatch.setattr("harness.backends.hf.load_model", never)
    cfg = SFTConfig(model=tiny_model, out=str(tmp_path / "sft"), tasks="count_shapes", steps=1,
                    batch_size=2, eval=NO_EVAL)
    with pytest.raises(VrbenchError, match=r"more than 90% of the 1.0 MB each GPU here has; "
                                           r"shard it with --fsdp under torchrun"):
        train(cfg)


def _world(name: str) -> int:
    header = (recipes.HERE / f"{name}.yaml").read_text()
    return int(re.search(r"--nproc_per_node (\d+)", header).group(1))


@pytest.mark.parametrize("name", recipes.names())
def test_the_paper_recipes_fit_the_80_gb_gpus_they_ran_on(name):
    rl = name.startswith("maye")
    cfg = recipes.load(name, RLConfig if rl else SFTConfig, "rl" if rl else "sft")
    model = QWEN25_VL_7B if "25vl_7b" in name else QWEN2_VL_2B
    need = memory.estimate(cfg, "rl" if rl else "sft", _world(name), model)
    memory.check_fits(need, 80 * memory.GB, _world(name), cfg.fsdp)  # raises if it cannot
    assert sum(need.values()) < 0.9 * 80 * memory.GB


def test_the_7b_recipes_would_not_fit_unsharded():
    cfg = recipes.load("maye_qwen25vl_7b_mmmath5k", RLConfig, "rl")
    cfg.fsdp = False
    with pytest.raises(VrbenchError, match="shard it with --fsdp"):
        memory.check_fits(memory.estimate(cfg, "rl", 7, QWEN25_VL_7B), 80 * memory.GB, 7,
                          cfg.fsdp)
    assert sum(memory.parameter_counts(QWEN25_VL_7B).values()) == pytest.approx(8.29e9, 0.01)

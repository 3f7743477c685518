"""LoRA through peft: adapters only train, and a checkpoint's merged weights generate what
the adapted model generated."""

import pytest
import torch
from safetensors.torch import load_file

from harness.backends import GenerationConfig, Request
from harness.backends.hf import HFBackend
from harness.runs.store import read_jsonl
from tasks import decode_images, load
from trainers import lora, sft
from trainers.config import CheckpointEval, OptimSettings
from trainers.lora import LoraSettings
from vrbench.errors import VrbenchError

pytestmark = pytest.mark.slow


def _cfg(model, out, **kw):
    return sft.SFTConfig(**({
        "model": model, "out": str(out), "tasks": "count_shapes", "steps": 3, "batch_size": 4,
        "log_every": 1, "lora": LoraSettings(r=4), "optim": OptimSettings(lr=5e-2),
        "eval": CheckpointEval(id_tasks="", ood_tasks="")} | kw))


def test_only_the_adapters_train_and_the_merged_checkpoint_generates_the_same(
        tmp_path, tiny_model, monkeypatch):
    from harness.backends.hf import load_model
    _, base = load_model(tiny_model)
    targets = lora.target_modules(base, LoraSettings(r=4))
    assert targets and all(".language_model." in n or "model.layers" in n for n in targets)
    linear = dict(base.named_modules())
    want = sum(4 * (linear[n].in_features + linear[n].out_features) for n in targets)
    adapted, counts = lora.attach(base, LoraSettings(r=4))
    assert sum(counts["trained"].values()) == want
    assert counts["trained"]["vision"] == counts["trained"]["connector"] == 0

    kept = {}
    import trainers.checkpoints as ck
    real = ck.save_checkpoint

    def save(out, step, model, *args, **kw):  # the adapted model, as training left it
        kept["model"] = model
        return real(out, step, model, *args, **kw)
    monkeypatch.setattr("trainers.session.save_checkpoint", save)
    final = sft.train(_cfg(tiny_model, tmp_path / "lora"))
    start, after = load_file(f"{tiny_model}/model.safetensors"), load_file(
        f"{final}/model.safetensors")
    changed = [k for k in start if not torch.equal(start[k], after[k])]
    # the merged weights differ exactly where adapters sit (the language model's linear
    # layers, every one of them), and nowhere else
    assert len(changed) == len(targets)
    assert all(k.endswith(".weight") and k.rsplit(".", 2)[-2] in lora.TARGETS
               and "visual" not in k for k in changed)
    assert (final / lora.ADAPTER_DIR / "adapter_config.json").exists()
    # the checkpoint, loaded like any other, generates what the adapted model generated
    t = load("count_shapes")
    reqs = [Request(t.prompt(s), decode_images(s)) for s in t.samples("test", 4)]
    greedy = GenerationConfig(max_new_tokens=16)
    live = HFBackend.from_loaded(HFBackend(tiny_model).processor, kept["model"].eval())
    ours = [r[0].text for r in live.generate(reqs, greedy)]
    theirs = [r[0].text for r in HFBackend(str(final)).generate(reqs, greedy)]
    assert ours == theirs
    assert read_jsonl(tmp_path / "lora" / "train_log.jsonl")[-1]["step"] == 3


def test_lora_settings_are_checked(tmp_path, tiny_model):
    with pytest.raises(VrbenchError, match="--fsdp"):
        sft.train(_cfg(tiny_model, tmp_path / "a", fsdp=True))
    with pytest.raises(VrbenchError, match="no linear layer"):
        sft.train(_cfg(tiny_model, tmp_path / "b", lora=LoraSettings(r=4, targets=("nope",))))


def test_rl_with_lora_samples_from_the_adapted_model_and_saves_a_loadable_checkpoint(
        tmp_path, sft_model):
    from trainers import rl
    final = rl.train(rl.RLConfig(
        model=sft_model, out=str(tmp_path / "rl"), tasks="count_shapes", steps=2,
        prompts_per_step=4, group_size=4, gen_chunk=2, max_new_tokens=16, kl_coef=0.01,
        lora=LoraSettings(r=4), optim=OptimSettings(lr=1e-2, warmup=0.0, min_lr_ratio=1.0),
        eval=CheckpointEval(id_tasks="count_shapes", ood_tasks="", limit=2,
                            max_new_tokens=8)))
    rows = read_jsonl(tmp_path / "rl" / "train_log.jsonl")
    assert len(rows) == 2 and rows[0]["logprob_gap_max"] < 1e-3  # on-policy with adapters
    assert (final / lora.ADAPTER_DIR).is_dir()
    assert read_jsonl(tmp_path / "rl" / "dynamics.jsonl")[0]["step"] == 2

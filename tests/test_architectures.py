"""Every architecture `AutoModelForImageTextToText` loads goes through the same code: tiny
offline checkpoints of Qwen2-VL, Qwen2.5-VL, LLaVA and Idefics3 (SmolVLM's family), each
scored by the harness and trained a step by both trainers."""

import json

import pytest
import torch
from transformers import AutoConfig, AutoModelForImageTextToText

from harness.runs.runner import evaluate
from harness.runs.store import read_jsonl
from trainers import rl, sft, tiny
from trainers.config import CheckpointEval, OptimSettings
from vrbench.cli import main

EVAL = CheckpointEval(id_tasks="count_shapes", ood_tasks="", limit=2, max_new_tokens=6)
MODEL_TYPES = {"qwen2_vl": "qwen2_vl", "qwen2_5_vl": "qwen2_5_vl", "llava": "llava",
               "idefics3": "idefics3"}


@pytest.mark.parametrize("arch", list(MODEL_TYPES))
def test_architecture_end_to_end(arch, tmp_path):
    model = tmp_path / arch
    assert main(["build-tiny", str(model), "--arch", arch]) == 0
    assert AutoConfig.from_pretrained(model).model_type == MODEL_TYPES[arch]
    out = evaluate(str(model), "count_shapes,bar_chart", limit=3, max_new_tokens=8,
                   batch_size=2, output=tmp_path / "eval", progress=False)
    for task in ("count_shapes", "bar_chart"):
        r = out["results"][task]
        assert r["n_samples"] == 3 and r["n_errors"] == 0 and 1 <= r["length_mean"] <= 8
    ck = sft.train(sft.SFTConfig(model=str(model), out=str(tmp_path / "sft"),
                                 tasks="count_shapes", steps=3, batch_size=4, log_every=1,
                                 eval=EVAL))
    losses = [r["loss"] for r in read_jsonl(tmp_path / "sft" / "train_log.jsonl")]
    assert losses[-1] < losses[0]
    rl.train(rl.RLConfig(model=str(ck), out=str(tmp_path / "rl"), tasks="count_shapes",
                         steps=1, prompts_per_step=2, gen_chunk=2, group_size=2,
                         max_new_tokens=6, mini_batches=2, eval=EVAL))
    (step,) = read_jsonl(tmp_path / "rl" / "train_log.jsonl")
    assert step["step"] == 1 and len(read_jsonl(tmp_path / "rl" / "rollouts.jsonl")) == 4
    info = json.loads((tmp_path / "rl" / "checkpoint-000001" / "vrbench_checkpoint.json")
                      .read_text())
    assert info["trainer"] == "rl" and info["name"] == "rl"


@pytest.mark.parametrize("arch", list(MODEL_TYPES))
def test_training_the_language_model_leaves_the_vision_tower_untouched(arch, tmp_path):
    """The parts are found on every architecture: the vision tower the model itself names
    (`get_encoder("image")`) stays bit-identical while the language model moves."""
    model = tiny.build(tmp_path / arch, arch=arch)
    ck = sft.train(sft.SFTConfig(model=str(model), out=str(tmp_path / "sft"),
                                 tasks="count_shapes", steps=1, batch_size=2,
                                 optim=OptimSettings(lr=1e-2, warmup=0.0, train=("language",)),
                                 eval=CheckpointEval(id_tasks="", ood_tasks="")))
    before = AutoModelForImageTextToText.from_pretrained(model)
    after = AutoModelForImageTextToText.from_pretrained(ck)
    tower = list(zip(before.get_encoder("image").named_parameters(),
                     after.get_encoder("image").named_parameters(), strict=True))
    assert tower and all(torch.equal(p, q) for (_, p), (_, q) in tower)
    language = zip(before.get_decoder().parameters(), after.get_decoder().parameters(),
                   strict=True)
    assert any(not torch.equal(p, q) for p, q in language)
    trainable = json.loads((tmp_path / "sft" / "train_config.json").read_text())["trainable"]
    assert trainable["trained"]["vision"] == 0 < trainable["total"]["vision"]
    assert trainable["trained"]["language"] == trainable["total"]["language"] > 0

"""Any checkpoint a user brings: its dtype, its device, a model spread over devices by
accelerate (here the CPU and the disk, as far as one machine allows), and a checkpoint that
ships its own code, run only on an explicit opt-in that the run records."""

import json
import shutil

import pytest

from harness.backends.hf import load_model
from harness.runs.runner import evaluate
from helpers import one_sentence
from vrbench.cli import main


def _samples(run) -> list:
    return [json.loads(line)["resps"] for line in (run / "samples.jsonl").open()]


def test_a_model_spread_over_devices_answers_as_it_does_whole(tmp_path, sft_model):
    whole = evaluate(sft_model, "count_shapes", limit=4, max_new_tokens=24,
                     output=str(tmp_path / "whole"), progress=False)
    split = evaluate(sft_model, "count_shapes", limit=4, max_new_tokens=24,
                     output=str(tmp_path / "split"), progress=False, device_map="auto",
                     max_memory="cpu=2MB", offload_folder=str(tmp_path / "offload"))
    _, model = load_model(sft_model, device_map="auto", max_memory="cpu=2MB",
                          offload_folder=str(tmp_path / "offload"))
    assert "disk" in set(model.hf_device_map.values())  # the language model: on the disk
    assert _samples(tmp_path / "split") == _samples(tmp_path / "whole")
    assert split["config"]["loading"] == {"device_map": "auto"}
    assert "loading" not in whole["config"] or whole["config"]["loading"] is None
    assert split["config"]["run_id"] != whole["config"]["run_id"]


def test_dtype_and_device_are_flags(tmp_path, tiny_model, capsys):
    assert main(["eval", "--model", tiny_model, "--tasks", "count_shapes", "--limit", "2",
                 "--max-new-tokens", "4", "--dtype", "bfloat16", "--device", "cpu",
                 "--output", str(tmp_path / "bf16"), "--no-progress"]) == 0
    cfg = json.loads((tmp_path / "bf16" / "config.json").read_text())
    assert cfg["loading"] == {"dtype": "bfloat16"}
    with pytest.raises(SystemExit) as stop:
        main(["eval", "--model", tiny_model, "--tasks", "count_shapes", "--dtype", "int3"])
    assert stop.value.code == 2
    assert main(["eval", "--model", tiny_model, "--tasks", "count_shapes", "--max-memory",
                 "lots", "--device-map", "auto", "--output", str(tmp_path / "y")]) == 2
    assert "DEVICE=SIZE" in one_sentence(capsys)


def test_a_checkpoint_with_its_own_code_runs_only_when_trusted(tmp_path, tiny_model, capsys):
    model = tmp_path / "custom"
    shutil.copytree(tiny_model, model)
    config = json.loads((model / "config.json").read_text())
    config["auto_map"] = {"AutoModelForImageTextToText": "modeling_mine.MineModel"}
    (model / "config.json").write_text(json.dumps(config))
    (model / "modeling_mine.py").write_text(
        "from transformers import Qwen2VLForConditionalGeneration\n\n\n"
        "class MineModel(Qwen2VLForConditionalGeneration):\n    ran = True\n")
    args = ["eval", "--model", str(model), "--tasks", "count_shapes", "--limit", "1",
            "--max-new-tokens", "2", "--no-progress"]
    assert main([*args, "--output", str(tmp_path / "refused")]) == 2
    assert "--trust-remote-code" in one_sentence(capsys)
    assert main([*args, "--trust-remote-code", "--output", str(tmp_path / "run")]) == 0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["loading"] == {
        "trust_remote_code": True}
    assert type(load_model(str(model), trust_remote_code=True)[1]).__name__ == "MineModel"

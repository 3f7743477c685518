"""Class 1 of the hardening: nothing in a checkpoint from elsewhere runs code, and a damaged
one is one sentence and exit 2."""

import os
import shutil

import torch

from helpers import one_sentence
from vrbench.cli import main


class _Payload:
    """Unpickling this runs a shell command: what a hostile state file would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))



def _resumable_run(tmp_path, tiny_model, state) -> str:
    out = tmp_path / "run"
    ckpt = out / "checkpoint-000001"
    shutil.copytree(tiny_model, ckpt)
    torch.save(state, ckpt / "trainer_state.pt")
    return str(out)


def test_resuming_never_unpickles_code(tmp_path, tiny_model, capsys):
    marker = tmp_path / "pwned"
    out = _resumable_run(tmp_path, tiny_model, {"step": 1, "payload": _Payload(marker)})
    code = main(["sft", "--model", tiny_model, "--out", out, "--resume", "--steps", "2",
                 "--tasks", "count_shapes", "--eval-id-tasks", "", "--eval-ood-tasks", ""])
    assert not marker.exists(), "the state file ran code"
    assert code == 2 and "which are refused (unpickling them could run code)" in one_sentence(
        capsys)


def test_a_corrupt_or_foreign_trainer_state_is_one_sentence(tmp_path, tiny_model, capsys):
    out = _resumable_run(tmp_path, tiny_model, {"step": 1})
    args = ["rl", "--model", tiny_model, "--out", out, "--resume", "--steps", "2",
            "--tasks", "count_shapes", "--eval-id-tasks", "", "--eval-ood-tasks", ""]
    assert main(args) == 2  # plain data, but not a trainer state
    assert "is not a vrbench trainer state" in one_sentence(capsys)
    state = tmp_path / "run" / "checkpoint-000001" / "trainer_state.pt"
    state.write_bytes(state.read_bytes()[:40])
    assert main(args) == 2
    assert "damaged or was not written by vrbench" in one_sentence(capsys)


def test_a_hostile_pickled_model_is_refused_without_running(tmp_path, tiny_model, capsys):
    marker = tmp_path / "pwned"
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    (model / "model.safetensors").unlink()
    torch.save({"w": _Payload(marker)}, model / "pytorch_model.bin")
    code = main(["eval", "--model", str(model), "--tasks", "count_shapes", "--limit", "1",
                 "--output", str(tmp_path / "r")])
    assert not marker.exists(), "loading the model ran code"
    assert code == 2 and "could not be loaded as a vision-language checkpoint" in one_sentence(
        capsys)


def test_truncated_weights_are_one_sentence(tmp_path, tiny_model, capsys):
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    code = main(["eval", "--model", str(model), "--tasks", "count_shapes", "--limit", "1",
                 "--output", str(tmp_path / "r")])
    assert code == 2 and "could not be loaded" in one_sentence(capsys)

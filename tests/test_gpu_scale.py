"""`bench/gpu_scale.py`, the realistic-size GPU check, runs end to end at toy size on the CPU
(so it is ready the day a GPU is lent) and skips its GPU size cleanly without one."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).parent.parent / "bench" / "gpu_scale.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU the 3b size runs for real")
def test_the_gpu_size_is_skipped_without_a_gpu():
    out = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                         check=True)
    assert "needs a CUDA GPU" in out.stdout and "skipped" in out.stdout


@pytest.mark.slow
def test_the_gpu_check_runs_at_toy_size(tmp_path):
    pytest.importorskip("trl")
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--size", "tiny", "--samples", "8", "--batch-sizes", "4",
         "--rl-steps", "1", "--invariance-samples", "4", "--max-new-tokens", "4", "--out",
         str(tmp_path)], capture_output=True, text=True, check=True)
    result = json.loads((tmp_path / "gpu_scale.json").read_text())
    (row,) = result["eval"]["rows"]
    assert row["batch_size"] == 4 and row["vrbench_s"] > 0 and row["bare_s"] > 0
    assert row["tokens_per_s"] > 0 and row["samples_per_s"] == pytest.approx(8 / row["vrbench_s"])
    assert result["eval"]["invariance_samples"] == 4
    assert result["eval"]["batch_1_vs_32_differ"] == 0.0  # float32 on the CPU: invariant
    assert result["rl"]["vrbench"]["s_per_step"] > 0 and result["rl"]["trl"]["s_per_step"] > 0
    assert result["rl"]["vrbench"]["logprob_gap_max"] < 1e-3  # the CPU computes in float32
    assert "| vrbench rl |" in out.stdout and "| TRL GRPOTrainer |" in out.stdout

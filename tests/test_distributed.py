"""Two processes (torchrun, gloo on the CPU) against one, with the same global batch."""

import shutil
import subprocess
import sys

import pytest
from safetensors.torch import load_file

from harness.runs.store import read_jsonl

pytestmark = pytest.mark.slow

EVAL = ["--eval-id-tasks", "count_shapes", "--eval-ood-tasks", "", "--eval-limit", "2",
        "--eval-max-new-tokens", "4"]


def _run(nproc: int, args: list[str]) -> None:
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone",
                 f"--nproc_per_node={nproc}", "-m", "vrbench"] if nproc > 1
                else [sys.executable, "-m", "vrbench"])
    res = subprocess.run(launcher + args, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]


def _assert_close(a, b, lr: float):
    """Equal up to the float noise of summing gradients in another order. Adam divides by
    the gradient's size, so where a gradient is near zero its rounding can move a weight by a
    share of the learning rate (measured: 1 weight in 756,096 by 1.2e-4 at lr 3e-3, the rest
    within 2e-5); a wrong gradient moves weights by about the learning rate. So: all but 1
    weight in 10,000 within 1e-4, and every weight within a tenth of the learning rate."""
    wa, wb = load_file(f"{a}/model.safetensors"), load_file(f"{b}/model.safetensors")
    assert wa.keys() == wb.keys()
    off = 0
    for k in wa:
        gap = (wa[k] - wb[k]).abs()
        assert gap.max().item() <= lr / 10, (k, gap.max().item())
        off += int((gap > 1e-4 + 1e-4 * wb[k].abs()).sum())
    assert off <= sum(w.numel() for w in wa.values()) / 10_000, off


def test_sft_two_processes_match_one(tmp_path, tiny_model):
    args = ["sft", "--model", tiny_model, "--tasks", "count_shapes", "--steps", "3",
            "--batch-size", "4", "--grad-accum", "2", "--lr", "3e-3", *EVAL]
    _run(1, [*args, "--out", str(tmp_path / "one")])
    _run(2, [*args, "--out", str(tmp_path / "two")])
    _assert_close(tmp_path / "one" / "checkpoint-000003", tmp_path / "two" / "checkpoint-000003",
                  3e-3)
    one, two = read_jsonl(tmp_path / "one" / "train_log.jsonl"), read_jsonl(
        tmp_path / "two" / "train_log.jsonl")
    assert [r["loss"] for r in one] == pytest.approx([r["loss"] for r in two], rel=1e-4)


def test_rl_two_processes_match_one(tmp_path, sft_model):
    args = ["rl", "--model", sft_model, "--tasks", "count_shapes", "--steps", "2",
            "--prompts-per-step", "4", "--gen-chunk", "2", "--group-size", "4",
            "--max-new-tokens", "16", "--kl-coef", "0.01", "--lr", "1e-3", *EVAL]
    _run(1, [*args, "--out", str(tmp_path / "one")])
    _run(2, [*args, "--out", str(tmp_path / "two")])
    _assert_close(tmp_path / "one" / "checkpoint-000002", tmp_path / "two" / "checkpoint-000002",
                  1e-3)
    one = read_jsonl(tmp_path / "one" / "rollouts.jsonl")
    two = read_jsonl(tmp_path / "two" / "rollouts-rank0.jsonl") + read_jsonl(
        tmp_path / "two" / "rollouts-rank1.jsonl")
    key = lambda r: (r["step"], r["doc_id"], r["response"])  # noqa: E731
    assert sorted(map(key, one)) == sorted(map(key, two))


def test_fsdp_sft_matches_one_process_and_resumes(tmp_path, tiny_model):
    """FSDP2 (parameters, gradients and optimizer state sharded over 2 gloo processes) gives
    the weights of one unsharded process, its checkpoints load anywhere, and a resumed
    sharded run continues exactly."""
    args = ["sft", "--model", tiny_model, "--tasks", "count_shapes", "--batch-size", "4",
            "--grad-accum", "2", "--lr", "3e-3", "--save-every", "2", "--steps", "4", *EVAL]
    _run(1, [*args, "--out", str(tmp_path / "one")])
    _run(2, [*args, "--fsdp", "--out", str(tmp_path / "fsdp")])
    last = "checkpoint-000004"
    _assert_close(tmp_path / "one" / last, tmp_path / "fsdp" / last, 3e-3)
    shutil.rmtree(tmp_path / "fsdp" / last)  # as if killed after step 2
    _run(2, [*args, "--fsdp", "--resume", "--out", str(tmp_path / "fsdp")])
    _assert_close(tmp_path / "one" / last, tmp_path / "fsdp" / last, 3e-3)
    rows = read_jsonl(tmp_path / "fsdp" / "dynamics.jsonl")
    assert [r["step"] for r in rows] == [2, 4]


def test_fsdp_rl_matches_one_process(tmp_path, sft_model):
    args = ["rl", "--model", sft_model, "--tasks", "count_shapes", "--steps", "2",
            "--prompts-per-step", "4", "--gen-chunk", "2", "--group-size", "4",
            "--max-new-tokens", "16", "--kl-coef", "0.01", "--lr", "1e-3", *EVAL]
    _run(1, [*args, "--out", str(tmp_path / "one")])
    _run(2, [*args, "--fsdp", "--out", str(tmp_path / "fsdp")])
    _assert_close(tmp_path / "one" / "checkpoint-000002", tmp_path / "fsdp" / "checkpoint-000002",
                  1e-3)


def test_rl_features_run_on_two_processes(tmp_path, sft_model):
    """Dynamic sampling (each process fills its share of informative groups, the counts
    summed), another objective, truncated IS weights and LoRA adapters under DDP."""
    out = tmp_path / "two"
    _run(2, ["rl", "--model", sft_model, "--tasks", "count_shapes", "--steps", "2",
             "--prompts-per-step", "4", "--gen-chunk", "2", "--group-size", "4",
             "--max-new-tokens", "16", "--lr", "1e-3", "--dynamic-sampling",
             "--max-sampling-rounds", "2", "--loss", "gspo", "--tis-cap", "2", "--lora-r", "4",
             "--out", str(out), *EVAL])
    rows = read_jsonl(out / "train_log.jsonl")
    ranks = [read_jsonl(out / f"rollouts-rank{r}.jsonl") for r in (0, 1)]
    for row in rows:
        informative = 0
        for rolls in ranks:
            step = [r for r in rolls if r["step"] == row["step"]]
            assert len(step) == 8  # each process kept its share: two groups of four
            informative += sum(len({r["reward"] for r in step[i:i + 4]}) > 1 for i in (0, 4))
        assert row["dynamic_groups_kept"] == informative
        assert row["dynamic_groups_sampled"] >= 4
    assert (out / "checkpoint-000002" / "adapter").is_dir()

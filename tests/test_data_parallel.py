"""Data-parallel evaluation on torchrun (gloo, CPU): the samples do not depend on the world
size or (greedy, float32) on the batch size, and a run whose rank was killed resumes with
another world size, losing and repeating nothing."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.runs.runner import evaluate
from harness.runs.store import read_jsonl

pytestmark = pytest.mark.slow
TASKS = "count_shapes,sides_sum"


def _cli(model: str, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "vrbench", "eval", "--model", model, "--tasks", TASKS,
            "--max-new-tokens", "24", "--output", str(out), "--no-progress", *extra]


def _run(cmd: list[str]) -> None:
    """Run a command; on failure, fail with the end of what it printed."""
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]


def _answers(run: Path) -> dict:
    return {(r["task"], r["doc_id"]): (r["resps"], r["correct"])
            for r in read_jsonl(run / "samples.jsonl")}


def test_samples_are_the_same_for_any_world_size_and_batch_size(tmp_path, sft_model):
    runs = {bs: tmp_path / f"bs{bs}" for bs in (1, 8, 32)}
    for bs, out in runs.items():
        evaluate(sft_model, TASKS, limit=16, batch_size=bs, max_new_tokens=24, output=str(out),
                 progress=False)
    assert _answers(runs[1]) == _answers(runs[8]) == _answers(runs[32])
    assert len(_answers(runs[1])) == 32
    # two ranks, greedy and sampled: byte for byte what one process writes
    for name, extra in (("greedy", []), ("sampled", ["--samples", "2", "--temperature", "1"])):
        one, two = tmp_path / f"{name}-1", tmp_path / f"{name}-2"
        for out, dp in ((one, "1"), (two, "2")):
            _run(_cli(sft_model, out, "--limit", "16", "--batch-size", "4", "--data-parallel",
                      dp, *extra))
        assert (one / "samples.jsonl").read_bytes() == (two / "samples.jsonl").read_bytes()
        res = json.loads((two / "results.json").read_text())["distributed"]
        assert (res["world_size"], res["samples_generated_per_rank"]) == (2, [16, 16])
        assert len(res["seconds_per_rank"]) == 2
        assert not list(two.glob("samples.rank-*"))  # merged, then removed
    assert _answers(tmp_path / "greedy-1") == {k: v for k, v in _answers(runs[8]).items()
                                               if int(k[1].rsplit("-", 1)[1]) < 16}


def _rank_pid(out: Path, rank: int) -> int | None:
    """The process of one rank of the eval writing `out` (found by its command line and its
    RANK)."""
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes()
            env = (proc / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if str(out).encode() in cmd and f"RANK={rank}".encode() in env:
            return int(proc.name)
    return None


def test_a_killed_rank_resumes_with_another_world_size(tmp_path, sft_model):
    ref, run = tmp_path / "ref", tmp_path / "run"
    args = ("--limit", "24", "--batch-size", "1")
    _run(_cli(sft_model, ref, *args))
    proc = subprocess.Popen(_cli(sft_model, run, *args, "--data-parallel", "2"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:  # kill rank 1 once it has written some of its batches
        part = run / "samples.rank-1.jsonl"
        if part.exists() and part.read_bytes().count(b"\n") >= 3:
            pid = _rank_pid(run, 1)
            if pid:
                os.kill(pid, signal.SIGKILL)
                break
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("rank 1 wrote nothing in time")
    assert proc.wait(timeout=120) != 0
    assert not (run / "results.json").exists()
    left = sum(len(read_jsonl(p)) for p in run.glob("samples*.jsonl"))
    assert 3 <= left < 48
    # resumed by one process, then the same command again by two ranks: nothing to do
    _run(_cli(sft_model, run, *args))
    assert _answers(run) == _answers(ref)
    records = read_jsonl(run / "samples.jsonl")
    assert len(records) == len({(r["task"], r["doc_id"]) for r in records}) == 48
    res = json.loads((run / "results.json").read_text())
    assert res["distributed"]["samples_generated_per_rank"] == [48 - left]
    _run(_cli(sft_model, run, *args, "--data-parallel", "2"))
    res = json.loads((run / "results.json").read_text())["distributed"]
    assert (res["world_size"], res["samples_generated_per_rank"]) == (2, [0, 0])
    assert (run / "samples.jsonl").read_bytes() == (ref / "samples.jsonl").read_bytes()

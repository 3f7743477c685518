"""Files read while they are written: a reader never changes a file (a line a writer has not
finished is left out, never cut), the writer alone repairs a line a kill cut short when it
resumes, and one trainer at a time writes a training folder."""

import json
import subprocess
import sys
import textwrap

import pytest

from harness.reports.compare import compare
from harness.reports.plots import load_dynamics
from harness.runs.store import LOCK_FILE, append_jsonl, read_jsonl, repair_jsonl, try_lock
from helpers import checkpoint, first, scripted_eval
from vrbench.cli import main
from vrbench.errors import VrbenchError

N_RECORDS = 300

# appends records, each line in two writes with a pause between them, as a slow writer would
WRITER = textwrap.dedent("""
    import json, sys, time
    path, n = sys.argv[1], int(sys.argv[2])
    with open(path, "a", encoding="utf-8") as f:
        for i in range(n):
            line = json.dumps({"i": i, "task": "t", "step": i, "payload": "x" * 200}) + "\\n"
            f.write(line[:len(line) // 2]); f.flush()
            time.sleep(0.002)
            f.write(line[len(line) // 2:]); f.flush()
""")


def test_reading_never_changes_a_file(tmp_path):
    path = tmp_path / "samples.jsonl"
    path.write_bytes(b'{"i": 0}\n{"i": 1}\n{"i": 2, "unfini')
    before = path.read_bytes()
    assert read_jsonl(path) == [{"i": 0}, {"i": 1}]  # the unfinished line is left out
    assert path.read_bytes() == before
    # a file from elsewhere is read whole, its last line needing no newline
    other = tmp_path / "other.jsonl"
    other.write_bytes(b'{"i": 0}\n{"i": 1}')
    assert read_jsonl(other, own=False) == [{"i": 0}, {"i": 1}]


def test_the_writer_repairs_a_line_a_kill_cut_short(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"i": 0}\n' + b'{"i": 1, "long": "' + b"y" * 70_000)  # > one block
    repair_jsonl(path)
    assert path.read_bytes() == b'{"i": 0}\n'
    append_jsonl(path, [{"i": 1}])
    assert read_jsonl(path) == [{"i": 0}, {"i": 1}]
    whole = tmp_path / "whole.jsonl"
    whole.write_bytes(b"x" * 100)  # one line, unfinished: nothing of it stays
    repair_jsonl(whole)
    assert whole.read_bytes() == b""


def test_readers_racing_a_writer_lose_and_damage_nothing(tmp_path):
    run = tmp_path / "sft"
    run.mkdir()
    path = run / "dynamics.jsonl"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(N_RECORDS)])
    reads, last = 0, 0
    try:
        while writer.poll() is None:
            seen = read_jsonl(path)  # what vrbench dynamics, analyze and compare read with
            assert [r["i"] for r in seen] == list(range(len(seen)))
            assert len(seen) >= last
            last = len(seen)
            if seen:  # `vrbench dynamics` reads the same rows
                assert all(r["run"] == "sft" for r in load_dynamics([run]))
            reads += 1
    finally:
        writer.wait(timeout=60)
    assert writer.returncode == 0
    assert reads > 3  # the readers did run while the writer wrote
    assert [r["i"] for r in read_jsonl(path)] == list(range(N_RECORDS))
    assert path.read_bytes().count(b"\n") == N_RECORDS


def test_read_commands_leave_a_finished_run_unchanged(tmp_path, capsys):
    root = tmp_path / "results"
    runs = scripted_eval(checkpoint(tmp_path, "a", 10, 0), root, first(8), first(2))
    other = scripted_eval(checkpoint(tmp_path, "b", 10, 0), root, first(12), first(4))
    run_a, run_b = runs[0]["run_dir"], other[0]["run_dir"]
    # a trainer's folder with a dynamics log whose last line is being written
    train = tmp_path / "train"
    train.mkdir()
    append_jsonl(train / "dynamics.jsonl", [
        {"trainer": "sft", "seed": 0, "step": s, "epoch": 0.1, "checkpoint": f"c{s}",
         "task": "count_shapes", "domain": "id", "split": "validation", "preset": "greedy",
         "acc": 0.5, "acc_ci95": [0.3, 0.7], "majority_baseline": 0.3, "length_mean": 20.0,
         "reflection_ratio": 0.1, "run_dir": run_a} for s in (10, 20)])
    with open(train / "dynamics.jsonl", "a") as f:
        f.write('{"trainer": "sft", "seed": 0, "st')
    for run in (run_a, run_b):
        with open(f"{run}/samples.jsonl", "a") as f:
            f.write('{"task": "count_shapes", "doc_')
    files = [p for p in tmp_path.rglob("*.jsonl")]
    before = {p: p.read_bytes() for p in files}
    assert compare(run_a, run_b)  # pairs the finished records
    for argv in (["compare", run_a, run_b], ["leaderboard", "--root", str(root), "--out",
                                             str(tmp_path / "board")],
                 ["analyze", str(root), "--out", str(tmp_path / "analysis")],
                 ["dynamics", str(train), "--out", str(tmp_path / "dyn.png")],
                 ["runs", "--root", str(root)]):
        assert main(argv) == 0, argv
    assert {p: p.read_bytes() for p in files} == before


def test_a_second_trainer_on_the_same_folder_is_refused_at_once(tmp_path, tiny_model):
    from trainers.config import CheckpointEval
    from trainers.sft import SFTConfig, train
    out = tmp_path / "sft"
    held = try_lock(out / LOCK_FILE)  # another trainer at work on `out`
    cfg = SFTConfig(model=tiny_model, out=str(out), tasks="count_shapes", steps=1,
                    batch_size=2, eval=CheckpointEval(id_tasks="", ood_tasks=""))
    try:
        with pytest.raises(VrbenchError, match="another trainer is writing"):
            train(cfg)
        assert not list(out.glob("checkpoint-*"))
    finally:
        held.close()
    assert train(cfg).is_dir()  # free again: it trains
    assert try_lock(out / LOCK_FILE) is not None  # and lets go when done
    assert json.loads((out / "train_config.json").read_text())["trainer"] == "sft"

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.runs.store import read_jsonl
from vrbench.cli import main


def _err(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err  # one sentence, no traceback
    return err


def test_tasks_lists_every_task(capsys):
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    import tasks
    for name in tasks.names():
        assert name in out
    assert main(["tasks", "--domain", "ood"]) == 0
    assert "count_shapes " not in capsys.readouterr().out
    assert main(["tasks", "bar_chart"]) == 0
    card = capsys.readouterr().out
    assert "Options: (A)" in card and "\\boxed{" in card and "knobs:" in card


def test_missing_model_path(capsys, tmp_path):
    code = main(["eval", "--model", str(tmp_path / "nope"), "--tasks", "id"])
    assert code == 2 and "does not exist" in _err(capsys)


def test_directory_that_is_not_a_checkpoint(capsys, tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    assert main(["eval", "--model", str(tmp_path), "--tasks", "id", "--limit", "1"]) == 2
    assert "not a model checkpoint" in _err(capsys)


def test_malformed_checkpoint(capsys, tmp_path, tiny_model):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8}))
    assert main(["eval", "--model", str(bad), "--tasks", "count_shapes", "--limit", "1",
                 "--output", str(tmp_path / "r1")]) == 2
    assert "could not be loaded as a vision-language checkpoint" in _err(capsys)
    (bad / "config.json").write_text("{not json")
    assert main(["eval", "--model", str(bad), "--tasks", "count_shapes", "--limit", "1",
                 "--output", str(tmp_path / "r2")]) == 2
    assert "could not be loaded" in _err(capsys)


def test_unknown_task(capsys, tiny_model):
    assert main(["eval", "--model", tiny_model, "--tasks", "id,nope"]) == 2
    assert "unknown task 'nope'" in _err(capsys)


def test_eval_prints_table_and_run_directory(capsys, tmp_path, tiny_model):
    code = main(["eval", "--model", tiny_model, "--tasks", "digit_sum,triangle_angle",
                 "--limit", "2", "--max-new-tokens", "4", "--output", str(tmp_path / "run"),
                 "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    assert "digit_sum" in out and "[far average]" in out and str(tmp_path / "run") in out
    assert {p.name for p in (tmp_path / "run").iterdir()} == {
        "config.json", "samples.jsonl", "results.json", ".lock"}


def _vrbench(*args) -> list[str]:
    return [sys.executable, "-m", "vrbench", *args]


@pytest.mark.slow
def test_sigkill_and_rerun_continues_without_loss_or_duplicates(tmp_path, tiny_model):
    args = ["eval", "--model", tiny_model, "--tasks", "count_shapes,bar_chart", "--limit", "16",
            "--batch-size", "2", "--temperature", "1.0", "--samples", "2",
            "--max-new-tokens", "48", "--no-progress"]
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    straight = tmp_path / "straight"
    subprocess.run(_vrbench(*args, "--output", str(straight)), check=True, env=env,
                   capture_output=True)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(_vrbench(*args, "--output", str(killed)), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples = killed / "samples.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if samples.exists() and len(samples.read_bytes().splitlines()) >= 6:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n_before = len(read_jsonl(samples))
    assert 6 <= n_before < 32

    subprocess.run(_vrbench(*args, "--output", str(killed)), check=True, env=env,
                   capture_output=True)
    a, b = read_jsonl(straight / "samples.jsonl"), read_jsonl(samples)
    assert len(b) == 32 and len({(r["task"], r["doc_id"]) for r in b}) == 32
    key = lambda r: (r["task"], r["doc_id"])  # noqa: E731
    assert sorted(a, key=key) == sorted(b, key=key)
    ra = json.loads((straight / "results.json").read_text())
    rb = json.loads((killed / "results.json").read_text())
    assert ra["results"] == rb["results"] and ra["groups"] == rb["groups"]


def test_console_script_reports_errors_without_traceback(tmp_path):
    exe = Path(sys.executable).parent / "vrbench"
    cmd = [str(exe)] if exe.exists() else _vrbench()
    res = subprocess.run([*cmd, "eval", "--model", str(tmp_path / "x"), "--tasks", "id"],
                         capture_output=True, text=True)
    assert res.returncode == 2
    assert res.stderr.strip() == f"vrbench: error: model path {tmp_path / 'x'} does not exist."


def test_a_misspelled_task_gets_the_close_name(capsys, tiny_model):
    assert main(["eval", "--model", tiny_model, "--tasks", "count_shape"]) == 2
    assert "did you mean 'count_shapes'?" in capsys.readouterr().err
    assert main(["eval", "--model", tiny_model, "--tasks", "cont_shapes.grid2"]) == 2
    assert "did you mean 'count_shapes.grid2'?" in capsys.readouterr().err


def test_flags_are_spelled_out_and_the_version_is_one_line(capsys):
    with pytest.raises(SystemExit):  # --task is not taken for --tasks
        main(["eval", "--model", "m", "--task", "id"])
    assert "required: --tasks" in capsys.readouterr().err
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert re.fullmatch(r"vrbench \d+\.\d+\.\d+\n", capsys.readouterr().out)


@pytest.mark.parametrize("command", ["eval", "sft", "rl", "quickstart"])
def test_help_says_each_default_once_and_never_none(capsys, command):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: None)" not in text
    assert not re.search(r"\((?:[^()]*when not set|default[^()]*)\) \(default", text)
    if command == "sft":  # the trainer's own default, not the evaluation's
        assert "token limit per response (default: 96)" in text


def test_a_closed_pipe_ends_the_listing_quietly(tmp_path, monkeypatch, capsys):
    """`vrbench runs | head -1`: the reader has gone; no error, the pipe's own exit status."""
    root = tmp_path / "runs"
    root.mkdir()
    read, write = os.pipe()
    os.close(read)
    with os.fdopen(write, "w", buffering=1) as closed:  # each line written at once
        monkeypatch.setattr(sys, "stdout", closed)
        assert main(["runs", "--root", str(root)]) == 141
        monkeypatch.undo()
    assert capsys.readouterr().err == ""


def test_the_runs_listing_names_a_suite_not_every_task():
    import tasks
    from harness.runs.index import tasks_label
    assert tasks_label(tasks.names("id")) == "id"
    assert tasks_label(tasks.names("id") + tasks.names("ood")) == "id,ood"
    assert tasks_label(["a", "b"]) == "a,b"
    assert tasks_label(["a", "b", "c", "d"]) == "a,b +2 more"
    assert tasks_label(tasks.names("id")[:2]) == ",".join(tasks.names("id")[:2])

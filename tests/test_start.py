"""A fast start: the command line imports what a command needs only when that command runs,
so `vrbench --help`, listing tasks or runs, and every command's `--help` start without torch,
transformers or datasets."""

import json
import subprocess
import sys

from vrbench.cli import COMMANDS

HEAVY = ("torch", "transformers", "datasets", "vllm", "matplotlib")
PROBE = """
import json, sys
from vrbench.cli import main
calls = json.loads(sys.argv[1])
for argv in calls:
    try:
        main(argv)
    except SystemExit:
        pass
print(json.dumps(sorted(m for m in {heavy} if m in sys.modules)))
"""


def _imported(calls: list[list[str]], tmp_path) -> list[str]:
    out = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), json.dumps(calls)],
                         capture_output=True, text=True, cwd=tmp_path, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_help_and_every_commands_help_import_no_torch(tmp_path):
    calls = [["--help"]] + [[name, "--help"] for name, *_ in COMMANDS]
    assert _imported(calls, tmp_path) == []


def test_listing_tasks_runs_and_the_leaderboard_imports_no_torch(tmp_path):
    (tmp_path / "runs").mkdir()
    calls = [["tasks"], ["runs", "--root", "runs"],
             ["leaderboard", "--root", "runs", "--out", "board"]]
    assert _imported(calls, tmp_path) == []


def test_a_bad_value_task_or_path_is_refused_before_torch(tmp_path):
    """`vrbench eval` checks its values, its tasks and the model path, and the trainers and
    the quickstart their values, before they import torch: a typo costs a tenth of a
    second, not the seconds torch takes to load."""
    (tmp_path / "models").mkdir()
    calls = [["eval", "--model", "m", "--tasks", "id", "--temperature", "-1"],
             ["eval", "--model", "m", "--tasks", "id", "--limit", "-3"],
             ["eval", "--model", "models/tiny", "--tasks", "nope"],
             ["eval", "--model", "models/nope", "--tasks", "id"],
             ["sft", "--model", "m", "--out", "o", "--steps", "0"],
             ["rl", "--model", "m", "--out", "o", "--group-size", "0"],
             ["quickstart", "--warm-steps", "0"]]
    assert _imported(calls, tmp_path) == []


def test_every_command_is_defined_when_it_runs():
    from vrbench.cli import build_parser
    for name, *_ in COMMANDS:
        only = build_parser(only=name)
        full = build_parser()
        # the command's own options are the same whichever way the parser was built
        sub = {p.dest for p in only._subparsers._group_actions[0].choices[name]._actions}
        assert sub == {p.dest for p in full._subparsers._group_actions[0].choices[name]._actions}
        assert len(sub) > 1, name


LEAVE = """
import atexit, sys, threading, time
from pathlib import Path
from vrbench.cli import run
atexit.register(lambda: print("exit handler ran"))
class Torn:
    def __del__(self):
        print("torn down", flush=True)
kept = Torn()  # the interpreter's teardown would delete it
def late(path):
    time.sleep(0.5)
    path.write_text("written")
threading.Thread(target=late, args=(Path(sys.argv[1]),)).start()
sys.argv = ["vrbench", *sys.argv[2:]]
run()
"""


def _leave(tmp_path, *argv) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", LEAVE, str(tmp_path / "late"), *argv],
                          capture_output=True, text=True, cwd=tmp_path)


def test_the_program_leaves_as_the_interpreter_would(tmp_path):
    """`vrbench` ends without the interpreter's teardown (an object it would delete is
    not), but with its exit status, its whole output, the exit handlers run and the other
    threads' work done."""
    done = _leave(tmp_path, "tasks")
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    from tasks.benchmarks import BENCHMARKS
    assert out[-2].startswith(f"  {list(BENCHMARKS.values())[-1].name}")  # the last line
    assert out[-1] == "exit handler ran"  # and not "torn down" after it
    assert (tmp_path / "late").read_text() == "written"
    bad = _leave(tmp_path, "eval", "--model", str(tmp_path / "x"), "--tasks", "id")
    assert bad.returncode == 2
    assert bad.stderr.strip() == f"vrbench: error: model path {tmp_path / 'x'} does not exist."
    assert bad.stdout.splitlines() == ["exit handler ran"]


def test_the_console_script_is_the_program():
    from importlib.metadata import entry_points
    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "vrbench"]
    assert script.value == "vrbench.cli:run"

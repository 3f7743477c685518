"""The architecture, checked: imports point down (the command line and the main job ->
trainers -> harness -> tasks -> the error type, and inside the harness from room to room
along the data flow), no import climbs, every configuration parameter is declared once,
with its meaning, and becomes a flag."""

import ast
import dataclasses
import typing
from pathlib import Path

import pytest

from harness import flags
from harness.runs.config import EvalConfig
from trainers.rl import RLConfig
from trainers.sft import SFTConfig
from vrbench.cli import build_parser
from vrbench.config import QuickstartConfig

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    """Every name a file imports, at any depth (function-level imports included), dotted
    from its package: `from harness import stats` gives `harness.stats`."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def _files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


BOTTOM = ("vrbench.errors", "vrbench.seeds")  # every layer raises its one error type and
# derives its seeds one way
TOP = {"vrbench.cli", "vrbench.config", "vrbench.quickstart", "vrbench.__main__"}  # above all


def _bottom(m: str) -> bool:
    return any(m.startswith(b + ".") for b in BOTTOM)


def test_the_bottom_imports_nothing_of_the_project():
    for mod in BOTTOM:
        assert not {m for m in _imports(ROOT / (mod.replace(".", "/") + ".py"))
                    if m.split(".")[0] in ("harness", "trainers", "tasks", "vrbench")}


def test_tasks_import_nothing_of_the_harness_or_the_trainers():
    for f in _files("tasks"):
        bad = {m for m in _imports(f) if m.split(".")[0] in ("harness", "trainers", "vrbench")
               and not _bottom(m)}
        assert not bad, f"{f.relative_to(ROOT)} imports {bad}"


def test_nothing_below_the_top_imports_it():
    assert {_module(f) for f in _files("vrbench")} == TOP | set(BOTTOM) | {"vrbench"}
    for package in ("tasks", "harness", "trainers"):
        for f in _files(package):
            bad = {m for m in _imports(f) if m.split(".")[0] == "vrbench" and not _bottom(m)}
            assert not bad, f"{f.relative_to(ROOT)} imports {bad}"


# The harness's rooms and what each may import of the others (tasks, the bottom layer, is
# open to all).
ROOMS = {
    "harness.stats": set(),
    "harness.flags": set(),
    "harness.backends": set(),
    "harness.scoring": {"harness.backends"},  # the LLM judge calls an OpenAI-compatible server
    "harness.analyzers": {"harness.scoring", "harness.stats"},
    "harness.runs": {"harness.analyzers", "harness.backends", "harness.flags",
                     "harness.scoring", "harness.stats"},
    "harness.likelihood": {"harness.backends", "harness.runs"},
    "harness.server": {"harness.backends"},  # an OpenAI-compatible server over a backend
    "harness.reports": {"harness.runs", "harness.stats"},
    "harness.interop": {"harness.analyzers", "harness.runs", "harness.scoring"},
    "harness": {"harness.runs"},  # the package itself: `harness.evaluate`
}
# the trainers' shared modules, each importing only those listed before it
TRAINER_BASE = ["trainers.losses", "trainers.reward_fns", "trainers.trackers", "trainers.parts",
                "trainers.lora", "trainers.distributed", "trainers.checkpoints",
                "trainers.config", "trainers.optim", "trainers.memory", "trainers.dynamics",
                "trainers.session"]


def _room(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def _module(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    return ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)


def test_every_harness_module_is_in_a_room():
    for f in _files("harness"):
        mod = _module(f)
        assert _room(mod) in ROOMS, f"{mod} is in no room"


def test_rooms_import_only_the_rooms_below_them():
    for f in _files("harness"):
        room = _room(_module(f))
        used = {_room(m) for m in _imports(f) if m.split(".")[0] in ("harness", "trainers",
                                                                    "vrbench")}
        bad = used - ROOMS[room] - {room, *BOTTOM}
        assert not bad, f"{f.relative_to(ROOT)} ({room}) imports {bad}"


def test_the_rooms_form_no_cycle():
    done: set[str] = set()
    while len(done) < len(ROOMS):
        ready = {r for r, deps in ROOMS.items() if r not in done and deps <= done}
        assert ready, f"a cycle among {set(ROOMS) - done}"
        done |= ready


def test_the_trainers_shared_modules_point_down():
    for i, mod in enumerate(TRAINER_BASE):
        path = ROOT / (mod.replace(".", "/") + ".py")
        used = {_room(m) for m in _imports(path) if m.startswith("trainers")}
        bad = used - set(TRAINER_BASE[:i])
        assert not bad, f"{mod} imports {bad}"
    trainer_modules = {_module(f) for f in _files("trainers")} - {"trainers.recipes"}
    assert set(TRAINER_BASE) < trainer_modules


def test_backends_know_nothing_of_tasks_but_the_error_type():
    for f in _files("harness/backends"):
        bad = {m for m in _imports(f) if m.split(".")[0] == "tasks"
               and not m.startswith("vrbench.errors.")}
        assert not bad, f"{f.relative_to(ROOT)} imports {bad}"


def test_the_trainers_import_no_command_line():
    for f in _files("trainers"):
        bad = {m for m in _imports(f) if m.split(".")[0] == "vrbench" and not _bottom(m)}
        assert not bad, f"{f.relative_to(ROOT)} imports {bad}"


def _all_fields(cls, prefix=""):
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in getattr(cls, "NOT_FLAGS", ()):
            continue
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            yield from _all_fields(tp, prefix + getattr(tp, "FLAG_PREFIX", f"{f.name}_"))
        else:
            yield cls, prefix + f.name, f.name


@pytest.mark.parametrize("cls", [EvalConfig, SFTConfig, RLConfig, QuickstartConfig])
def test_every_parameter_has_its_meaning_as_help(cls):
    for owner, _, name in _all_fields(cls):
        assert flags.field_help(owner).get(name), f"{owner.__name__}.{name} has no comment"


@pytest.mark.parametrize("command,cls", [("eval", EvalConfig), ("sft", SFTConfig),
                                         ("rl", RLConfig), ("quickstart", QuickstartConfig)])
def test_every_parameter_is_a_flag_with_its_help(command, cls, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for owner, dest, name in _all_fields(cls):
        flag = "--" + dest.replace("_", "-")
        assert flag in text, f"{command} has no {flag}"
        first_words = " ".join(flags.field_help(owner)[name].split()[:4])
        assert first_words.replace("%%", "%") in text, f"{flag}: no help in {command} --help"


def test_help_shows_the_meaning_not_only_the_default(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["rl", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--group-size GROUP_SIZE responses per prompt (G) (default: 4)" in text
    assert "--eval-limit EVAL_LIMIT the first N samples of each task" in text
    assert "--eval-split" not in text  # set by the trainer, per domain


def test_a_flag_reaches_the_config(tmp_path):
    args = build_parser().parse_args(["rl", "--model", "m", "--out", "o", "--group-size", "8",
                                      "--lr", "3e-6", "--eval-limit", "5", "--no-eval-progress"])
    cfg = flags.build(RLConfig, args)
    assert (cfg.group_size, cfg.optim.lr, cfg.eval.limit, cfg.eval.progress) == (
        8, 3e-6, 5, False)
    assert cfg.eval.split is None and cfg.optim.warmup == 0.0  # RL's own default

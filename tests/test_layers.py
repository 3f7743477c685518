"""The architecture, checked: imports point down (trainers -> harness -> tasks), every
configuration parameter is declared once, with its meaning, and becomes a flag."""

import ast
import dataclasses
import typing
from pathlib import Path

import pytest

from harness import flags
from harness.cli import build_parser
from harness.config import EvalConfig
from trainers.quickstart import QuickstartConfig
from trainers.rl import RLConfig
from trainers.sft import SFTConfig

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth (function-level imports included)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
    return out


def _files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_tasks_import_nothing_of_the_harness_or_the_trainers():
    for f in _files("tasks"):
        bad = {m for m in _imports(f) if m.split(".")[0] in ("harness", "trainers")}
        assert not bad, f"{f.relative_to(ROOT)} imports {bad}"


def test_the_harness_imports_no_trainer_but_in_the_command_line():
    for f in _files("harness"):
        if f.name == "cli.py":
            continue
        bad = {m for m in _imports(f) if m.split(".")[0] == "trainers"}
        assert not bad, f"{f.relative_to(ROOT)} imports {bad}"


def test_backends_know_nothing_of_tasks_but_the_error_type():
    for f in _files("harness/backends"):
        bad = {m for m in _imports(f) if m.split(".")[0] == "tasks" and m != "tasks.errors"}
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
    assert cfg.eval.split == "test" and cfg.optim.warmup == 0.0  # RL's own default

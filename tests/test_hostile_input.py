"""Classes 6 and 7 of the hardening: bad input is one sentence and exit 2, never a traceback
and never silently accepted: task YAMLs (checked against their generator's parameters),
published-benchmark copies, output paths, damaged run files, and every numeric option."""

import json

import datasets
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tasks
from helpers import one_sentence
from vrbench.cli import main
from vrbench.errors import VrbenchError

GOOD = {"name": "mine", "version": "1", "domain": "id", "answer_type": "integer",
        "prompt_template": "{question}", "splits": {"test": 4}, "generator": "count_shapes",
        "params": {"cols": 3}}



def _yaml(tmp_path, text: str) -> str:
    path = tmp_path / "task.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("text,says", [
    ("name: [unclosed", "is not valid YAML"),
    ("- a\n- list", "must hold a mapping of fields"),
    (yaml.safe_dump({k: v for k, v in GOOD.items() if k != "splits"}), "lacks the field 'splits'"),
    (yaml.safe_dump(GOOD | {"splits": {"test": "ten"}}), "splits must map"),
    (yaml.safe_dump(GOOD | {"splits": {"test": -5}}), "splits must map"),  # was a 0-sample run
    (yaml.safe_dump(GOOD | {"splits": {"tset": 5}}), "splits must map"),
    (yaml.safe_dump(GOOD | {"colour": "red"}), "unknown field(s) colour"),
    (yaml.safe_dump(GOOD | {"params": {"colours": ["red"]}}), "has no parameter 'colours'"),
    (yaml.safe_dump(GOOD | {"params": {"cols": "three"}}), "is not of the kind of its default"),
    (yaml.safe_dump(GOOD | {"params": {"cols": 0}}), "failed with its parameters"),
    (yaml.safe_dump(GOOD | {"generator": "nope"}), "unknown generator 'nope'"),
    (yaml.safe_dump(GOOD | {"domain": 3}), "domain must be a str"),
])
def test_a_malformed_task_yaml_is_one_sentence(tmp_path, tiny_model, capsys, text, says):
    code = main(["eval", "--model", tiny_model, "--tasks", _yaml(tmp_path, text),
                 "--output", str(tmp_path / "run")])
    assert code == 2 and says in one_sentence(capsys)


YAML_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-5, 50) | st.text(max_size=12),
                           lambda k: st.lists(k, max_size=3)
                           | st.dictionaries(st.text(max_size=10), k, max_size=3), max_leaves=10)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.text(max_size=200),
    st.dictionaries(st.sampled_from(list(GOOD) + ["seed", "skill", "extra"]), YAML_VALUES,
                    max_size=9).map(yaml.safe_dump),
    st.fixed_dictionaries({k: st.just(v) for k, v in GOOD.items() if k != "params"}, optional={
        "params": st.dictionaries(st.sampled_from(["cols", "rows", "colors", "target_range",
                                                   "max_objects", "ask", "nope"]),
                                  YAML_VALUES, max_size=3)}).map(yaml.safe_dump)))
def test_random_yaml_loads_or_is_refused_in_one_sentence(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("y") / "t.yaml"
    path.write_text(text)
    try:
        t = tasks.from_yaml(path)
        t.samples(next(iter(t.splits)), 2)
    except VrbenchError as e:
        assert "\n" not in str(e) and str(e).endswith(".")


def _copy(base, rows: dict | None = None, raw: bytes | None = None):
    folder = base / "AI4Math" / "MathVista"
    folder.mkdir(parents=True)
    if raw is not None:
        (folder / "testmini.parquet").write_bytes(raw)
    else:
        datasets.Dataset.from_dict(rows).to_parquet(str(folder / "testmini.parquet"))
    return str(base)


@pytest.mark.parametrize("make,says", [
    (lambda b: _copy(b, {"pid": ["1"], "question": ["q"]}), "lacks the column 'image'"),
    (lambda b: _copy(b, {"pid": [1], "question": [2], "answer": [None], "image": [3]}),
     "column 'pid' is 1, not str"),
    (lambda b: _copy(b, raw=b"PAR1 this is not parquet"), "could not be read"),
])
def test_a_damaged_benchmark_copy_is_one_sentence(tmp_path, tiny_model, capsys, make, says):
    code = main(["eval", "--model", tiny_model, "--tasks", "mathvista_testmini",
                 "--data-dir", make(tmp_path / "data"), "--output", str(tmp_path / "run")])
    assert code == 2 and says in one_sentence(capsys)


def test_a_damaged_saved_dataset_is_one_sentence(tmp_path, tiny_model, capsys):
    folder = tmp_path / "data" / "hiyouga" / "geometry3k"
    folder.mkdir(parents=True)
    (folder / "dataset_dict.json").write_text('{"splits": 7}')
    code = main(["eval", "--model", tiny_model, "--tasks", "geometry3k_test",
                 "--data-dir", str(tmp_path / "data"), "--output", str(tmp_path / "run")])
    assert code == 2 and "could not be read" in one_sentence(capsys)


def test_output_paths_that_cannot_be_written(tmp_path, tiny_model, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    for output in (blocker, blocker / "run"):
        code = main(["eval", "--model", tiny_model, "--tasks", "count_shapes", "--limit", "1",
                     "--output", str(output)])
        assert code == 2
        msg = one_sentence(capsys)
        assert str(blocker) in msg
    assert blocker.read_text() == "x"  # nothing already written is lost


def test_a_damaged_line_in_samples_names_the_line(tmp_path, tiny_model, capsys):
    run = tmp_path / "run"
    args = ["eval", "--model", tiny_model, "--tasks", "count_shapes", "--limit", "3",
            "--batch-size", "1", "--max-new-tokens", "4", "--output", str(run), "--no-progress"]
    assert main(args) == 0
    lines = (run / "samples.jsonl").read_text().splitlines()
    (run / "samples.jsonl").write_text("\n".join([lines[0], "garbage{", *lines[1:]]) + "\n")
    assert main(args) == 2
    assert "line 2 of" in one_sentence(capsys)
    (run / "samples.jsonl").write_text("\n".join([lines[0], "[1, 2]", *lines[1:]]) + "\n")
    assert main(args) == 2
    assert "line 2 of" in one_sentence(capsys)
    (run / "samples.jsonl").write_text("\n".join([lines[0], json.dumps({"task": 1}),
                                                  *lines[1:]]) + "\n")
    assert main(args) == 2
    assert "record 2 of" in one_sentence(capsys)


@pytest.mark.parametrize("extra,says", [
    (["--temperature", "inf"], "--temperature must be a finite number"),
    (["--temperature", "nan"], "--temperature must be a finite number"),
    (["--temperature", "-1"], "--temperature must be a finite number"),
    (["--top-p", "0"], "--top-p must be in (0, 1]"),
    (["--top-p", "nan"], "--top-p must be in (0, 1]"),
    (["--concurrency", "0"], "--concurrency must be at least 1"),
    (["--limit", "-1"], "--limit must be 0 (all) or more, not -1"),
    (["--batch-size", "-2"], "--batch-size must be at least 1"),
    (["--samples", "0"], "--samples must be at least 1"),
    (["--max-new-tokens", "0"], "--max-new-tokens must be at least 1"),
    (["--judge-model", "j"], "--judge-model and --judge-base-url go together"),
])
def test_numeric_eval_options_are_checked(tmp_path, tiny_model, capsys, extra, says):
    code = main(["eval", "--model", tiny_model, "--tasks", "count_shapes",
                 "--output", str(tmp_path / "run"), *extra])
    assert code == 2 and says in one_sentence(capsys)
    assert not (tmp_path / "run" / "config.json").exists()  # no NaN ever reaches a config


@pytest.mark.parametrize("command,extra,says", [
    ("sft", ["--lr", "nan"], "--lr must be a finite number"),
    ("sft", ["--steps", "0"], "--steps must be at least 1"),
    ("sft", ["--warmup", "2"], "--warmup must be a share of the steps in [0, 1], not 2.0"),
    ("sft", ["--betas", "0.9"], "--betas must be two numbers in [0, 1), not 0.9"),
    ("sft", ["--reflective", "1.5"], "--reflective is a share"),
    ("sft", ["--terse", "-0.1"], "--terse is a share"),
    ("rl", ["--rollout-batching", "paged"], "invalid choice"),
    ("rl", ["--temperature", "inf"], "--temperature must be a finite number"),
    ("rl", ["--temperature", "0"], "--temperature must be above 0"),
    ("rl", ["--group-size", "0"], "--group-size must be at least 1"),
    ("rl", ["--clip-low", "-0.2"], "--clip-low must be 0 or more"),
    ("rl", ["--eval-temperature", "1"], "unrecognized arguments"),
    ("rl", ["--eval-limit", "-2"], "--eval-limit must be 0 (all) or more, not -2"),
    ("sft", ["--eval-batch-size", "0"], "--eval-batch-size must be at least 1, not 0"),
])
def test_numeric_training_options_are_checked(tmp_path, tiny_model, capsys, command, extra,
                                              says):
    args = [command, "--model", tiny_model, "--out", str(tmp_path / "out"), *extra]
    if says in ("unrecognized arguments", "invalid choice"):  # argparse's own refusals
        with pytest.raises(SystemExit):
            main(args)
        assert says in capsys.readouterr().err
        return
    assert main(args) == 2 and says in one_sentence(capsys)
    assert not (tmp_path / "out").exists()  # refused before anything is written


@pytest.mark.parametrize("extra,says", [
    (["--warm-steps", "0"], "--warm-steps must be at least 1"),
    (["--rl-lr", "nan"], "--rl-lr must be a finite number"),
    (["--sweep-lrs", "1e-4", "-1"], "learning rates must be above 0"),
    (["--kl-prompts", "0"], "--kl-prompts must be at least 1"),
    (["--eval-final-limit", "0"], "--eval-final-limit must be at least 1"),
    (["--size", "huge"], "unknown size"),
    (["--group-size", "1"], "--group-size must be at least 2"),
    (["--long-rl-terse", "1"], "--long-rl-terse is a share in [0, 1)"),
    (["--long-rl-lr", "0"], "--long-rl-lr must be above 0"),
])
def test_quickstart_options_are_checked(tmp_path, capsys, extra, says):
    code = main(["quickstart", "--out", str(tmp_path / "qs"), *extra])
    assert code == 2 and says in one_sentence(capsys)
    assert not (tmp_path / "qs").exists()


@pytest.mark.parametrize("extra,says", [
    (["--max-n", "0"], "--max-n must be a positive number"),
    (["--request-timeout", "nan"], "--request-timeout must be a positive number"),
    (["--port", "70000"], "--port must be in [0, 65535]"),
])
def test_serve_options_are_checked(tiny_model, capsys, extra, says):
    assert main(["serve", tiny_model, *extra]) == 2 and says in one_sentence(capsys)


def test_limit_zero_means_all_for_eval_as_for_kl():
    from harness.runs.config import EvalConfig, KLConfig
    from trainers.config import CheckpointEval
    assert EvalConfig(limit=0) == EvalConfig() and CheckpointEval(limit=0).limit is None
    with pytest.raises(VrbenchError, match=r"--limit must be 0 \(all\) or more"):
        KLConfig(limit=-1).check()

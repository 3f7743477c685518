"""Links in run folders: a symbolic link where a run file belongs (git keeps links, so a
contributed run can carry one) is never read through into a published bundle, never written
through, and named in one sentence; a run folder linked from elsewhere is left out of the
index with a warning."""

import json
import os
import shutil

import pandas as pd
import pytest
import yaml

from harness.runs.index import index
from helpers import checkpoint, first, scripted_eval
from vrbench.cli import main

SECRET = b"SECRET-KEY=do-not-publish\n"


def _secret(tmp_path):
    path = tmp_path / "outside" / "secret.txt"
    path.parent.mkdir()
    path.write_bytes(SECRET)
    return path


def _root(tmp_path):
    root = tmp_path / "results"
    scripted_eval(checkpoint(tmp_path, "good", 10, 0), root, first(8), first(2))
    return root


def _last_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return err.strip().splitlines()[-1]


def _published(folder) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


def test_bundling_refuses_a_linked_run_file(tmp_path, capsys):
    secret = _secret(tmp_path)
    for name in ("samples.jsonl", "config.json"):
        root = _root(tmp_path / name)
        run = next(root.rglob("results.json")).parent
        (run / name).unlink()
        os.symlink(secret, run / name)
        out = tmp_path / name / "board"
        code = main(["leaderboard", "--root", str(root), "--out", str(out), "--bundle"])
        assert code == 2
        assert f"{run / name} is a symbolic link" in _last_line(capsys)
        assert not out.exists() or SECRET not in _published(out)
        assert not (out / "runs").exists()
    assert secret.read_bytes() == SECRET


def test_readers_refuse_a_linked_samples_file(tmp_path, capsys):
    secret = _secret(tmp_path)
    root = _root(tmp_path)
    run_a, run_b = sorted({p.parent for p in root.rglob("results.json")})
    (run_b / "samples.jsonl").unlink()
    os.symlink(secret, run_b / "samples.jsonl")
    assert main(["compare", str(run_a), str(run_b)]) == 2
    assert "is a symbolic link" in _last_line(capsys)


def test_a_linked_results_file_or_run_folder_is_left_out_with_a_warning(tmp_path, capsys):
    root = _root(tmp_path)
    elsewhere = _root(tmp_path / "elsewhere")
    os.symlink(next(elsewhere.rglob("results.json")).parent, root / "linked-run")
    run = sorted(p.parent for p in root.rglob("results.json") if p.parent.name != "linked-run")[0]
    res = run / "results.json"
    (tmp_path / "copy.json").write_bytes(res.read_bytes())
    res.unlink()
    os.symlink(tmp_path / "copy.json", res)
    entries = index(root)
    err = capsys.readouterr().err
    assert f"skipping {root / 'linked-run'}: a symbolic link to a folder" in err
    assert f"skipping {run}" in err and "symbolic link" in err
    assert all(e.run_dir.name != "linked-run" and e.run_dir != run for e in entries)


def test_an_eval_never_writes_through_a_planted_link(tmp_path, tiny_model, capsys):
    secret = _secret(tmp_path)
    run = tmp_path / "run"
    args = ["eval", "--model", tiny_model, "--tasks", "count_shapes", "--max-new-tokens", "4",
            "--limit", "2", "--output", str(run), "--no-progress"]
    assert main(args) == 0
    (run / "samples.jsonl").unlink()
    os.symlink(secret, run / "samples.jsonl")  # planted in a run that resumes
    code = main(args)
    assert code == 2 and "samples.jsonl is a symbolic link" in _last_line(capsys)
    assert secret.read_bytes() == SECRET  # neither appended to nor cut


def test_a_trainer_never_writes_through_a_planted_link(tmp_path, tiny_model, capsys):
    secret = _secret(tmp_path)
    for name in ("train_config.json", "train_log.jsonl"):
        out = tmp_path / name.replace(".", "-")
        out.mkdir()
        os.symlink(secret, out / name)
        code = main(["sft", "--model", tiny_model, "--out", str(out), "--tasks", "count_shapes",
                     "--steps", "1", "--batch-size", "2", "--eval-id-tasks", "",
                     "--eval-ood-tasks", ""])
        assert code == 2 and f"{name} is a symbolic link" in _last_line(capsys)
        assert secret.read_bytes() == SECRET
        assert json.loads(json.dumps(os.readlink(out / name))) == str(secret)  # left as found


# -- no writer writes, renames or deletes through a link it did not create ------------------


def _target(tmp_path):
    """A folder a planted link points at: what it holds must come out untouched."""
    target = tmp_path / "target"
    target.mkdir(exist_ok=True)
    (target / "keep.txt").write_bytes(SECRET)
    return target


def _untouched(target) -> bool:
    return [p.name for p in target.iterdir()] == ["keep.txt"] and (
        target / "keep.txt").read_bytes() == SECRET


def _sft(tiny_model, out, *extra) -> list[str]:
    return ["sft", "--model", tiny_model, "--out", str(out), "--tasks", "count_shapes",
            "--steps", "1", "--batch-size", "2", "--log-every", "1", "--eval-limit", "1",
            "--eval-max-new-tokens", "2", "--eval-id-tasks", "count_shapes",
            "--eval-ood-tasks", "", "--no-eval-progress", *extra]


@pytest.mark.parametrize("planted", [".tmp-checkpoint-000001", "checkpoint-000001", "evals",
                                     "tensorboard"])
def test_a_trainer_writes_no_checkpoint_evaluation_or_event_file_through_a_link(
        tmp_path, tiny_model, capsys, planted):
    target = _target(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(target, out / planted)
    code = main(_sft(tiny_model, out, "--report-to", "tensorboard"))
    assert code == 2 and f"{out / planted} is a symbolic link" in _last_line(capsys)
    assert _untouched(target) and os.readlink(out / planted) == str(target)


def test_export_writes_no_parquet_through_a_link_and_clears_what_it_owns(tmp_path, capsys):
    target = _target(tmp_path)
    out = tmp_path / "verl"
    assert main(["export-verl", str(out), "--tasks", "count_shapes", "--limit", "2"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["train.parquet", "validation.parquet"]
    (out / "train.parquet").unlink()
    os.symlink(target / "keep.txt", out / "train.parquet")
    assert main(["export-verl", str(out), "--tasks", "count_shapes", "--limit", "2"]) == 2
    assert "train.parquet is a symbolic link" in _last_line(capsys)
    assert _untouched(target)
    # a task with a validation split only: the old train.parquet does not stay beside the
    # new validation file
    (out / "train.parquet").unlink()
    assert main(["export-verl", str(out), "--tasks", "count_shapes", "--limit", "2"]) == 0
    only = tmp_path / "only_validation.yaml"
    only.write_text(yaml.safe_dump({
        "name": "mine", "version": 1, "domain": "id", "answer_type": "integer",
        "prompt_template": "{question}", "splits": {"validation": 3},
        "generator": "count_shapes"}))
    assert main(["export-verl", str(out), "--tasks", str(only)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["validation.parquet"]
    assert len(pd.read_parquet(out / "validation.parquet")) == 3


def test_export_lmeval_writes_nothing_through_a_link(tmp_path, capsys):
    target = _target(tmp_path)
    out = tmp_path / "lm"
    out.mkdir()
    os.symlink(target / "keep.txt", out / "vrbench_lmeval.py")
    assert main(["export-lmeval", str(out), "--tasks", "count_shapes", "--limit", "2"]) == 2
    assert "vrbench_lmeval.py is a symbolic link" in _last_line(capsys)
    assert _untouched(target)


@pytest.mark.parametrize("planted", [".runs.tmp", "runs", "leaderboard.png", "README.md"])
def test_the_leaderboard_writes_nothing_through_a_link(tmp_path, capsys, planted):
    target = _target(tmp_path)
    root = _root(tmp_path)
    out = tmp_path / "board"
    out.mkdir()
    os.symlink(target if "." not in planted or planted == ".runs.tmp" else target / "keep.txt",
               out / planted)
    assert main(["leaderboard", "--root", str(root), "--out", str(out), "--bundle", "--force"]) == 2
    assert f"{out / planted} is a symbolic link" in _last_line(capsys)
    assert _untouched(target) and (out / planted).is_symlink()


def test_an_eval_writes_no_run_folder_through_a_link_under_its_root(tmp_path, tiny_model,
                                                                     capsys):
    target = _target(tmp_path)
    root = tmp_path / "runs"
    args = ["eval", "--model", tiny_model, "--tasks", "count_shapes", "--max-new-tokens", "2",
            "--limit", "1", "--root", str(root), "--no-progress"]
    assert main(args) == 0
    (run,) = [p for p in root.iterdir()]
    shutil.rmtree(run)
    os.symlink(target, run)
    assert main(args) == 2 and f"{run} is a symbolic link" in _last_line(capsys)
    assert _untouched(target)


def test_a_tiny_model_and_an_analysis_write_nothing_through_a_link(tmp_path, capsys):
    target = _target(tmp_path)
    model = tmp_path / "model"
    model.mkdir()
    os.symlink(target / "keep.txt", model / "config.json")
    assert main(["build-tiny", str(model)]) == 2
    assert "config.json is a symbolic link" in _last_line(capsys)
    root = _root(tmp_path)
    out = tmp_path / "analysis"
    out.mkdir()
    os.symlink(target / "keep.txt", out / "analysis.md")
    assert main(["analyze", str(root), "--out", str(out)]) == 2
    assert "analysis.md is a symbolic link" in _last_line(capsys)
    assert _untouched(target)


def test_files_are_written_as_the_umask_says(tmp_path):
    from harness.runs.store import write_text_atomic
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "a.json", "{}")
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644

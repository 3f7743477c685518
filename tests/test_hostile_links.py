"""Links in run folders: a symbolic link where a run file belongs (git keeps links, so a
contributed run can carry one) is never read through into a published bundle, never written
through, and named in one sentence; a run folder linked from elsewhere is left out of the
index with a warning."""

import json
import os

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

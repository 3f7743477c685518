"""--report-to: train-step fields and checkpoint evaluations reach TensorBoard and W&B."""

import pytest

from harness.runs.store import read_jsonl
from trainers import sft
from trainers.config import CheckpointEval, OptimSettings
from trainers.trackers import scalars

pytestmark = pytest.mark.slow


def _train(model, out, report_to):
    return sft.train(sft.SFTConfig(
        model=model, out=str(out), tasks="count_shapes", steps=4, batch_size=4, log_every=2,
        save_every=2, report_to=report_to, optim=OptimSettings(lr=1e-3),
        eval=CheckpointEval(id_tasks="count_shapes", ood_tasks="", limit=2,
                            max_new_tokens=8)))


def test_scalars_flatten_numbers_only():
    row = {"loss": 0.5, "acc": 1, "ok": True, "name": "x", "nan": float("nan"),
           "freq": {"wait": 0.25}}
    assert scalars(row, "train") == {"train/loss": 0.5, "train/acc": 1.0, "train/ok": 1.0,
                                     "train/freq/wait": 0.25}


def test_tensorboard_gets_every_logged_field_and_evaluation(tmp_path, tiny_model):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    out = tmp_path / "tb"
    _train(tiny_model, out, "tensorboard")
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    log = read_jsonl(out / "train_log.jsonl")
    for row in log:
        for name in scalars({k: v for k, v in row.items() if k != "step"}, "train"):
            assert name in tags
            points = {e.step: e.value for e in events.Scalars(name)}
            assert points[row["step"]] == pytest.approx(row[name.split("/", 1)[1]], rel=1e-6)
    dyn = read_jsonl(out / "dynamics.jsonl")
    assert {r["step"] for r in dyn} == {2, 4}
    acc = {e.step: e.value for e in events.Scalars("eval/count_shapes/greedy/acc")}
    assert acc == pytest.approx({r["step"]: r["acc"] for r in dyn})


def test_wandb_offline_gets_the_same(tmp_path, tiny_model, monkeypatch):
    import wandb
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    logged, real_log = [], wandb.Run.log

    def log(run, data, step=None, **kw):  # W&B's own log, watched on its way
        logged.append((step, dict(data)))
        return real_log(run, data, step=step, **kw)
    monkeypatch.setattr(wandb.Run, "log", log)
    out = tmp_path / "wb"
    _train(tiny_model, out, "wandb")
    history: dict[int, dict] = {}
    for step, data in logged:
        history.setdefault(step, {}).update(data)
    for row in read_jsonl(out / "train_log.jsonl"):
        assert history[row["step"]]["train/loss"] == pytest.approx(row["loss"])
    for row in read_jsonl(out / "dynamics.jsonl"):
        assert history[row["step"]]["eval/count_shapes/greedy/acc"] == pytest.approx(row["acc"])
    (run,) = (out / "wandb").glob("offline-run-*")  # kept on disk, for `wandb sync`
    (data,) = run.glob("run-*.wandb")
    assert data.stat().st_size > 0


def test_an_unknown_tracker_is_refused(tmp_path, tiny_model):
    from vrbench.errors import VrbenchError
    with pytest.raises(VrbenchError, match="--report-to"):
        _train(tiny_model, tmp_path / "x", "mlflow")

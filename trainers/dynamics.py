"""Training dynamics: each saved checkpoint scored with the harness, one row per task and
preset appended to `dynamics.jsonl`, the evaluation runs kept under `evals/`."""

from __future__ import annotations

from pathlib import Path

from harness.runs.metrics import TRACKED
from harness.runs.store import append_jsonl, no_link, read_jsonl
from trainers.config import CheckpointEval


def eval_run_dir(out: Path, checkpoint: str, preset: str, split: str) -> Path:
    """Where the evaluation run of a trainer's checkpoint (by name) lands."""
    return out / "evals" / f"{checkpoint}-{preset}-{split}"


def dynamics_row(res: dict, task: str, r: dict) -> dict:
    """One task's row of `dynamics.jsonl` from an evaluation's results: its domain, split
    and accuracy interval, and every metric the harness tracks (`harness.runs.metrics`)."""
    return {"task": task, "domain": res["config"]["tasks"][task]["domain"],
            "split": res["config"]["tasks"][task]["split"], "n_samples": r["n_samples"],
            "acc_ci95": r["acc_ci95"],
            "majority_baseline": r["majority_baseline"],
            **{m.key: r.get(m.key) for m in TRACKED}, "run_dir": res["run_dir"]}


def evaluate_checkpoint(ckpt: Path, out: Path, step: int, epoch: float, ev: CheckpointEval,
                        trainer: str, seed: int, data_dir: str | None = None,
                        final: bool = False) -> list[dict]:
    """Score a checkpoint with the harness and append one row per task and preset to
    `out/dynamics.jsonl`. Runs land in `out/evals/`, resumable like any run. The `final`
    checkpoint is scored on `final_limit` samples per task."""
    from harness.runs.runner import evaluate
    dyn = out / "dynamics.jsonl"
    done = {(r["checkpoint"], r["preset"], r["split"]) for r in read_jsonl(dyn)}
    rows = []
    for preset in ev.presets:
        for spec, split in ev.scored():
            if (ckpt.name, preset, split) in done:
                continue
            limit = ev.final_limit if final and ev.final_limit is not None else ev.limit
            run_dir = no_link(eval_run_dir(out, ckpt.name, preset, split), out)  # OUT/evals too
            res = evaluate(str(ckpt), spec, ev.base(), split=split, preset=preset, seed=seed,
                           limit=limit, output=str(run_dir),
                           data_dir=data_dir,
                           progress_desc=f"scoring {ckpt.name} ({split}, {preset})")
            rows += [{"trainer": trainer, "seed": seed, "step": step, "epoch": round(epoch, 4),
                      "checkpoint": ckpt.name, "preset": preset} | dynamics_row(res, task, r)
                     for task, r in res["results"].items()]
    append_jsonl(dyn, rows)
    return rows

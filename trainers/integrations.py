"""vrbench inside the trainers people already use: its grader as the reward, and its scoring
of every saved checkpoint into the same `dynamics.jsonl` that `vrbench dynamics` and
`vrbench leaderboard` read.

TRL:

    from trainers.integrations import VrbenchCallback, trl_reward
    trainer = GRPOTrainer(model, reward_funcs=[trl_reward], train_dataset=ds,
                          callbacks=[VrbenchCallback(name="grpo-trl")], args=...)

    The dataset needs a `target` column (and `choices` for multiple choice, `precision` for
    rounded floats); `trl_dataset("id")` builds one from vrbench tasks.

verl and EasyR1: name the light reward module `harness/scoring/rewards.py` (its path:
`vrbench rewards --path`), which imports no torch; `verl_compute_score` here is the same
function, for configurations that name this file.
"""

from __future__ import annotations

import json
from pathlib import Path

from transformers import TrainerCallback

from harness.runs.provenance import CHECKPOINT_INFO
from harness.runs.store import write_text_atomic
from harness.scoring.rewards import compute_score, score
from trainers.config import CheckpointEval
from trainers.dynamics import evaluate_checkpoint


def _text(completion) -> str:
    """A TRL completion: plain text, or a conversation (with tool calls and tool results,
    or reasoning parsed apart) whose last assistant message with content holds the answer."""
    if isinstance(completion, str):
        return completion
    said = [m for m in completion if isinstance(m, dict) and m.get("role", "assistant")
            == "assistant" and m.get("content")]
    if not said:
        return ""
    content = said[-1]["content"]
    if isinstance(content, list):  # content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


def trl_reward(prompts, completions, target, choices=None, precision=None, **_) -> list[float]:
    """TRL's reward-function signature: 1.0 for each completion vrbench grades correct."""
    n = len(completions)
    choices = [None] * n if choices is None else choices
    precision = [None] * n if precision is None else precision
    return [score(_text(c), {"target": t, "choices": ch, "precision": p})
            for c, t, ch, p in zip(completions, target, choices, precision, strict=True)]


# verl's custom reward (`custom_reward_function.name=verl_compute_score` in this file): the
# light reward module's, which takes every call shape (`vrbench rewards`)
verl_compute_score = compute_score


def trl_dataset(spec: str, split: str = "train", limit: int | None = None,
                data_dir: str | None = None):
    """vrbench tasks as a TRL dataset: a conversational `prompt` with the image, the
    `image`, and the `target` / `choices` / `precision` columns `trl_reward` reads."""
    import datasets

    import tasks
    from tasks import decode_images
    rows = {"prompt": [], "image": [], "target": [], "choices": [], "precision": []}
    for t in tasks.resolve(spec, data_dir):
        for s in t.samples(split, limit):
            rows["prompt"].append([{"role": "user", "content": [
                {"type": "image"}, {"type": "text", "text": t.prompt(s)}]}])
            rows["image"].append(decode_images(s)[0])
            rows["target"].append(s.target)
            rows["choices"].append(s.choices)
            rows["precision"].append(s.meta.get("precision"))
    return datasets.Dataset.from_dict(rows).cast_column("image", datasets.Image())


class VrbenchCallback(TrainerCallback):
    """Scores every checkpoint a transformers `Trainer` (TRL's included) saves, with the
    harness, into `<output_dir>/dynamics.jsonl` and `<output_dir>/evals/`, and records what
    the checkpoint is (`vrbench_checkpoint.json`) for the results index."""

    def __init__(self, eval: CheckpointEval | None = None, name: str | None = None,
                 trainer: str = "trl", data_dir: str | None = None):
        self.eval = eval or CheckpointEval()
        self.name, self.trainer, self.data_dir = name, trainer, data_dir

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        out = Path(args.output_dir)
        ckpt = out / f"checkpoint-{state.global_step}"
        processor = kwargs.get("processing_class")
        if processor is not None and not (ckpt / "preprocessor_config.json").exists():
            processor.save_pretrained(ckpt)  # the harness loads it from the checkpoint
        model = kwargs.get("model")
        base = getattr(getattr(model, "config", None), "_name_or_path", None)
        write_text_atomic(ckpt / CHECKPOINT_INFO, json.dumps({
            "name": self.name or out.name, "trainer": self.trainer, "step": state.global_step,
            "epoch": round(state.epoch or 0.0, 4), "seed": args.seed, "base_model": base},
            indent=2) + "\n")
        evaluate_checkpoint(ckpt, out, state.global_step, state.epoch or 0.0, self.eval,
                            self.trainer, args.seed, self.data_dir)

"""Test helpers shared by several test files."""

import hashlib
import json

import tasks
from harness.backends import GenerationConfig, Request, Response
from harness.runs.provenance import CHECKPOINT_INFO
from harness.runs.runner import evaluate
from tasks import decode_images


def image_key(img) -> str:
    return hashlib.sha1(img.convert("RGB").tobytes()).hexdigest()


class ScriptedBackend:
    """A backend that answers from a table keyed by image: a controlled model for checking
    the runner's bookkeeping against known answers."""

    name = "scripted"

    def __init__(self, answers: dict[str, list[str]]):
        self.answers = answers  # image key -> the n response texts
        self.calls = 0

    def generate(self, requests: list[Request], config: GenerationConfig):
        self.calls += 1
        out = []
        for r in requests:
            texts = self.answers[image_key(r.images[0])]
            out.append([Response(t, len(t.split()) + 1, "stop") for t in texts[:config.n]])
        return out


N = 20


def scripted_answers(task, right: set[int], reflect_wrong: bool = False,
                     split: str | None = None) -> dict:
    """Right answers (the plain worked solution) for the sample indices in `right`; wrong
    ones are a bare wrong answer, or a long reflective ramble of a varying length before it."""
    out = {}
    for i, s in enumerate(task.samples(split or task.eval_split(), N)):
        ramble = "Wait, let me verify. " * 10 + "Counting once more. " * (i % 3)
        wrong = (ramble if reflect_wrong else "") + "\\boxed{999}"
        out[image_key(decode_images(s)[0])] = [s.solution if i in right else wrong]
    return out


def checkpoint(base, name, step, seed, trainer="sft", base_model=None):
    """A directory carrying what a vrbench trainer writes about its checkpoints."""
    d = base / "checkpoints" / f"{name}-seed{seed}" / f"checkpoint-{step:06d}"
    d.mkdir(parents=True)
    (d / CHECKPOINT_INFO).write_text(json.dumps({
        "name": name, "trainer": trainer, "step": step, "epoch": step / 100, "seed": seed,
        "base_model": None if base_model is None else str(base_model.resolve())}))
    return d


def scripted_eval(model, root, id_right: set[int], ood_right: set[int] | None = None, **kw):
    out = []
    for name, right in (("count_shapes", id_right), ("count_shapes.shape1", ood_right)):
        if right is None:
            continue
        t = tasks.load(name)
        out.append(evaluate(str(model), [t], limit=N, engine=ScriptedBackend(
            scripted_answers(t, right, **kw)), root=root, progress=False))
    return out


def first(k: int) -> set[int]:
    return set(range(k))


def one_sentence(capsys) -> str:
    """The error line a command ended with (progress bars aside): one sentence, no
    traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("vrbench: error: ") and last.endswith((".", "?")), err
    return last

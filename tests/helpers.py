"""Test helpers shared by several test files."""

import hashlib

from harness.backends import GenerationConfig, Request, Response


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

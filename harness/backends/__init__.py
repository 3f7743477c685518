"""Backends turn (prompt, images) requests into responses. They know nothing of tasks.

Every backend implements `generate(requests, config) -> list[list[Response]]`, one list of
`config.n` responses per request, in request order.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Protocol

from PIL import Image

from tasks.errors import VrbenchError


@dataclass(frozen=True)
class GenerationConfig:
    """Every setting that shapes a response, explicit: a backend applies exactly these and
    nothing from the checkpoint's own generation config."""

    max_new_tokens: int = 256
    temperature: float = 0.0  # 0 means greedy decoding
    top_p: float = 1.0
    top_k: int = 0  # 0: off
    repetition_penalty: float = 1.0  # 1.0: off
    n: int = 1  # responses per prompt
    seed: int = 0
    logprobs: bool = False  # also return each sampled token's log-probability (hf backend)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Request:
    prompt: str  # the user turn's text; the backend applies the model's chat template
    images: list[Image.Image] = field(default_factory=list)


@dataclass(frozen=True)
class Response:
    text: str
    n_tokens: int | None  # generated tokens, end-of-sequence included (None: not reported)
    finish_reason: str  # "stop" (end of sequence) or "length" (hit max_new_tokens)
    token_ids: tuple[int, ...] = ()  # the generated ids, end-of-sequence included
    # with GenerationConfig.logprobs: each token's log-probability under the distribution it
    # was sampled from (after temperature, top-k, top-p, repetition penalty, suppression)
    logprobs: tuple[float, ...] = ()


class Backend(Protocol):
    name: str

    def generate(self, requests: list[Request], config: GenerationConfig
                 ) -> list[list[Response]]: ...


BACKENDS = ("hf", "openai", "vllm")


def load_backend(name: str, model: str, **kwargs) -> Backend:
    """A backend by name: `hf` and `vllm` over a checkpoint path (or Hub id); `openai` over
    a model name served at `base_url`."""
    if name == "hf":
        from harness.backends.hf import HFBackend
        return HFBackend(model, **kwargs)
    if name == "openai":
        from harness.backends.openai_compat import OpenAIBackend
        return OpenAIBackend(model, **kwargs)
    if name == "vllm":
        from harness.backends.vllm_backend import VLLMBackend
        return VLLMBackend(model, **kwargs)
    raise VrbenchError(f"unknown backend {name!r}; available: {', '.join(BACKENDS)}.")

"""Backends turn (prompt, images) requests into responses. They know nothing of tasks.

Every backend implements `generate(requests, config) -> list[list[Response]]`, one list of
`config.n` responses per request, in request order. `BACKENDS` registers them by name (`hf`:
transformers in this process, `vllm`, `openai`: any OpenAI-compatible server); `chat` is the
one chat layout they and the trainers share, `serve` an OpenAI-compatible server over `hf`.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass, field
from typing import Protocol

from PIL import Image

from vrbench.errors import VrbenchError

DTYPES = ("auto", "float32", "bfloat16", "float16")  # a model's weights (auto: bfloat16 on
# CUDA, else float32)


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


@dataclass(frozen=True)
class BackendSpec:
    """A registered backend: a new backend is one module and one entry in `BACKENDS`; the
    `--backend` choices, the checks of its options and the runner's handling follow."""

    module: str  # the module that defines it, imported only when the backend is used
    cls: str  # its class: `cls(model, **options)` is a Backend
    checkpoint: bool  # the model is a checkpoint on disk or the Hub (checked before loading,
    # its hash and provenance recorded), not the name of a served model
    options: tuple[str, ...] = ()  # the EvalConfig fields passed to it as keyword arguments
    streams: bool = False  # it batches continuously (`stream`): a sampled response is seeded
    # by its sample, not by its batch


BACKENDS: dict[str, BackendSpec] = {
    "hf": BackendSpec("harness.backends.hf", "HFBackend", checkpoint=True,
                      options=("device", "dtype", "device_map", "max_memory", "offload_folder",
                               "trust_remote_code"), streams=True),
    "openai": BackendSpec("harness.backends.openai_compat", "OpenAIBackend", checkpoint=False,
                          options=("base_url", "concurrency")),
    "vllm": BackendSpec("harness.backends.vllm_backend", "VLLMBackend", checkpoint=True,
                        options=("tensor_parallel_size",)),
}


def takes_checkpoint(name: str) -> bool:
    """Whether backend `name` loads a checkpoint (an engine made by the caller is taken to)."""
    return BACKENDS[name].checkpoint if name in BACKENDS else True


def load_backend(name: str, model: str, **options) -> Backend:
    """A backend by name over `model`: a checkpoint path or Hub id, or a served model's name
    (see `BACKENDS`)."""
    if name not in BACKENDS:
        raise VrbenchError(f"unknown backend {name!r}; available: {', '.join(BACKENDS)}.")
    spec = BACKENDS[name]
    return getattr(importlib.import_module(spec.module), spec.cls)(model, **options)

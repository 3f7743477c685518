"""OpenAI-compatible chat completions: any server that speaks the API (vLLM's, SGLang's,
`vrbench serve`, a hosted model). Images travel as base64 PNG data URLs, requests run
`concurrency` at a time, and failed calls (connection errors, timeouts, 429 and 5xx) are
retried with exponential backoff and jitter.

Token counts come from the server's `usage` (exact for one response per prompt); the
analyzers fall back to word counts where a server reports none.
"""

from __future__ import annotations

import base64
import io
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor

from PIL import Image

from harness.backends import GenerationConfig, Request, Response
from harness.backends.chat import chat_messages
from vrbench.errors import VrbenchError
from vrbench.seeds import derive

FINISH = {"stop": "stop", "length": "length", "eos": "stop"}


def data_url(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def messages(req: Request) -> list[dict]:
    """One user turn in the shared chat layout, each image a data URL."""
    return chat_messages(req.prompt, [{"type": "image_url", "image_url": {"url": data_url(im)}}
                                      for im in req.images])


class OpenAIBackend:
    name = "openai"

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None,
                 concurrency: int = 8, timeout: float = 300.0, max_retries: int = 5,
                 backoff: float = 1.0):
        try:
            import openai
        except ImportError as e:
            raise VrbenchError("the openai backend needs the openai package: "
                               "pip install 'vrbench[openai]'.") from e
        base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            raise VrbenchError("the openai backend needs --base-url (or OPENAI_BASE_URL), "
                               "e.g. http://127.0.0.1:8000/v1.")
        self.model, self.base_url = model, base_url
        self.concurrency, self.max_retries, self.backoff = concurrency, max_retries, backoff
        self._errors = openai
        self.client = openai.OpenAI(base_url=base_url, timeout=timeout, max_retries=0,
                                    api_key=api_key or os.environ.get("OPENAI_API_KEY")
                                    or "none")

    def _call(self, req: Request, config: GenerationConfig, seed: int):
        retryable = (self._errors.APIConnectionError, self._errors.APITimeoutError,
                     self._errors.RateLimitError, self._errors.InternalServerError)
        for attempt in range(self.max_retries + 1):
            try:
                # top_k and repetition_penalty are not in the OpenAI API: sent (as vLLM's and
                # vrbench serve's extensions) only when they are on
                extra = {k: v for k, v in (("top_k", config.top_k),
                                           ("repetition_penalty", config.repetition_penalty))
                         if v not in (0, 1.0)}
                return self.client.chat.completions.create(
                    model=self.model, messages=messages(req), n=config.n,
                    max_tokens=config.max_new_tokens, temperature=config.temperature,
                    top_p=config.top_p, seed=seed, extra_body=extra or None)
            except retryable as e:
                if attempt == self.max_retries:
                    raise VrbenchError(f"{self.base_url} failed {attempt + 1} times; last "
                                       f"error: {type(e).__name__}: {e}") from e
                time.sleep(self.backoff * 2 ** attempt * (0.5 + random.random() / 2))
            except self._errors.APIStatusError as e:
                raise VrbenchError(f"{self.base_url} refused the request "
                                   f"({e.status_code}: {e.message}).") from e
        raise AssertionError("unreachable")

    def generate(self, requests: list[Request], config: GenerationConfig
                 ) -> list[list[Response]]:
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            # each request has its own seed, so the result does not depend on the batching
            done = list(pool.map(lambda ir: self._call(
                ir[1], config, derive(config.seed, "request", ir[0])), enumerate(requests)))
        out = []
        for completion in done:
            choices = sorted(completion.choices, key=lambda c: c.index)
            usage = getattr(completion, "usage", None)
            tokens = usage.completion_tokens if usage is not None and len(choices) == 1 \
                else None
            out.append([Response(c.message.content or "", tokens,
                                 FINISH.get(c.finish_reason, c.finish_reason or "stop"))
                        for c in choices])
        return out

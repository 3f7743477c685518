"""Hugging Face transformers backend: batched, left-padded `generate` with the chat template."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from itertools import islice
from pathlib import Path

import torch
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    StoppingCriteria,
    StoppingCriteriaList,
)

from harness.backends import GenerationConfig, Request, Response, patch_embedding
from harness.backends.chat import chat_text, token_count
from harness.backends.checkpoint import check_checkpoint
from harness.backends.continuous import ContinuousDecoder, new_cache
from harness.backends.sampling import Sampler
from vrbench.errors import VrbenchError
from vrbench.seeds import derive

# Special tokens a model must never emit: re-reading a completion that holds them breaks
# the image-token bookkeeping of VLM processors.
_VISION_TOKENS = ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>",
                  "<image>", "<|image|>", "<fake_token_around_image>")


def load_config(path: str):
    """A checkpoint's model config (no weights), with the same one-sentence errors."""
    from transformers import AutoConfig
    check_checkpoint(path)
    try:
        return AutoConfig.from_pretrained(path)
    except Exception as e:  # whatever a malformed config raises
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        raise VrbenchError(f"the config of {path} could not be read ({first}).") from e


def _max_memory(spec: str | None) -> dict | None:
    """"0=70GiB,1=70GiB,cpu=200GiB" as accelerate takes it (a GPU by its index)."""
    if not spec:
        return None
    out = {}
    for part in spec.split(","):
        key, sep, size = part.partition("=")
        if not sep or not key.strip() or not size.strip():
            raise VrbenchError(f"--max-memory {spec!r}: write DEVICE=SIZE pairs, "
                               "e.g. 0=70GiB,1=70GiB,cpu=200GiB.")
        key = key.strip()
        out[int(key) if key.isdigit() else key] = size.strip()
    return out


def load_model(path: str, device: str | None = None, dtype: torch.dtype | str | None = None, *,
               device_map: str | None = None, max_memory: str | None = None,
               offload_folder: str | None = None, trust_remote_code: bool = False):
    """(processor, model) through the Auto classes, with a clear error for non-VLMs. With
    `device_map` ("auto"), accelerate spreads the model over the devices it sees, within
    `max_memory`, the rest offloaded to `offload_folder`. A checkpoint that ships its own
    code runs it only with `trust_remote_code`."""
    from transformers import AutoModelForImageTextToText, AutoProcessor
    check_checkpoint(path)
    if not trust_remote_code and _ships_code(path):
        raise VrbenchError(f"{path} ships its own modelling code (auto_map in its config); "
                           "run it only if you trust it, with --trust-remote-code.")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = getattr(torch, dtype) if isinstance(dtype, str) and dtype != "auto" else (
        None if dtype == "auto" else dtype)
    on_gpu = device.startswith("cuda") or (device_map is not None and torch.cuda.is_available())
    dtype = dtype or (torch.bfloat16 if on_gpu else torch.float32)
    placement = {} if device_map is None else {
        "device_map": device_map, "max_memory": _max_memory(max_memory),
        "offload_folder": offload_folder}
    try:
        processor = AutoProcessor.from_pretrained(path, trust_remote_code=trust_remote_code)
        model = AutoModelForImageTextToText.from_pretrained(
            path, dtype=dtype, trust_remote_code=trust_remote_code, **placement)
    except Exception as e:  # whatever a malformed, truncated or hostile checkpoint raises
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        raise VrbenchError(f"{path} could not be loaded as a vision-language checkpoint "
                           f"({first}).") from e
    if getattr(processor, "chat_template", None) is None:
        raise VrbenchError(f"{path} has no chat template, so prompts cannot be formatted.")
    patch_embedding.as_products(model)  # a patch embedding's convolution is a product
    return processor, (model if device_map else model.to(device)).eval()


def _ships_code(path: str) -> bool:
    """Whether a local checkpoint's config names modelling code of its own (`auto_map`)."""
    import json
    try:
        return "auto_map" in json.loads((Path(path) / "config.json").read_text())
    except (OSError, ValueError, TypeError):
        return False


class _Stop(StoppingCriteria):
    def __init__(self, should_stop: Callable[[], bool]):
        self.should_stop = should_stop

    def __call__(self, input_ids, scores, **kwargs) -> torch.BoolTensor:
        return torch.full((input_ids.shape[0],), self.should_stop(), dtype=torch.bool,
                          device=input_ids.device)


class _Sampled(LogitsProcessor):
    """The one logits processor of a static `generate`: `Sampler`'s scores (suppression, the
    repetition penalty over each row's real tokens, temperature, top-k, top-p), so that
    transformers only takes the largest or draws from them; and the log-probability each
    drawn token had. The token drawn at one step is the last input id at the next; the final
    step's is read when generation ends (`finish`)."""

    def __init__(self, sampler: Sampler, prompt_mask: torch.Tensor, logprobs: bool):
        self.sampler, self.prompt_mask, self.logprobs = sampler, prompt_mask, logprobs
        self.previous: torch.Tensor | None = None
        self.taken: list[torch.Tensor] = []

    def __call__(self, input_ids, scores):
        if self.previous is not None:
            self.taken.append(self.previous.gather(1, input_ids[:, -1:]).squeeze(1))
        new = input_ids.shape[1] - self.prompt_mask.shape[1]  # every generated token is real
        mask = torch.cat([self.prompt_mask, self.prompt_mask.new_ones((len(input_ids), new))],
                         dim=1)
        scores = self.sampler.scores(scores, input_ids, mask)
        if self.logprobs:
            self.previous = torch.log_softmax(scores, dim=-1)
        return scores

    def finish(self, last: torch.Tensor) -> torch.Tensor:
        """(rows, steps) log-probabilities, given the last step's tokens."""
        self.taken.append(self.previous.gather(1, last[:, None]).squeeze(1))
        return torch.stack(self.taken, dim=1)


# Everything transformers would take from the checkpoint's generation config, set to "off":
# vrbench's GenerationConfig, applied by `_Sampled`, is the whole of what shapes a response.
_OFF = {"repetition_penalty": 1.0, "suppress_tokens": None, "typical_p": 1.0, "min_p": None,
        "epsilon_cutoff": 0.0, "eta_cutoff": 0.0, "no_repeat_ngram_size": 0,
        "encoder_repetition_penalty": 1.0, "min_new_tokens": 0, "diversity_penalty": 0.0,
        "num_beams": 1, "renormalize_logits": False}


class HFBackend:
    name = "hf"

    def __init__(self, model: str, device: str | None = None,
                 dtype: torch.dtype | str | None = None, device_map: str | None = None,
                 max_memory: str | None = None, offload_folder: str | None = None,
                 trust_remote_code: bool = False):
        self.path = model
        self._attach(*load_model(model, device, dtype, device_map=device_map,
                                 max_memory=max_memory, offload_folder=offload_folder,
                                 trust_remote_code=trust_remote_code))

    @classmethod
    def from_loaded(cls, processor, model) -> HFBackend:
        """Generate with a model already in memory (a trainer's policy)."""
        self = cls.__new__(cls)
        self.path = getattr(model.config, "_name_or_path", "")
        self._attach(processor, model)
        return self

    def _attach(self, processor, model) -> None:
        self.processor, self.model = processor, model
        self.device = self.model.device
        tok = self.processor.tokenizer
        tok.padding_side = "left"
        gen = self.model.generation_config
        eos = gen.eos_token_id if gen.eos_token_id is not None else tok.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos])
        self.pad_id = gen.pad_token_id if gen.pad_token_id is not None else tok.pad_token_id
        if self.pad_id is None:
            self.pad_id = next(iter(self.eos_ids))
        vocab = tok.get_vocab()
        self.suppress = sorted({vocab[t] for t in _VISION_TOKENS if t in vocab})
        text_config = self.model.config.get_text_config()
        self.max_positions = getattr(text_config, "max_position_embeddings", None)

    def count_tokens(self, text: str) -> int:
        return token_count(self.processor, text)

    def prompt_tokens(self, request: Request) -> int:
        """Length of the request's model input (chat template and image tokens included)."""
        enc = self.processor(text=[chat_text(self.processor, request.prompt,
                                             len(request.images))],
                             images=request.images or None, return_tensors="pt")
        return int(enc["input_ids"].shape[1])

    @torch.inference_mode()
    def generate(self, requests: list[Request], config: GenerationConfig,
                 should_stop: Callable[[], bool] | None = None) -> list[list[Response]]:
        """`should_stop`, asked after every token, ends the generation early (the responses
        then end as if cut at the token limit)."""
        texts = [chat_text(self.processor, r.prompt, len(r.images)) for r in requests]
        images = [im for r in requests for im in r.images] or None
        enc = self.processor(text=texts, images=images, padding=True, return_tensors="pt")
        enc = enc.to(self.device)
        sample = config.temperature > 0
        sampled = _Sampled(Sampler.of(config, self.suppress),
                           enc["attention_mask"].repeat_interleave(config.n, dim=0),
                           sample and config.logprobs)
        # transformers' warpers off (its own "unset" values when greedy, so it warns of none)
        warp = {"temperature": 1.0, "top_p": 1.0, "top_k": 0 if sample else 50}
        torch.manual_seed(config.seed)
        out = self.model.generate(
            **enc, max_new_tokens=config.max_new_tokens, do_sample=sample,
            num_return_sequences=config.n, **warp, **_OFF, pad_token_id=self.pad_id,
            eos_token_id=sorted(self.eos_ids), logits_processor=LogitsProcessorList([sampled]),
            stopping_criteria=None if should_stop is None else
            StoppingCriteriaList([_Stop(should_stop)]))
        new = out[:, enc["input_ids"].shape[1]:]
        logprobs = sampled.finish(new[:, -1]).tolist() if sampled.logprobs else None
        responses = []
        for row, ids in enumerate(new.tolist()):
            stop = next((i for i, t in enumerate(ids) if t in self.eos_ids), None)
            kept = ids if stop is None else ids[:stop + 1]
            responses.append(self._response(kept, stop is not None,
                                            logprobs[row][:len(kept)] if logprobs else ()))
        return [responses[i * config.n:(i + 1) * config.n] for i in range(len(requests))]

    def stream(self, requests: Iterable[tuple[object, Request, int]], config: GenerationConfig,
               slots: int) -> Iterator[tuple[object, list[Response]]]:
        """Continuous batching: (key, request, seed) are taken as places free up, at most
        `slots` responses in flight, and each key is yielded with its `config.n` responses
        once they have all ended (so not in the order given). Greedy responses are the ones
        `generate` gives; sampled response j of a request is drawn from its own generator,
        seeded by (seed, j). A model whose cache cannot be joined and cut generates in static
        batches of `slots` requests, seeded by each batch's first seed."""
        if new_cache(self.model) is None or getattr(self.model, "hf_device_map", None):
            # a cache that cannot be joined and cut, or a model spread over devices
            it = iter(requests)
            while chunk := list(islice(it, max(1, slots // config.n))):
                outs = self.generate([r for _, r, _ in chunk], replace(config, seed=chunk[0][2]))
                yield from zip([k for k, _, _ in chunk], outs, strict=True)
            return
        decoder = ContinuousDecoder(self.model, self.eos_ids, self.pad_id)
        got: dict[int, dict[int, Response]] = {}

        def encode(reqs: list[Request]):
            return self.processor(
                text=[chat_text(self.processor, r.prompt, len(r.images)) for r in reqs],
                images=[im for r in reqs for im in r.images] or None, padding=True,
                return_tensors="pt")

        keyed = _Keyed(requests)
        for f in decoder.run(keyed.rows(config.n), encode, slots=slots,
                             max_new_tokens=config.max_new_tokens,
                             sampler=Sampler.of(config, self.suppress),
                             logprobs=config.logprobs and config.temperature > 0):
            i, j = f.key
            got.setdefault(i, {})[j] = self._response(f.token_ids, f.stopped, f.logprobs)
            if len(got[i]) == config.n:
                done = got.pop(i)
                yield keyed.keys.pop(i), [done[j] for j in range(config.n)]

    def _response(self, ids: list[int], stopped: bool, logprobs) -> Response:
        return Response(text=self.processor.tokenizer.decode(ids, skip_special_tokens=True),
                        n_tokens=len(ids), finish_reason="stop" if stopped else "length",
                        token_ids=tuple(ids), logprobs=tuple(logprobs))


class _Keyed:
    """A stream of (key, request, seed) as the decoder's rows: n per request, each row's key
    (request number, response number), its seed derived from the request's (`derive`)."""

    def __init__(self, requests: Iterable[tuple[object, Request, int]]):
        self.requests = requests
        self.keys: dict[int, object] = {}

    def rows(self, n: int):
        for i, (key, request, seed) in enumerate(self.requests):
            self.keys[i] = key
            for j in range(n):
                yield (i, j), request, derive(seed, "response", j)

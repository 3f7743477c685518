"""Hugging Face transformers backend: batched, left-padded `generate` with the chat template."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from harness.backends import GenerationConfig, Request, Response
from harness.prompting import chat_text
from tasks.errors import VrbenchError

# Special tokens a model must never emit: re-reading a completion that holds them breaks
# the image-token bookkeeping of VLM processors.
_VISION_TOKENS = ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>",
                  "<image>", "<|image|>", "<fake_token_around_image>")


def check_checkpoint(path: str) -> None:
    """Fail with one sentence when `path` cannot be a VLM checkpoint."""
    p = Path(path)
    if not p.exists():
        if p.is_absolute() or path.startswith(".") or path.count("/") != 1:
            raise VrbenchError(f"model path {path} does not exist.")
        return  # a Hub id: transformers resolves it
    if not p.is_dir():
        raise VrbenchError(f"model path {path} is a file; a checkpoint is a directory.")
    if not (p / "config.json").is_file():
        raise VrbenchError(f"{path} is not a model checkpoint: it has no config.json.")


def load_model(path: str, device: str | None = None, dtype: torch.dtype | None = None):
    """(processor, model) through the Auto classes, with a clear error for non-VLMs."""
    from transformers import AutoModelForImageTextToText, AutoProcessor
    check_checkpoint(path)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = dtype or (torch.bfloat16 if device.startswith("cuda") else torch.float32)
    try:
        processor = AutoProcessor.from_pretrained(path)
        model = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype)
    except Exception as e:  # whatever a malformed, truncated or hostile checkpoint raises
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        raise VrbenchError(f"{path} could not be loaded as a vision-language checkpoint "
                           f"({first}).") from e
    if getattr(processor, "chat_template", None) is None:
        raise VrbenchError(f"{path} has no chat template, so prompts cannot be formatted.")
    return processor, model.to(device).eval()


class _Stop(StoppingCriteria):
    def __init__(self, should_stop: Callable[[], bool]):
        self.should_stop = should_stop

    def __call__(self, input_ids, scores, **kwargs) -> torch.BoolTensor:
        return torch.full((input_ids.shape[0],), self.should_stop(), dtype=torch.bool,
                          device=input_ids.device)


class HFBackend:
    name = "hf"

    def __init__(self, model: str, device: str | None = None, dtype: torch.dtype | None = None):
        self.path = model
        self._attach(*load_model(model, device, dtype))

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
        kwargs = {"do_sample": sample, "num_return_sequences": config.n}
        if sample:
            kwargs.update(temperature=config.temperature, top_p=config.top_p, top_k=0)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        torch.manual_seed(config.seed)
        out = self.model.generate(**enc, max_new_tokens=config.max_new_tokens,
                                  pad_token_id=self.pad_id, eos_token_id=sorted(self.eos_ids),
                                  suppress_tokens=self.suppress or None,
                                  stopping_criteria=None if should_stop is None else
                                  StoppingCriteriaList([_Stop(should_stop)]), **kwargs)
        new = out[:, enc["input_ids"].shape[1]:].tolist()
        tok = self.processor.tokenizer
        responses = []
        for ids in new:
            stop = next((i for i, t in enumerate(ids) if t in self.eos_ids), None)
            kept = ids if stop is None else ids[:stop + 1]
            responses.append(Response(
                text=tok.decode(kept, skip_special_tokens=True), n_tokens=len(kept),
                finish_reason="length" if stop is None else "stop", token_ids=tuple(kept)))
        return [responses[i * config.n:(i + 1) * config.n] for i in range(len(requests))]

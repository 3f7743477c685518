"""The chat layout, the one place it is decided: shared by the backends, the server's
clients and the trainers, so that a model is trained on exactly the prompts it is evaluated
with."""

from __future__ import annotations

from vrbench.errors import VrbenchError

LOCAL_IMAGE = {"type": "image"}  # an image part a processor fills with its image tokens


def chat_messages(prompt: str, image_parts: list[dict]) -> list[dict]:
    """One user turn: the images first, then the text (Qwen2-VL's convention). An image part
    is `LOCAL_IMAGE` for a processor, or an `image_url` part for an OpenAI-compatible server."""
    return [{"role": "user", "content": [*image_parts, {"type": "text", "text": prompt}]}]


def chat_text(processor, prompt: str, n_images: int) -> str:
    """The prompt rendered with the checkpoint's chat template, ready for generation. A
    template that transformers' sandbox refuses (or that fails) is one sentence."""
    from jinja2.exceptions import SecurityError, TemplateError
    try:
        return processor.apply_chat_template(chat_messages(prompt, [LOCAL_IMAGE] * n_images),
                                             add_generation_prompt=True, tokenize=False)
    except SecurityError as e:
        raise VrbenchError(f"the checkpoint's chat template was refused by transformers' "
                           f"sandbox ({e}); it is not run.") from e
    except TemplateError as e:
        raise VrbenchError(f"the checkpoint's chat template fails ({e}).") from e


def token_count(processor, text: str) -> int:
    """The model's token count of a piece of generated text (no special tokens added)."""
    return len(processor.tokenizer(text, add_special_tokens=False)["input_ids"])

"""Chat formatting shared by the backends and the trainers, so that a model is trained on
exactly the prompts it is evaluated with."""

from __future__ import annotations


def chat_messages(prompt: str, n_images: int) -> list[dict]:
    """One user turn: the images first, then the text (Qwen2-VL's convention)."""
    content: list[dict] = [{"type": "image"} for _ in range(n_images)]
    content.append({"type": "text", "text": prompt})
    return [{"role": "user", "content": content}]


def chat_text(processor, prompt: str, n_images: int) -> str:
    """The prompt rendered with the checkpoint's chat template, ready for generation."""
    return processor.apply_chat_template(chat_messages(prompt, n_images),
                                         add_generation_prompt=True, tokenize=False)

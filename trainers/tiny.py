"""Build a tiny reference VLM offline: a real Qwen2-VL checkpoint with a locally trained tokenizer.

The result is an ordinary Hugging Face checkpoint directory: `AutoProcessor` and
`AutoModelForImageTextToText` load it like any model from the Hub.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    GenerationConfig,
    PreTrainedTokenizerFast,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
    Qwen2VLImageProcessor,
    Qwen2VLProcessor,
    Qwen2VLVideoProcessor,
)

import tasks
from harness.analyzers import REFLECTION_WORDS

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>",
                  "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]

# Qwen2-VL's chat template, without the default system prompt.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

EXTRA_TEXT = [
    "The answer is", "Final answer:", "Answer:", "Let me think step by step.",
    "<think>", "</think>", "<answer>", "</answer>", "\\boxed{}", "\\frac{1}{2}",
    "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 + - * / = ( ) .",
    "A B C D E", "(A) (B) (C) (D)", *REFLECTION_WORDS,
]


@dataclass(frozen=True)
class TinySize:
    hidden: int
    layers: int
    heads: int
    vision_dim: int
    vision_depth: int
    vision_heads: int
    vocab: int = 1024


SIZES = {
    "tiny": TinySize(hidden=128, layers=2, heads=4, vision_dim=64, vision_depth=2, vision_heads=2),
    "small": TinySize(hidden=256, layers=4, heads=4, vision_dim=128, vision_depth=4,
                      vision_heads=4),
    "base": TinySize(hidden=512, layers=6, heads=8, vision_dim=256, vision_depth=6,
                     vision_heads=8),
}


def corpus() -> list[str]:
    """Text the tokenizer is trained on: prompts and solutions of every offline task."""
    texts = list(EXTRA_TEXT)
    for task in tasks.resolve("all"):
        split = "train" if "train" in task.splits else "validation"
        for s in task.samples(split, limit=300):
            texts += [task.prompt(s), s.solution, s.solution_reflective]
    return texts


def train_tokenizer(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|im_end|>",
        pad_token="<|endoftext|>", padding_side="left",
        extra_special_tokens={"image_token": "<|image_pad|>", "video_token": "<|video_pad|>",
                              "vision_start_token": "<|vision_start|>",
                              "vision_end_token": "<|vision_end|>"})


def build(out: str | Path, size: str = "tiny", seed: int = 0) -> Path:
    """Write a tiny Qwen2-VL checkpoint to `out`; deterministic for a given size and seed."""
    if size not in SIZES:
        from harness.errors import VrbenchError
        raise VrbenchError(f"unknown size {size!r}; choose one of {', '.join(SIZES)}.")
    s = SIZES[size]
    out = Path(out)
    tokenizer = train_tokenizer(corpus(), s.vocab)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    # Images up to 8x8 merged tokens (224x224 px) are kept at their size: no resizing of the
    # 28-pixel-aligned figures.
    image_processor = Qwen2VLImageProcessor(
        size={"shortest_edge": 28 * 28, "longest_edge": 28 * 28 * 64})
    processor = Qwen2VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                 video_processor=Qwen2VLVideoProcessor(),
                                 chat_template=CHAT_TEMPLATE)
    head_dim = s.hidden // s.heads
    t = head_dim // 2 - 2 * (3 * head_dim // 16)
    config = Qwen2VLConfig(
        text_config={
            "vocab_size": len(tokenizer), "hidden_size": s.hidden,
            "intermediate_size": 3 * s.hidden, "num_hidden_layers": s.layers,
            "num_attention_heads": s.heads, "num_key_value_heads": s.heads,
            "max_position_embeddings": 4096,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                                "mrope_section": [t, 3 * head_dim // 16, 3 * head_dim // 16]},
            "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"], "tie_word_embeddings": True,
        },
        vision_config={
            "depth": s.vision_depth, "embed_dim": s.vision_dim, "hidden_size": s.hidden,
            "num_heads": s.vision_heads, "mlp_ratio": 2, "patch_size": 14,
            "spatial_merge_size": 2, "temporal_patch_size": 2, "in_channels": 3,
        },
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<|endoftext|>"], pad_token_id=ids["<|endoftext|>"],
        eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]], do_sample=False)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

"""Build a tiny reference VLM offline: a real Qwen2-VL checkpoint with a locally trained tokenizer.

The result is an ordinary Hugging Face checkpoint directory: `AutoProcessor` and
`AutoModelForImageTextToText` load it like any model from the Hub.
"""

from __future__ import annotations

from pathlib import Path

import tasks
from harness.analyzers import REFLECTION_WORDS
from harness.runs.store import make_dirs, no_link
from tasks import shifts
from trainers.config import SIZES, TinySize

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


def corpus() -> list[str]:
    """Text the tokenizer is trained on: prompts and solutions of every task file, and the
    words every shift dial adds (whichever shifts a suite holds)."""
    texts = list(EXTRA_TEXT) + shifts.texts()
    for task in tasks.resolve("id,far"):
        split = "train" if "train" in task.splits else "validation"
        for s in task.samples(split, limit=300):
            texts += [task.prompt(s), s.solution, s.solution_reflective]
    return texts


def train_tokenizer(texts: list[str], vocab_size: int, extra_special: tuple[str, ...] = (),
                    image_token: str = "<|image_pad|>"):
    """A byte-level BPE tokenizer trained on `texts`, as transformers' fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size,
                                  special_tokens=SPECIAL_TOKENS + list(extra_special),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|im_end|>",
        pad_token="<|endoftext|>", padding_side="left",
        extra_special_tokens={"image_token": image_token, "video_token": "<|video_pad|>",
                              "vision_start_token": "<|vision_start|>",
                              "vision_end_token": "<|vision_end|>"})


def build(out: str | Path, size: str = "tiny", seed: int = 0, arch: str = "qwen2_vl") -> Path:
    """Write a tiny checkpoint of `arch` (the paper's Qwen2-VL by default) to `out`;
    deterministic for a given architecture, size and seed."""
    from vrbench.errors import VrbenchError
    if size not in SIZES:
        raise VrbenchError(f"unknown size {size!r}; choose one of {', '.join(SIZES)}.")
    if arch not in ARCHS:
        raise VrbenchError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}.")
    return ARCHS[arch](Path(out), SIZES[size], seed)


def _save(out: Path, model_cls, config, seed: int, processor, ids: dict, eos: str,
          pad: str) -> Path:
    """The model of `config`, its weights drawn from `seed`, saved with its processor and a
    generation config that stops at `eos`. (torch and transformers are imported here and in
    the builders, where a command needs them: `vrbench --help` starts without them.)"""
    import torch
    from transformers import GenerationConfig
    torch.manual_seed(seed)
    model = model_cls(config)
    model.generation_config = GenerationConfig(
        bos_token_id=ids[pad], pad_token_id=ids[pad], eos_token_id=[ids[eos], ids[pad]],
        do_sample=False)
    make_dirs(out)
    for entry in out.iterdir():  # what save_pretrained writes lands in `out` itself
        no_link(entry)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def _llama_text(s: TinySize, tokenizer, ids: dict) -> dict:
    return {"model_type": "llama", "vocab_size": len(tokenizer), "hidden_size": s.hidden,
            "intermediate_size": 3 * s.hidden, "num_hidden_layers": s.layers,
            "num_attention_heads": s.heads, "num_key_value_heads": s.heads,
            "max_position_embeddings": 4096, "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"], "pad_token_id": ids["<|endoftext|>"],
            "tie_word_embeddings": True}


def _chat_template(image: str) -> str:
    return CHAT_TEMPLATE.replace("<|vision_start|><|image_pad|><|vision_end|>", image)


def _qwen(s: TinySize, processor_cls) -> tuple:
    """The Qwen-VL family's shared parts: tokenizer, special ids, processor, text config
    (with M-RoPE sections summing to head_dim / 2) and the vision token ids."""
    from transformers import Qwen2VLImageProcessor, Qwen2VLVideoProcessor
    tokenizer = train_tokenizer(corpus(), s.vocab)
    if s.vocab_rows > len(tokenizer):  # a published vocabulary's size: placeholders
        tokenizer.add_tokens([f"<|placeholder_{i}|>"
                              for i in range(s.vocab_rows - len(tokenizer))])
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    # Images up to 8x8 merged tokens (224x224 px) are kept at their size: no resizing of the
    # 28-pixel-aligned figures.
    processor = processor_cls(
        image_processor=Qwen2VLImageProcessor(size={"shortest_edge": 28 * 28,
                                                    "longest_edge": 28 * 28 * 64}),
        tokenizer=tokenizer, video_processor=Qwen2VLVideoProcessor(),
        chat_template=CHAT_TEMPLATE)
    head_dim = s.hidden // s.heads
    t = head_dim // 2 - 2 * (3 * head_dim // 16)
    text = {
        "vocab_size": len(tokenizer), "hidden_size": s.hidden,
        "intermediate_size": s.intermediate or 3 * s.hidden, "num_hidden_layers": s.layers,
        "num_attention_heads": s.heads, "num_key_value_heads": s.kv_heads or s.heads,
        "max_position_embeddings": 4096,
        "rope_parameters": {"rope_type": "default", "rope_theta": s.rope_theta,
                            "mrope_section": [t, 3 * head_dim // 16, 3 * head_dim // 16]},
        "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"], "tie_word_embeddings": True}
    vision_ids = {"image_token_id": ids["<|image_pad|>"],
                  "video_token_id": ids["<|video_pad|>"],
                  "vision_start_token_id": ids["<|vision_start|>"],
                  "vision_end_token_id": ids["<|vision_end|>"]}
    return ids, processor, text, vision_ids


def build_qwen2_vl(out: Path, s: TinySize, seed: int) -> Path:
    """Qwen2-VL, the paper's family."""
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLProcessor
    ids, processor, text, vision_ids = _qwen(s, Qwen2VLProcessor)
    config = Qwen2VLConfig(
        text_config=text,
        vision_config={
            "depth": s.vision_depth, "embed_dim": s.vision_dim, "hidden_size": s.hidden,
            "num_heads": s.vision_heads, "mlp_ratio": 2, "patch_size": 14,
            "spatial_merge_size": 2, "temporal_patch_size": 2, "in_channels": 3},
        tie_word_embeddings=True, **vision_ids)
    return _save(out, Qwen2VLForConditionalGeneration, config, seed, processor, ids, "<|im_end|>",
                 "<|endoftext|>")


def build_qwen2_5_vl(out: Path, s: TinySize, seed: int) -> Path:
    """Qwen2.5-VL: Qwen2-VL's interface with a windowed-attention vision tower."""
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
    )
    ids, processor, text, vision_ids = _qwen(s, Qwen2_5_VLProcessor)
    config = Qwen2_5_VLConfig(
        text_config=text,
        vision_config={
            "depth": s.vision_depth, "hidden_size": s.vision_dim,
            "intermediate_size": s.vision_intermediate or 2 * s.vision_dim,
            "num_heads": s.vision_heads, "out_hidden_size": s.hidden, "patch_size": 14,
            "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": s.window,
            "fullatt_block_indexes": list(s.full_attention) or [s.vision_depth - 1]},
        tie_word_embeddings=True, **vision_ids)
    return _save(out, Qwen2_5_VLForConditionalGeneration, config, seed, processor, ids,
                 "<|im_end|>", "<|endoftext|>")


def build_llava(out: Path, s: TinySize, seed: int) -> Path:
    """LLaVA: a CLIP vision tower (images resized to 112 px, 64 patch tokens), an MLP
    projector and a Llama language model."""
    from transformers import (
        CLIPImageProcessor,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )
    tokenizer = train_tokenizer(corpus(), s.vocab, ("<image>",), image_token="<image>")
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in [*SPECIAL_TOKENS, "<image>"]}
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 112},
                                           crop_size={"height": 112, "width": 112}),
        tokenizer=tokenizer, patch_size=14, vision_feature_select_strategy="default",
        num_additional_image_tokens=1, chat_template=_chat_template("<image>"))
    config = LlavaConfig(
        vision_config={"model_type": "clip_vision_model", "hidden_size": s.vision_dim,
                       "intermediate_size": 2 * s.vision_dim,
                       "num_hidden_layers": s.vision_depth,
                       "num_attention_heads": s.vision_heads, "image_size": 112,
                       "patch_size": 14, "projection_dim": s.vision_dim},
        text_config=_llama_text(s, tokenizer, ids), image_token_id=ids["<image>"],
        vision_feature_select_strategy="default", vision_feature_layer=-1,
        tie_word_embeddings=True)
    return _save(out, LlavaForConditionalGeneration, config, seed, processor, ids, "<|im_end|>",
                 "<|endoftext|>")


def build_idefics3(out: Path, s: TinySize, seed: int) -> Path:
    """Idefics3 (the SmolVLM family): a SigLIP-style tower on 112-px images, pixel shuffle
    (scale 2: 16 tokens an image) and a Llama language model."""
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessor,
        Idefics3Processor,
    )
    extra = ("<image>", "<fake_token_around_image>", "<global-img>", "<end_of_utterance>")
    tokenizer = train_tokenizer(corpus(), s.vocab, extra, image_token="<image>")
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in [*SPECIAL_TOKENS, *extra]}
    processor = Idefics3Processor(
        image_processor=Idefics3ImageProcessor(
            do_image_splitting=False, size={"longest_edge": 112},
            max_image_size={"longest_edge": 112}),
        tokenizer=tokenizer, image_seq_len=16, chat_template=_chat_template("<image>"))
    config = Idefics3Config(
        vision_config={"hidden_size": s.vision_dim, "intermediate_size": 2 * s.vision_dim,
                       "num_hidden_layers": s.vision_depth,
                       "num_attention_heads": s.vision_heads, "image_size": 112,
                       "patch_size": 14},
        text_config=_llama_text(s, tokenizer, ids), scale_factor=2,
        image_token_id=ids["<image>"], tie_word_embeddings=True)
    return _save(out, Idefics3ForConditionalGeneration, config, seed, processor, ids, "<|im_end|>",
                 "<|endoftext|>")


ARCHS = {"qwen2_vl": build_qwen2_vl, "qwen2_5_vl": build_qwen2_5_vl, "llava": build_llava,
         "idefics3": build_idefics3}



TRAINED_STEPS = 300  # SFT steps of `build_trained`: about 40 s on 2 CPU cores at the tiny size


def build_trained(out: str | Path, size: str = "tiny", seed: int = 0, arch: str = "qwen2_vl",
                  steps: int = TRAINED_STEPS) -> tuple[Path, list[dict]]:
    """A tiny checkpoint that answers, at `out`: built as `build` does, then trained with SFT
    on the ID tasks' train split for `steps` steps and scored on 16 validation samples of each
    ID task. Returns the checkpoint and those scores (rows of `dynamics.jsonl`)."""
    from harness.runs.store import move, read_jsonl, remove_tree
    from trainers.config import CheckpointEval, OptimSettings
    from trainers.sft import SFTConfig, train
    from vrbench.errors import VrbenchError
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise VrbenchError(f"{out} exists and is not empty; name a new folder for the trained "
                           "checkpoint.")
    work = out.parent / f".{out.name}.build"
    remove_tree(work, out.parent)  # a kill's leftover
    try:
        base = build(work / "base", size=size, seed=seed, arch=arch)
        final = train(SFTConfig(
            model=str(base), out=str(work / "sft"), name=out.name, tasks="id", steps=steps,
            batch_size=16, seed=seed, optim=OptimSettings(lr=3e-3),
            eval=CheckpointEval(id_tasks="id", ood_tasks="", limit=16, max_new_tokens=48,
                                progress=False)))
        scores = read_jsonl(work / "sft" / "dynamics.jsonl")
        remove_tree(out, out.parent)
        move(final, out, out.parent)
    finally:
        remove_tree(work, out.parent)
    return out, scores

"""How a model answers: length, reflection, format, truncation, repetition, reasoning.

`analyze(text)` looks at one response; `summarize(responses)` summarises a task's responses
with the paper's reflection ratios, length statistics and their correlations, and for
reasoning models (an answer after a `<think>` block) the tokens spent reasoning and
answering, the share cut off inside the reasoning and the tokens per right answer.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness import stats
from harness.scoring.grader import THINK, extract, in_format, split_reasoning
from vrbench.errors import VrbenchError

# The 15 reflection words of the paper, matched case-insensitively.
REFLECTION_WORDS = (
    "re-check", "re-evaluate", "re-examine", "re-think", "recheck", "reevaluate", "reexamine",
    "reevaluation", "rethink", "check again", "think again", "try again", "verify", "wait",
    "yet",
)
REFLECTION_MODES = ("substring", "word")


def reflection_hits(text: str, mode: str = "substring") -> dict[str, int]:
    """Occurrences of each reflection word. "substring" is the paper's matching ("waiting"
    counts as "wait"); "word" matches whole words only."""
    if mode not in REFLECTION_MODES:
        raise ValueError(f"reflection mode must be one of {REFLECTION_MODES}, not {mode!r}")
    low = text.lower()
    if mode == "substring":
        return {w: low.count(w) for w in REFLECTION_WORDS}
    return {w: len(re.findall(rf"(?<![\w-]){re.escape(w)}(?![\w-])", low))
            for w in REFLECTION_WORDS}


def repetition(text: str, n: int = 4) -> float:
    """Share of repeated word n-grams (0: none repeated; near 1: a loop)."""
    words = text.split()
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


@dataclass(frozen=True)
class Reading:
    """How responses are read: reflection words matched as `reflection_mode` says, the
    answer after the reasoning block `tags` delimit, and the model's own token count of a
    text (`count_tokens`, from the backend's tokenizer; None: reasoning tokens not counted
    where a response has both a reasoning block and an answer)."""

    reflection_mode: str = "substring"
    tags: tuple[str, str] = THINK
    count_tokens: Callable[[str], int] | None = None


AS_WRITTEN = Reading()  # the paper's reflection words, <think> blocks, no token counts


def check_tags(tags: Sequence[str], flag: str = "--reasoning-tags") -> tuple[str, str]:
    """The reasoning block's (opening, closing) tags, or one sentence saying why not."""
    if (len(tags) != 2 or not all(t.strip() for t in tags) or tags[0] in tags[1]
            or tags[1] in tags[0]):
        raise VrbenchError(f"{flag} takes two tags, the opening and the closing one, "
                           f"neither empty nor inside the other (as <think> </think>), not "
                           f"{' '.join(map(repr, tags))}.")
    return tags[0], tags[1]


def analyze(text: str, n_tokens: int | None = None, finish_reason: str | None = None,
            reading: Reading = AS_WRITTEN) -> dict:
    """Per-response behaviour. `n_tokens` is the model's own token count of the response."""
    hits = reflection_hits(text, reading.reflection_mode)
    answer, method = extract(text, reading.tags)
    return {
        "n_tokens": n_tokens,
        "n_words": len(text.split()),
        "n_chars": len(text),
        "reflection_hits": {w: c for w, c in hits.items() if c},
        "has_reflection": any(hits.values()),
        "extractable": answer is not None,
        "extraction": method,
        "formatted": in_format(answer, method),
        "truncated": finish_reason == "length",
        "repetition": round(repetition(text), 4),
        **reasoning_tokens(text, n_tokens, reading),
    }


def reasoning_tokens(text: str, n_tokens: int | None, reading: Reading) -> dict:
    """Where a response spends its tokens: `reasoning` is none (no block), closed or
    unclosed (it ends inside the block); `reasoning_tokens` (the block, tags included, by
    the model's tokenizer) and `answer_tokens` (the rest, end of sequence included) add up
    to `n_tokens`; None where it cannot be told."""
    block, after = split_reasoning(text, reading.tags)
    state = "none" if not block else ("unclosed" if after is None else "closed")
    if n_tokens is None:
        spent = None
    elif state != "closed":
        spent = n_tokens if state == "unclosed" else 0
    else:
        spent = None if reading.count_tokens is None else min(n_tokens,
                                                               reading.count_tokens(block))
    return {"reasoning": state, "reasoning_tokens": spent,
            "answer_tokens": None if spent is None else n_tokens - spent}


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def reflection_ratios(reflective: Sequence[bool], correct: Sequence[bool]) -> dict:
    """The paper's five ratios over N responses (None where a denominator is zero)."""
    n = len(reflective)
    n_ref = sum(reflective)
    n_pos = sum(correct)
    n_ref_pos = sum(r and c for r, c in zip(reflective, correct, strict=True))
    return {
        "reflection_ratio": _ratio(n_ref, n),
        "reflection_ratio_in_correct_answers": _ratio(n_ref_pos, n_pos),
        "reflection_ratio_in_incorrect_answers": _ratio(n_ref - n_ref_pos, n - n_pos),
        "correct_ratio_in_reflection_texts": _ratio(n_ref_pos, n_ref),
        "correct_ratio_in_no_reflection_texts": _ratio(n_pos - n_ref_pos, n - n_ref),
    }


def summarize(responses: Sequence[dict]) -> dict:
    """Behaviour of one task's responses: length, truncation, format, repetition, the
    reflection ratios and per-word frequencies, and how length correlates (Spearman) with
    reflection and with correctness. Each response dict has `correct` and `analyze`'s fields;
    lengths are in the model's tokens."""
    if not responses:
        return {"n_responses": 0}
    correct = [bool(r["correct"]) for r in responses]
    reflective = [bool(r["has_reflection"]) for r in responses]
    lengths = [r["n_tokens"] if r.get("n_tokens") is not None else r["n_words"]
               for r in responses]
    words: Counter = Counter()
    for r in responses:
        words.update(r["reflection_hits"].keys())
    n = len(responses)
    return {
        "n_responses": n,
        "response_acc": sum(correct) / n,
        "length_mean": sum(lengths) / n,
        "length_median": stats.median(lengths),
        "length_max": max(lengths),
        "length_clip_ratio": sum(bool(r["truncated"]) for r in responses) / n,
        "extractable_ratio": sum(bool(r["extractable"]) for r in responses) / n,
        "format_ratio": sum(bool(r["formatted"]) for r in responses) / n,
        "repetition_mean": sum(r["repetition"] for r in responses) / n,
        **reflection_ratios(reflective, correct),
        "reflection_word_freq": {w: words[w] / n for w in REFLECTION_WORDS if words[w]},
        "corr_length_reflection": _nan_to_none(stats.spearman(lengths, reflective)),
        "corr_length_correct": _nan_to_none(stats.spearman(lengths, correct)),
        **_reasoning_summary(responses, lengths, sum(correct)),
    }


def _reasoning_summary(responses: Sequence[dict], lengths: list[int], n_correct: int) -> dict:
    """The share of responses with a reasoning block, the share cut off (at the token limit)
    inside it, the mean tokens spent reasoning and answering (over the responses where they
    are known), and the tokens spent per right answer (all responses' tokens over the right
    ones; None with none right). Records analysed before these fields count as no block."""
    n = len(responses)
    state = [r.get("reasoning", "none") for r in responses]
    spent = [(r["reasoning_tokens"], r["answer_tokens"]) for r in responses
             if r.get("reasoning_tokens") is not None]
    return {
        "reasoning_block_ratio": sum(s != "none" for s in state) / n,
        "cut_in_reasoning_ratio": sum(s == "unclosed" and bool(r["truncated"])
                                      for s, r in zip(state, responses, strict=True)) / n,
        "reasoning_tokens_mean": sum(a for a, _ in spent) / len(spent) if spent else None,
        "answer_tokens_mean": sum(b for _, b in spent) / len(spent) if spent else None,
        "tokens_per_correct": sum(lengths) / n_correct if n_correct else None,
    }


def _nan_to_none(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) else x

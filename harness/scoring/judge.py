"""An optional LLM judge, for users who want the peers' GPT-judge scores next to the
rule-based ones. Off by default; any OpenAI-compatible endpoint serves.

The judge sees the question, the reference answer and one response, and answers
"correct" or "incorrect". Its verdicts are stored beside the rule-based ones in every
sample (`judge_correct`), the results carry `judge_acc` and the two scorers' agreement
(share of responses on which they agree, and Cohen's kappa), and the judge's model, endpoint
and prompt are part of the run's configuration: a different judge is a different run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from harness.backends import GenerationConfig, Request

PROMPT = """You are grading a student's answer to a math problem.

Question:
{question}

Reference answer: {target}

Student's response:
{response}

Is the student's final answer equivalent to the reference answer?
Reply with exactly one word: correct or incorrect."""


@dataclass(frozen=True)
class JudgeSpec:
    model: str
    base_url: str

    def to_dict(self) -> dict:
        return {"model": self.model, "base_url": self.base_url,
                "prompt_sha256": hashlib.sha256(PROMPT.encode()).hexdigest()}


class Judge:
    def __init__(self, spec: JudgeSpec, concurrency: int = 8):
        from harness.backends.openai_compat import OpenAIBackend
        self.spec = spec
        self.backend = OpenAIBackend(spec.model, base_url=spec.base_url,
                                     concurrency=concurrency)

    def verdicts(self, question: str, target: str, responses: list[str]) -> list[bool]:
        reqs = [Request(PROMPT.format(question=question, target=target, response=r))
                for r in responses]
        outs = self.backend.generate(reqs, GenerationConfig(max_new_tokens=8))
        return [o[0].text.strip().lower().startswith("correct") for o in outs]

"""How vrbench's grader agrees with the official verdicts on real model responses.

Reads ../shared/real-benchmarks (MathVista: 6 models x 200 responses with the official
GPT-4 extraction and verdict; MATH-V: 6 models x 200 with its rule-based verdict), grades
every response with `harness.scoring.grade`, and sorts each disagreement into a class:
classes where the official verdict can be shown wrong by a rule anyone can check (an empty
response marked right, a refusal snapped to an option, ...) are set aside, and the
agreement is reported before and after. Also: the slowest grade (after math-verify's first
import) and the disagreements left, with examples of each class.

    python bench/agreement.py [--examples 2]
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import Counter, defaultdict
from pathlib import Path

from harness.scoring.grader import _PHRASE, _REFUSAL, extract, grade, to_letter
from tasks.answers import LETTERS

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "real-benchmarks"

# Classes in which the official verdict is wrong, by a rule on the response alone.
OFFICIAL_WRONG = {
    "empty response marked right": "the response is empty, the official verdict says right",
    "refusal snapped to an option": "the response declines to answer; the official scorer "
                                    "mapped its refusal to the nearest option by edit distance",
    "non-answer snapped to an option": "the official extraction names no option (a number "
                                       "or text that is none of them); MathVista's scorer "
                                       "mapped it to the nearest option by edit distance",
    "made-up options snapped": "the response lists options under letters the question does "
                               "not have; the official scorer took one of them",
    "prompt echoed, marked right": "the response repeats the prompt and gives no answer",
    "answer to a made-up question": "the response answers, then poses a new 'Question:' of "
                                    "its own and answers that; the official extraction read "
                                    "the later answer",
    "option letter in LaTeX missed": "the boxed answer is the right option letter written as "
                                     "\\text{(B)} or \\textbf{(B)}; MATH-V's string match "
                                     "misses it",
    "right value in another form": "the boxed value equals the right option's value (units or "
                                   "$...$ aside); MATH-V's string match misses it",
}


def _items(name: str):
    for line in (REAL / name).read_text().splitlines():
        r = json.loads(line)
        if r["source"] == "mathvista":
            choices = r["choices"] or []
            mc = r["question_type"] == "multi_choice"
            target = LETTERS[choices.index(r["answer"])] if mc else r["answer"]
            yield r, target, choices if mc else None, (
                int(r["precision"]) if r["answer_type"] == "float" else None)
        else:
            yield r, r["answer"], r["options"] or None, None


def classify(r: dict, target: str, choices, ours: bool) -> str:
    """Why vrbench and the official verdict differ on this response."""
    text = r["response"]
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if ours is False and r["official_correct"]:
        if not text.strip():
            return "empty response marked right"
        labels = [m.group(1) for ln in lines if (m := re.match(r"\(([A-Z]{1,2})\)\s", ln))]
        if choices and len(labels) >= 2 and re.match(r"\(", lines[-1]) and any(
                x not in LETTERS[:len(choices)] for x in labels):
            return "made-up options snapped"
        if "Question:" in text and "Choices:" in text and "answer the question" in text:
            return "prompt echoed, marked right"
        if _REFUSAL.search(" ".join(lines[-2:])) and extract(text)[1] in (
                "last_line", "none"):
            return "refusal snapped to an option"
        x = str(r["official_extraction"]).strip()
        if choices and r["source"] == "mathvista" and not (
                x.strip("()").upper() in LETTERS[:len(choices)] or x in choices
                or re.search(r"\([A-Za-z]\)", x)):
            return "non-answer snapped to an option"
        return "other (vrbench wrong)"
    answer, method = extract(text)
    phrases = list(_PHRASE.finditer(text))
    if phrases and re.search(r"\n\s*Question:", text[phrases[-1].end():]):
        return "answer to a made-up question"
    if r["source"] == "mathvision" and method in ("boxed", "answer_phrase"):
        if re.search(r"\\text(?:bf)?\s*\{\s*\(?[A-E]\)?", answer or ""):
            return "option letter in LaTeX missed"
        if not choices or to_letter(answer or "", choices) == target:
            return "right value in another form"
    return "other (vrbench right)"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=2, help="examples printed per class")
    args = ap.parse_args()
    grade("warm up math-verify: \\boxed{x+1}", "1+x")
    for name in ("responses_mathvista.jsonl", "responses_mathvision.jsonl"):
        n = agree = 0
        slowest, classes, examples = (0.0, ""), Counter(), defaultdict(list)
        false_right = []
        for r, target, choices, precision in _items(name):
            t0 = time.perf_counter()
            g = grade(r["response"], target, choices, precision)
            dt = time.perf_counter() - t0
            slowest = max(slowest, (dt, f"{r['model']} {r.get('pid') or r.get('id')}"))
            n += 1
            if g.correct == r["official_correct"]:
                agree += 1
                continue
            c = classify(r, target, choices, g.correct)
            classes[c] += 1
            examples[c].append((r, g))
            if g.correct and c == "other (vrbench right)":
                false_right.append((r, g))
        aside = sum(v for k, v in classes.items() if k in OFFICIAL_WRONG)
        print(f"\n## {name}: {n} responses")
        print(f"agreement with the official verdicts: raw {100 * agree / n:.1f}% ({agree}/{n});"
              f" setting aside {aside} official verdicts shown wrong: "
              f"{100 * agree / (n - aside):.1f}% ({agree}/{n - aside})")
        print(f"slowest grade: {1000 * slowest[0]:.0f} ms ({slowest[1]})")
        for c, k in classes.most_common():
            print(f"- {c}: {k}" + (f" ({OFFICIAL_WRONG[c]})" if c in OFFICIAL_WRONG else ""))
            for r, g in examples[c][:args.examples]:
                print(f"    {r['model']} {r.get('pid') or r.get('id')}: vrbench read "
                      f"{g.extracted!r:.60} ({g.method}), official {r['official_extraction']!r:.40}"
                      f" -> {r['official_correct']}; response ends {r['response'][-90:]!r}")
        print(f"vrbench 'correct' where the official says wrong, unexplained: {len(false_right)}")


if __name__ == "__main__":
    main()

"""We-Math (We-Math/We-Math): testmini's 1740 questions with the official prompt and answer
template; accuracy by step count and knowledge concept, and the four-way diagnosis."""

from __future__ import annotations

from pathlib import Path

from tasks.benchmarks.base import IMAGE, Benchmark, N, S, first_image, split_options

COLUMNS = {"ID": S, "split": S, "knowledge concept": S, "question": S, "option": S,
           "answer": S, "image_path": (IMAGE, str), "key": S,
           "question number": (int,), "knowledge concept description": N}


PROMPT = (
    "Now, we require you to solve a multiple-choice math question.\n"
    "Please briefly describe your thought process and provide the final answer(option).\n"
    "Question: {question}\nOption: {option}\n"
    "Regarding the format, please answer following the template below, and be sure to "
    "include two <> symbols:\n<Thought process>:<<your thought process>>\n"
    "<Answer>:<<your option>>.")


def convert(row: dict, root: Path) -> dict:
    key = str(row["key"])
    return {
        "id": f"wemath-{row['ID']}-{key}",
        "question": PROMPT.format(question=row["question"], option=row["option"]),
        "images": first_image(row, root, "image_path", "image"),
        "target": str(row["answer"]).strip(), "choices": split_options(str(row["option"])),
        "meta": {"group": {"problem": str(row["ID"]), "key": key},
                 "categories": {"steps": key.split("_")[0],
                                "knowledge concept": row.get("knowledge concept")}}}


def wemath_diagnosis(scored: list[tuple[dict | None, float]]) -> dict:
    """We-Math's four-way diagnosis of each multi-step problem from its one-step parts
    (key `Nsteps_i`) and the whole (`Nsteps_multi`), as the benchmark's own evaluation
    counts them: insufficient knowledge (IK: a part wrong, the whole wrong), inadequate
    generalisation (IG: every part right, the whole wrong), complete mastery (CM strict:
    every part right and the whole; loose: any part right and the whole) and rote
    memorisation (RM strict: a part wrong, the whole right; loose: every part wrong, the
    whole right). Score = (N - 0.5 IG - RM - IK) / N over the N multi-step problems (the
    official script fixes N = 525, testmini's count)."""
    problems: dict[tuple, dict[str, bool]] = {}
    for g, acc in scored:
        steps, _, part = (g or {}).get("key", "").partition("_")
        if steps in ("2steps", "3steps"):
            problems.setdefault((steps, g["problem"]), {})[part] = acc == 1.0
    counts = dict.fromkeys(("IK", "IG", "CM_strict", "CM_loose", "RM_strict", "RM_loose"), 0)
    n = 0
    for (steps, _), answers in problems.items():
        k = int(steps[0])
        parts = [answers.get(str(i)) for i in range(1, k + 1)]
        if "multi" not in answers or None in parts:
            continue  # an incomplete problem is not diagnosed
        n += 1
        whole = answers["multi"]
        counts["IG"] += all(parts) and not whole
        counts["IK"] += (not all(parts)) and not whole
        counts["CM_strict"] += all(parts) and whole
        counts["CM_loose"] += any(parts) and whole
        counts["RM_strict"] += (not all(parts)) and whole
        counts["RM_loose"] += (not any(parts)) and whole
    out: dict = {"n_problems": n, **counts}
    if n:
        for mode in ("strict", "loose"):
            out[f"score_{mode}"] = (n - 0.5 * counts["IG"] - counts[f"RM_{mode}"]
                                    - counts["IK"]) / n
            done = counts[f"CM_{mode}"] + counts[f"RM_{mode}"]
            out[f"rm_rate_{mode}"] = counts[f"RM_{mode}"] / done if done else None
    return out


BENCHMARKS = (
    Benchmark("wemath_testmini", "We-Math/We-Math", "testmini", "ood", "multiple_choice",
              convert, "We-Math testmini (1740): the official prompt and answer template "
              "(<Answer>: <<B>>); accuracy by step count and knowledge concept, and the "
              "four-way diagnosis (IK, IG, CM, RM; strict and loose scores)",
              COLUMNS, summarize=lambda scored, _interval: {"diagnosis": wemath_diagnosis(scored)}),
)

"""Metrics of scored samples: per task (accuracy with its interval, the analyzers' behaviour
statistics, per-category accuracy, the judge's agreement) and per domain (macro averages).

Every summary of results (a run's `results.json`, the leaderboard, the quickstart table, the
analysis report) is computed here, once.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from harness import analyzers, stats
from harness.runs.rundir import SampleRecord
from harness.scoring import official
from tasks import DOMAINS, REASONING6


@dataclass(frozen=True)
class Metric:
    """A per-task metric followed over training: a new one added to `TRACKED` appears in
    every checkpoint's `dynamics.jsonl` row, and, with `column` or `plotted`, in the
    leaderboard and the training-dynamics figure."""

    key: str  # its name in a task's results (`summarize_task`)
    label: str  # on figures
    ratio: bool  # a share in [0, 1] (intervals are clipped to it, axes drawn on it)
    column: str | None = None  # the leaderboard column of its mean over tasks (None: none)
    plotted: bool = False  # a panel of the training-dynamics figure


TRACKED = (
    Metric("acc", "accuracy", ratio=True, plotted=True),
    Metric("length_mean", "mean response length (tokens)", ratio=False, column="length",
           plotted=True),
    Metric("length_median", "median response length (tokens)", ratio=False),
    Metric("length_clip_ratio", "responses cut at the token limit", ratio=True),
    Metric("format_ratio", "answers in the asked format", ratio=True),
    Metric("extractable_ratio", "responses with an answer to read", ratio=True),
    Metric("repetition_mean", "repeated 4-grams", ratio=True),
    Metric("reflection_ratio", "reflection ratio", ratio=True, column="reflection",
           plotted=True),
    Metric("reflection_ratio_in_correct_answers", "reflection in correct answers", ratio=True),
    Metric("reflection_ratio_in_incorrect_answers", "reflection in wrong answers", ratio=True),
    Metric("correct_ratio_in_reflection_texts", "accuracy of reflective answers", ratio=True),
    Metric("correct_ratio_in_no_reflection_texts", "accuracy of other answers", ratio=True),
    Metric("corr_length_reflection", "Spearman(length, reflection)", ratio=False),
)


def summarize_task(records: list[SampleRecord], n: int, ks: tuple[int, ...] = ()) -> dict:
    """Accuracy with its interval, plus the analyzers' behaviour statistics, for one task;
    with n responses per sample, pass@k and maj@k for each k of `ks` (default: n, when above
    1). Errored samples count as wrong (they are in the denominator) and are counted."""
    ok = [r for r in records if r.error is None]
    per_sample = [r.acc for r in records]
    out: dict = {"n_samples": len(records), "n_errors": len(records) - len(ok),
                 # of the errors, samples whose grading raised (a grader bug, not an answer)
                 "n_grade_errors": sum(r.grading_error for r in records)}
    out |= accuracy(records, per_sample)
    targets = Counter(r.target for r in records)
    # the accuracy of always giving the most common answer: what "above chance" means
    out["majority_baseline"] = max(targets.values()) / len(records) if records else None
    for k in ks or ((n,) if n > 1 else ()):
        out |= at_k(records, k)
    responses = [a | {"correct": c} for r in ok for a, c in zip(r.analysis, r.correct,
                                                                 strict=True)]
    out |= analyzers.summarize(responses)
    if any(r.categories for r in records):
        out["by_category"] = by_category(records)
    if any(r.scorer for r in records):
        out |= official_reading(ok)
    for who, key in (("judge", "judge_correct"), ("other", "other_correct")):
        # an LLM judge's verdicts, or another harness's (vrbench rescore), beside ours
        seen = [r for r in ok if getattr(r, key) is not None]
        if seen:
            verdicts = [bool(v) for r in seen for v in getattr(r, key)]
            out[f"{who}_acc"] = sum(verdicts) / len(verdicts)
            out[f"{who}_agreement"], out[f"{who}_kappa"] = stats.agreement(
                [c for r in seen for c in r.correct], verdicts)
    return out


def problem_of(r: SampleRecord) -> str:
    """The problem a sample shares with others (its group's "problem": a DynaMath seed, a
    MathVerse problem, a We-Math problem), else the sample itself."""
    g = r.group if isinstance(r.group, dict) else {}
    return str(g["problem"]) if g.get("problem") is not None else f"sample:{r.doc_id}"


def accuracy(records: list[SampleRecord], per_sample: list[float]) -> dict:
    """A task's accuracy with its interval: clustered by problem where samples share one
    (the naive interval kept beside, as `acc_ci95_naive`), else Wilson (or normal over
    prompts with several responses each)."""
    naive = stats.accuracy_summary(per_sample)
    problems = [problem_of(r) for r in records]
    if not records or len(set(problems)) == len(problems):
        return naive
    return stats.clustered_summary(per_sample, problems) | {
        "acc_stderr_naive": naive["acc_stderr"], "acc_ci95_naive": naive["acc_ci95"]}


def official_reading(ok: list[SampleRecord]) -> dict:
    """Where a benchmark has its own matching: the share of responses it read, the accuracy
    among those, and among the rest, which vrbench's grader read instead (the official
    scorers ask an LLM there)."""
    verdicts = [(c, rule.startswith(official.FALLBACK)) for r in ok
                for c, rule in zip(r.correct, r.graded_by or [], strict=True)]
    read = [c for c, fell in verdicts if not fell]
    rest = [c for c, fell in verdicts if fell]
    return {"official_read_ratio": len(read) / len(verdicts) if verdicts else None,
            "acc_official_read": sum(read) / len(read) if read else None,
            "acc_fallback": sum(rest) / len(rest) if rest else None}


def at_k(records: list[SampleRecord], k: int) -> dict:
    """pass@k (unbiased) and maj@k (majority vote over the answers read) of a task: each
    sample's exact expectation over the k-subsets of its responses, averaged over samples,
    with the interval of that mean. An errored sample scores 0 on both."""
    passes, majs = [], []
    for r in records:
        if r.error is not None:
            passes.append(0.0)
            majs.append(0.0)
            continue
        correct, answers = r.correct, r.filtered_resps
        wrong = Counter(str(a).strip() for a, c in zip(answers, correct, strict=True)
                        if not c and a is not None and str(a).strip())
        passes.append(stats.pass_at_k(len(correct), sum(correct), k))
        majs.append(stats.maj_at_k(sum(correct), list(wrong.values()),
                                   len(correct) - sum(correct) - sum(wrong.values()), k))
    out = {}
    for name, values in ((f"pass@{k}", passes), (f"maj@{k}", majs)):
        s = stats.accuracy_summary(values)
        out |= {name: s["acc"], f"{name}_stderr": s["acc_stderr"], f"{name}_ci95": s["acc_ci95"]}
    return out


def by_category(records: list[SampleRecord]) -> dict:
    """Accuracy per value of each category key (MathVerse versions, MathVista skills...);
    a list value (a sample with several skills) counts the sample under each."""
    acc: dict[str, dict[str, list[float]]] = {}
    for r in records:
        for key, value in (r.categories or {}).items():
            for v in value if isinstance(value, list) else [value]:
                if v is not None and v != "":
                    acc.setdefault(key, {}).setdefault(str(v), []).append(r.acc)
    return {k: {v: {"n": len(xs), "acc": sum(xs) / len(xs)} for v, xs in sorted(vals.items())}
            for k, vals in sorted(acc.items())}


def summarize_groups(results: dict, task_domains: dict[str, str]) -> dict:
    """Macro average of task accuracy per domain (`macro_average`)."""
    groups = {}
    for dom in DOMAINS:
        names = [t for t, d in task_domains.items() if d == dom and results[t]["acc"] is not None]
        if names:
            groups[dom] = macro_average({t: results[t] for t in names})
    return groups


def suite_averages(results: dict) -> dict:
    """The six reasoning benchmarks' average where a run scored all six ("reasoning6")."""
    if all(results.get(t, {}).get("acc") is not None for t in REASONING6):
        return {"reasoning6": macro_average({t: results[t] for t in REASONING6})}
    return {}


def macro_average(results: dict[str, dict]) -> dict:
    """The mean of these tasks' accuracies, with a 95% interval from their variances
    (`task_variance`: Agresti-Coull's, an upper bound for scores in [0, 1] and never
    zero-width, or the clustered one), and their mean response length."""
    names = list(results)
    mean = sum(results[t]["acc"] for t in names) / len(names)
    se = sum(task_variance(results[t]) for t in names) ** 0.5 / len(names)
    lengths = [results[t]["length_mean"] for t in names if "length_mean" in results[t]]
    return {"tasks": names, "acc": mean, "acc_stderr": se,
            "acc_ci95": [max(0.0, mean - stats.Z95 * se), min(1.0, mean + stats.Z95 * se)],
            "length_mean": sum(lengths) / len(lengths) if lengths else None}


def task_variance(r: dict) -> float:
    """A task accuracy's variance in a domain's average: Agresti-Coull's, or the clustered
    one where the task's samples share problems and it is the larger."""
    var = stats.agresti_coull_var(r["acc"], r["n_samples"])
    if r.get("acc_ci95_kind") == "clustered by problem" and r.get("acc_stderr"):
        var = max(var, r["acc_stderr"] ** 2)
    return var

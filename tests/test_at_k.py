"""pass@k and maj@k: the exact estimators against brute-force enumeration of k-subsets."""

import itertools
import random
from collections import Counter
from fractions import Fraction

import pytest

from harness import stats
from harness.analyzers import analyze
from harness.runs.config import EvalConfig
from harness.runs.metrics import summarize_task
from harness.runs.rundir import SampleRecord
from vrbench.errors import VrbenchError


def _brute_pass(correct: list[bool], k: int) -> Fraction:
    subsets = list(itertools.combinations(correct, k))
    return Fraction(sum(any(s) for s in subsets), len(subsets))


def _brute_maj(answers: list[str | None], correct: list[bool], k: int) -> Fraction:
    """Every k-subset voted on; correct answers are one vote (the target), a tie broken at
    random (the correct answer wins 1/#tied), no vote read: abstain."""
    total = Fraction(0)
    subsets = list(itertools.combinations(range(len(answers)), k))
    for idx in subsets:
        votes = Counter("=target" if correct[i] else answers[i] for i in idx
                        if correct[i] or answers[i] is not None)
        if not votes or "=target" not in votes:
            continue
        top = max(votes.values())
        if votes["=target"] == top:
            total += Fraction(1, sum(v == top for v in votes.values()))
    return total / len(subsets)


def _case(rng: random.Random, n: int):
    answers, correct = [], []
    for _ in range(n):
        kind = rng.random()
        correct.append(kind < 0.35)
        answers.append("7" if kind < 0.35 else None if kind < 0.5 else rng.choice("1234"))
    return answers, correct


@pytest.mark.parametrize("seed", range(40))
def test_pass_and_maj_at_k_equal_brute_force(seed):
    rng = random.Random(seed)
    n = rng.randint(1, 9)
    answers, correct = _case(rng, n)
    wrong = Counter(a for a, c in zip(answers, correct, strict=True) if not c and a is not None)
    n_abstain = sum(a is None and not c for a, c in zip(answers, correct, strict=True))
    for k in range(1, n + 1):
        assert stats.pass_at_k(n, sum(correct), k) == pytest.approx(
            float(_brute_pass(correct, k)), abs=1e-12)
        assert stats.maj_at_k(sum(correct), list(wrong.values()), n_abstain, k) == pytest.approx(
            float(_brute_maj(answers, correct, k)), abs=1e-12)


def test_known_values():
    assert stats.pass_at_k(4, 1, 1) == 0.25 and stats.pass_at_k(4, 1, 4) == 1.0
    assert stats.pass_at_k(4, 0, 2) == 0.0
    # 2 correct, 2 of one wrong answer, k=4: a tie, won half the time
    assert stats.maj_at_k(2, [2], 0, 4) == 0.5
    # 2 correct against 1 + 1 of two wrong answers: always wins
    assert stats.maj_at_k(2, [1, 1], 0, 4) == 1.0
    with pytest.raises(ValueError):
        stats.pass_at_k(3, 1, 4)


def test_a_task_reports_each_k_with_an_interval():
    rng = random.Random(3)
    records = []
    for i in range(30):
        answers, correct = _case(rng, 8)
        records.append(SampleRecord("t", str(i), "7", correct=correct, filtered_resps=answers,
                                    analysis=[analyze(f"The answer is {a}.") for a in answers]))
    records.append(SampleRecord("t", "x", "7", error="bad image"))
    out = summarize_task(records, 8, (1, 4, 8))
    for k in (1, 4, 8):
        want = [float(_brute_pass(r.correct, k)) if r.error is None else 0.0
                for r in records]
        assert out[f"pass@{k}"] == pytest.approx(sum(want) / len(want))
        lo, hi = out[f"maj@{k}_ci95"]
        assert lo <= out[f"maj@{k}"] <= hi
    # pass@1 is the mean accuracy; pass@k grows with k
    assert out["pass@1"] == pytest.approx(out["acc"])
    assert out["pass@1"] < out["pass@4"] < out["pass@8"]
    assert summarize_task(records, 8).keys() >= {"pass@8", "maj@8", "pass@8_ci95"}


def test_a_k_above_the_responses_is_refused():
    with pytest.raises(VrbenchError, match="--pass-k 16"):
        EvalConfig(samples=8, temperature=1.0, pass_k=(1, 16)).generation()


def test_an_evaluation_reports_the_ks_asked_for(tmp_path, tiny_model, capsys):
    from vrbench.cli import main
    assert main(["eval", "--model", tiny_model, "--tasks", "count_shapes", "--limit", "4",
                 "--samples", "4", "--temperature", "1", "--pass-k", "1", "2", "4",
                 "--max-new-tokens", "8", "--output", str(tmp_path / "run"),
                 "--no-progress"]) == 0
    import json
    r = json.loads((tmp_path / "run" / "results.json").read_text())["results"]["count_shapes"]
    assert {"pass@1", "pass@2", "pass@4", "maj@1", "maj@2", "maj@4"} <= r.keys()
    assert r["pass@1"] == pytest.approx(r["acc"])
    assert r["pass@1"] <= r["pass@2"] <= r["pass@4"]

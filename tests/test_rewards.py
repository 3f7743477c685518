"""The light reward module, called exactly as verl, EasyR1 and TRL call a reward function."""

import importlib.util
import json
import pickle
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
import pytest

import harness.scoring.rewards as rewards
from vrbench.cli import main

PATH = Path(rewards.__file__)
RIGHT = "Counting the squares gives 4, so the answer is \\boxed{4}."
WRONG = "The answer is \\boxed{5}."
MC = "Comparing the bars, the tallest is the second one. Answer: (B)"


def _load_fresh(name: str):
    """As verl loads `custom_reward_function.path`: by file path, never put in sys.modules."""
    spec = importlib.util.spec_from_file_location(name, PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_module_imports_only_the_grader():
    # a reward worker loads it at once: nothing of torch, transformers, datasets, sympy
    code = ("import sys; import harness.scoring.rewards; print(sorted(m for m in ('torch', "
            "'transformers', 'datasets', 'sympy', 'math_verify') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_vrbench_rewards_prints_the_path(capsys):
    assert main(["rewards", "--path"]) == 0
    assert Path(capsys.readouterr().out.strip()) == PATH


def test_verl_single_calls_by_keyword_and_positionally_with_extra_keywords():
    fn = _load_fresh("custom_module").compute_score
    assert fn(data_source="vrbench", solution_str=RIGHT, ground_truth="4", extra_info={}) == 1.0
    assert fn(data_source="vrbench", solution_str=WRONG, ground_truth="4") == 0.0
    # the reward loop with a reward model adds its router's keywords; reward_kwargs any others
    assert fn(data_source="x", solution_str=RIGHT, ground_truth="4", extra_info=None,
              reward_router_address="127.0.0.1:1", reward_model_tokenizer=object(),
              my_weight=0.5) == 1.0
    assert fn("x", RIGHT, "4", {"index": 3}) == 1.0  # the prime manager: positional
    assert fn("x", MC, "B", {"choices": np.array(["3", "4", "5"]), "precision": None}) == 1.0


def test_verl_batch_manager_shape():
    fn = _load_fresh("another_name").compute_score
    out = fn(data_sources=["a", "b", "c"], solution_strs=[RIGHT, WRONG, MC],
             ground_truths=["4", "4", json.dumps({"target": "B", "choices": ["3", "4"]})],
             extra_infos=[None, {}, {}], my_kwarg=1)
    assert out == [1.0, 0.0, 1.0]


@pytest.mark.parametrize("truth,extra,want", [
    (["3", "4"], None, 1.0),  # a list: any of them
    (np.array(["7", "4"]), None, 1.0),  # a parquet list column
    (4, None, 1.0),  # a number
    (np.int64(4), None, 1.0),
    ({"target": "4"}, None, 1.0),
    ('{"target": "4", "precision": null}', None, 1.0),
    ("3.14", {"precision": float("nan")}, 0.0),  # NaN precision: no rounding; 4 is wrong
    ("3.1", {"precision": 1.0}, 0.0),
])
def test_ground_truth_in_every_form(truth, extra, want):
    assert rewards.compute_score("x", RIGHT, truth, extra) == want


def test_a_pandas_precision_rounds_as_an_integer():
    text = "So the area is about \\boxed{3.14}."
    assert rewards.compute_score("x", text, "3.1", {"precision": 1.0}) == 1.0
    assert rewards.compute_score("x", text, "3.1", {"precision": float("nan")}) == 0.0


def test_prime_pickles_the_function_loaded_from_a_file_into_a_process_pool():
    fn = _load_fresh("custom_module_for_prime").compute_score
    assert "custom_module_for_prime" not in sys.modules
    with ProcessPoolExecutor(2) as pool:
        scores = list(pool.map(fn, ["x", "x"], [RIGHT, WRONG], ["4", "4"], [None, None]))
    assert scores == [1.0, 0.0]
    assert pickle.loads(pickle.dumps(fn))("x", RIGHT, "4") == 1.0


def test_easyr1_loader_batch_and_sequential():
    # EasyR1: the file loaded as `custom_reward_fn`, kwargs bound with partial, batch unless
    # the module says REWARD_TYPE = "sequential"
    spec = importlib.util.spec_from_file_location("custom_reward_fn", PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["custom_reward_fn"] = module
    try:
        spec.loader.exec_module(module)
        assert getattr(module, "REWARD_TYPE", "batch") == "batch"
        fn = partial(module.compute_score, **{"format_weight": 0.1})
        inputs = [{"response": r, "response_length": 20, "ground_truth": g}
                  for r, g in ((RIGHT, "4"), (WRONG, "4"), (MC, json.dumps(
                      {"target": "B", "choices": ["3", "4", "5"]})))]
        out = fn(inputs)
        assert [o["overall"] for o in out] == [1.0, 0.0, 1.0]
        assert [o["format"] for o in out] == [1.0, 1.0, 0.0]
        assert all(set(o) == {"overall", "accuracy", "format"} for o in out)
        assert fn(inputs[0])["overall"] == 1.0  # a sequential call
    finally:
        del sys.modules["custom_reward_fn"]


def test_a_symbolic_check_from_a_worker_thread_is_bounded(monkeypatch):
    from harness.scoring import grader
    got = []
    t = threading.Thread(target=lambda: got.append(rewards.compute_score(
        data_source="x", solution_str="so \\boxed{\\frac{1}{2}x^2}", ground_truth="x^2/2")))
    t.start()
    t.join(120)
    assert got == [1.0]  # checked by a helper process, in its main thread
    assert grader._HELPER  # the helpers ran it
    # threads that check slow pairs at once do not wait on each other: each is ended by
    # its own response's budget, in parallel
    slow = []
    threads = [threading.Thread(target=lambda: slow.append(grader.judge_equivalent(
        "10^{9}!", "5"))) for _ in range(grader.HELPER_PROCESSES)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert slow == [(False, "math_verify_timeout")] * len(threads)
    assert time.monotonic() - t0 < 1.9 * grader.GRADE_SECONDS
    # a helper that does not answer in time (here: a new one, still starting) is ended, and
    # the pair is a time-out
    monkeypatch.setattr(grader, "HELPER_SECONDS", 0.02 - grader.GRADE_SECONDS)
    monkeypatch.setattr(grader, "_HELPER", [])
    out = []
    t = threading.Thread(target=lambda: out.append(grader.judge_equivalent("x^2/2",
                                                                           "\\frac{x^2}{2}")))
    t.start()
    t.join(60)
    assert out == [(False, "math_verify_timeout")] and grader._HELPER == []

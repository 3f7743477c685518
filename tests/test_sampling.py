"""One sampler: the distribution a token is drawn from (`harness.backends.sampling.Sampler`:
suppressed tokens, the repetition penalty, temperature, top-k, top-p) is what both decoding
paths draw from. Thousands of first tokens of one prompt, drawn through the continuous
decoder and through static `generate`, are checked against it with a chi-square test; the
same draws reject the distribution with any one of its parts left out, so the test would
see a path that drifted."""

import collections
from dataclasses import replace

import pytest
import torch
from scipy import stats

import tasks
from harness.backends import GenerationConfig, Request
from harness.backends.chat import chat_text
from harness.backends.hf import HFBackend
from harness.backends.sampling import Sampler
from tasks import decode_images

N = 4000  # first tokens drawn through each path
CONFIG = GenerationConfig(max_new_tokens=1, temperature=0.3, top_k=40, top_p=0.9,
                          repetition_penalty=1.3, n=500)


@pytest.fixture(scope="module")
def setting(tiny_model):
    engine = HFBackend(tiny_model)
    t = tasks.load("count_shapes")
    s = t.samples("test", 1)[0]
    req = Request(t.prompt(s), decode_images(s))
    enc = engine.processor(text=[chat_text(engine.processor, req.prompt, 1)],
                           images=req.images, return_tensors="pt")
    with torch.no_grad():
        logits = engine.model(**enc).logits[:, -1]

    def probs(sampler: Sampler) -> torch.Tensor:
        return sampler.logprobs(logits, enc["input_ids"], enc["attention_mask"]).exp()[0]
    return engine, req, probs


def _continuous(engine, req) -> collections.Counter:
    out = collections.Counter()
    for k in range(N // CONFIG.n):  # each row's uniforms come from its own seed
        for _, responses in engine.stream([(k, req, 1000 + k)], CONFIG, slots=CONFIG.n):
            out.update(r.token_ids[0] for r in responses)
    return out


def _static(engine, req) -> collections.Counter:
    out = collections.Counter()
    for k in range(N // CONFIG.n):
        out.update(r.token_ids[0] for r in engine.generate([req], replace(CONFIG, seed=k))[0])
    return out


def _p_value(counts: collections.Counter, p: torch.Tensor) -> float:
    """Chi-square goodness of fit: a bin per token expected at least 5 times, the rest
    pooled; a token drawn where the distribution gives it no mass fails outright."""
    if any(p[tok] == 0 for tok in counts):
        return 0.0
    expected = (p * N).double()
    big = (expected >= 5).nonzero().squeeze(1).tolist()
    obs = [counts.get(t, 0) for t in big]
    exp = [float(expected[t]) for t in big]
    rest_obs, rest_exp = N - sum(obs), N - sum(exp)
    if rest_exp >= 5:
        obs.append(rest_obs)
        exp.append(rest_exp)
    else:  # too little to be a bin of its own
        obs[-1] += rest_obs
        exp[-1] += rest_exp
    scale = sum(obs) / sum(exp)  # float rounding aside, 1
    return float(stats.chisquare(obs, [e * scale for e in exp]).pvalue)


@pytest.mark.parametrize("path", [_continuous, _static], ids=["continuous", "static"])
def test_draws_follow_the_samplers_distribution(setting, path):
    engine, req, probs = setting
    sampler = Sampler.of(CONFIG, engine.suppress)
    p = probs(sampler)
    assert 20 <= int((p > 0).sum()) < p.numel() / 2  # a distribution with many outcomes
    counts = path(engine, req)
    assert sum(counts.values()) == N
    assert _p_value(counts, p) > 1e-3
    assert not set(counts) & set(engine.suppress)
    # the same draws against the distribution with one part left out: rejected
    for part in ({"repetition_penalty": 1.0}, {"top_p": 1.0}, {"top_k": 0},
                 {"temperature": 0.4}):
        assert _p_value(counts, probs(replace(sampler, **part))) < 1e-6, part


def test_recorded_log_probs_are_the_samplers(setting):
    """A sampled token's recorded log-probability (what a backend returns) equals the
    sampler's log-probability of it, on both paths."""
    engine, req, probs = setting
    cfg = replace(CONFIG, n=8, logprobs=True)
    p = probs(Sampler.of(cfg, engine.suppress))
    streamed = next(iter(engine.stream([(0, req, 7)], cfg, slots=8)))[1]
    static = engine.generate([req], cfg)[0]
    for r in streamed + static:
        assert r.logprobs[0] == pytest.approx(float(p[r.token_ids[0]].log()), abs=1e-5)

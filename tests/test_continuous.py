"""Continuous batching (`HFBackend.stream`): rows that end free their place, and no row's
tokens depend on which rows shared its steps. Greedy responses equal static batches' on
every architecture, for any number of rows in flight; sampled ones depend on their seed
only; `evaluate()` writes the same samples either way."""

import copy
import functools
import json
from collections import Counter

import pytest

import tasks
from harness.backends import GenerationConfig, Request
from harness.backends import continuous as continuous_module
from harness.backends import hf as hf_module
from harness.backends.hf import HFBackend
from harness.runs.runner import evaluate
from harness.runs.store import read_jsonl
from tasks import decode_images
from trainers import tiny


def _requests(n: int) -> list[Request]:
    work = [(t, s) for t in tasks.resolve("count_shapes,bar_chart") for s in t.samples("test", n)]
    return [Request(t.prompt(s), decode_images(s)) for t, s in work]


def _static(engine: HFBackend, reqs: list[Request], cfg: GenerationConfig, size: int) -> list:
    return [r for i in range(0, len(reqs), size) for r in engine.generate(reqs[i:i + size], cfg)]


def _streamed(engine: HFBackend, reqs: list[Request], cfg: GenerationConfig, slots: int,
              seeds=None) -> list:
    got = dict(engine.stream(((i, r, seeds[i] if seeds else 0) for i, r in enumerate(reqs)),
                             cfg, slots))
    assert sorted(got) == list(range(len(reqs)))
    return [got[i] for i in range(len(reqs))]


def _ending_early(engine: HFBackend, reqs: list[Request], cfg: GenerationConfig) -> None:
    """Make a few tokens that the responses hold ends of sequence too, so that rows end at
    different steps (random weights rarely end a response; a briefly trained model's
    responses all have one length): tokens added one at a time, each the one that most
    varies where the responses end."""
    outs = [o[0].token_ids[1:] for o in _static(engine, reqs, cfg, 1)]

    def ends_at(ends: set[int]) -> set[int]:
        return {next((i for i, t in enumerate(o) if t in ends), -1) for o in outs}
    ends: set[int] = set()
    candidates = Counter(t for o in outs for t in set(o))
    while len(ends_at(ends)) < 4:
        best = max(candidates, key=lambda t: (len(ends_at(ends | {t})), candidates[t]))
        if len(ends_at(ends | {best})) <= len(ends_at(ends)):
            pytest.fail("no tokens end the responses at different steps")
        ends.add(best)
    engine.eos_ids |= ends


@pytest.mark.parametrize("arch", ["qwen2_vl", "qwen2_5_vl", "llava", "idefics3"])
def test_greedy_equals_static_batches_on_every_architecture(arch, tmp_path):
    """Random weights repeat one token: the repetition penalty varies the responses, so the
    reference is each prompt alone (a static batch of one: no padding to penalise)."""
    engine = HFBackend(str(tiny.build(tmp_path / arch, size="tiny", seed=0, arch=arch)))
    assert _decoder(engine).direct is not None  # decode steps skip the multimodal wrapper
    reqs, cfg = _requests(10), GenerationConfig(max_new_tokens=16, repetition_penalty=3.0)
    _ending_early(engine, reqs, cfg)
    static = [o[0].token_ids for o in _static(engine, reqs, cfg, 1)]
    assert len({len(t) for t in static}) >= 3  # rows do end at different steps
    for slots in (1, 3, 8):
        outs = _streamed(engine, reqs, cfg, slots)
        assert [o[0].token_ids for o in outs] == static, slots
    assert [o[0].finish_reason for o in outs] == [
        "stop" if len(t) < 16 or t[-1] in engine.eos_ids else "length" for t in static]


def _decoder(engine: HFBackend) -> continuous_module.ContinuousDecoder:
    return continuous_module.ContinuousDecoder(engine.model, engine.eos_ids, engine.pad_id)


def test_a_wrapper_that_changes_the_logits_keeps_its_forward(sft_model):
    """Where the multimodal wrapper does more than its language model and output layer (as
    one that scales or caps the logits; here it favours a token), decode steps go through
    it: the stream still equals static batches, which run the wrapper."""
    engine = HFBackend(sft_model)
    reqs, cfg = _requests(8), GenerationConfig(max_new_tokens=24)
    plain = _static(engine, reqs, cfg, 8)
    forward = engine.model.forward
    favoured = engine.processor.tokenizer.convert_tokens_to_ids("7")

    @functools.wraps(forward)  # its signature, which `generate` checks its inputs against
    def favouring(*args, **kwargs):
        out = forward(*args, **kwargs)
        out.logits[..., favoured] += 1e3
        return out

    engine.model.forward = favouring
    assert _decoder(engine).direct is None
    static = _static(engine, reqs, cfg, 8)
    assert static != plain  # the wrapper's change shows in the responses
    assert _streamed(engine, reqs, cfg, 3) == static


def test_trained_model_and_repetition_penalty(sft_model):
    """A trained model: static batches of 8 (padded) and the stream agree; with the
    repetition penalty, which counts a row's real tokens only, each prompt alone is the
    reference (no padding to penalise), its responses made to end at different steps."""
    engine = HFBackend(sft_model)
    reqs = _requests(12)
    cfg = GenerationConfig(max_new_tokens=40)
    static = _static(engine, reqs, cfg, 8)
    assert _streamed(engine, reqs, cfg, 5) == static
    cfg = GenerationConfig(max_new_tokens=40, repetition_penalty=3.0)
    _ending_early(engine, reqs, cfg)
    penalised = _static(engine, reqs, cfg, 1)
    assert len({o[0].n_tokens for o in penalised}) >= 3
    assert _streamed(engine, reqs, cfg, 6) == penalised


def test_sampled_responses_depend_on_their_seed_only(sft_model):
    engine = HFBackend(sft_model)
    reqs = _requests(6)
    cfg = GenerationConfig(max_new_tokens=24, temperature=1.0, top_k=20, n=3, logprobs=True)
    seeds = list(range(100, 100 + len(reqs)))
    a = _streamed(engine, reqs, cfg, 2, seeds)
    b = _streamed(engine, reqs, cfg, 7, seeds)
    # reordered requests: each keeps its responses
    order = list(range(len(reqs)))[::-1]
    c = _streamed(engine, [reqs[i] for i in order], cfg, 4, [seeds[i] for i in order])
    c = [c[order.index(i)] for i in range(len(reqs))]
    for other in (b, c):  # the same tokens; log-probabilities to float rounding
        assert _tokens(other) == _tokens(a)
        assert [x for o in other for r in o for x in r.logprobs] == pytest.approx(
            [x for o in a for r in o for x in r.logprobs], abs=1e-5)
    assert len({r.token_ids for o in a for r in o}) > len(reqs)  # the n responses differ
    for o in a:
        for r in o:
            assert len(r.logprobs) == r.n_tokens and all(lp <= 0 for lp in r.logprobs)
    assert _tokens(_streamed(engine, reqs, cfg, 2, [s + 1 for s in seeds])) != _tokens(a)


def test_a_requests_responses_share_one_prefill(sft_model, monkeypatch):
    """The n rows of one request prefill its prompt once: the same responses as n separate
    prefills (the request copied for each row), from fewer prompt rows."""
    engine = HFBackend(sft_model)
    reqs = _requests(6)
    cfg = GenerationConfig(max_new_tokens=24, temperature=1.0, n=4, logprobs=True)
    seeds = list(range(len(reqs)))
    prefilled = []
    original = continuous_module.ContinuousDecoder._prefill

    def counted(self, enc):
        prefilled.append(enc["input_ids"].shape[0])
        return original(self, enc)

    monkeypatch.setattr(continuous_module.ContinuousDecoder, "_prefill", counted)
    shared = _streamed(engine, reqs, cfg, 8, seeds)
    rows_shared, prefilled[:] = sum(prefilled), []
    original_rows = hf_module._Keyed.rows
    monkeypatch.setattr(hf_module._Keyed, "rows", lambda self, n: (
        (key, copy.copy(req), seed) for key, req, seed in original_rows(self, n)))
    apart = _streamed(engine, reqs, cfg, 8, seeds)
    assert sum(prefilled) == 4 * len(reqs) > rows_shared
    assert _tokens(shared) == _tokens(apart)
    assert [x for o in shared for r in o for x in r.logprobs] == pytest.approx(
        [x for o in apart for r in o for x in r.logprobs], abs=1e-5)


def _tokens(outs: list) -> list:
    return [[r.token_ids for r in o] for o in outs]


def test_a_cache_it_cannot_join_keeps_static_batches(sft_model, monkeypatch):
    engine = HFBackend(sft_model)
    reqs, cfg = _requests(5), GenerationConfig(max_new_tokens=20)
    static = _static(engine, reqs, cfg, 4)
    monkeypatch.setattr("harness.backends.hf.new_cache", lambda model: None)

    def no_decoder(*args, **kwargs):
        raise AssertionError("the continuous decoder ran for a cache it cannot join")

    monkeypatch.setattr("harness.backends.hf.ContinuousDecoder", no_decoder)
    assert _streamed(engine, reqs, cfg, 4) == static
    assert continuous_module.new_cache(engine.model) is not None


def test_a_longer_prompt_joins_shorter_running_rows(sft_model, monkeypatch):
    """A new prompt longer than the running rows' columns: they are left-padded to it (their
    cache copied wider), and every response is the one its prompt and seed give alone."""
    engine = HFBackend(sft_model)
    short = _requests(1)[0]
    longer = Request(short.prompt + " Look at the picture again, count with care, and answer"
                     " with the number only." * 3, short.images)
    cfg = GenerationConfig(max_new_tokens=24, temperature=2.0)
    lengths = [o[0].n_tokens for o in _streamed(engine, [short] * 8, cfg, 1, range(8))]
    other = next((i for i in range(1, 8) if lengths[i] != lengths[0]), None)
    assert other is not None, lengths  # sampled responses of the prompt end at various steps
    # two rows that end at different steps; the first to end leaves its place to a longer one
    reqs = [short, copy.copy(short), *(copy.copy(longer) for _ in range(3))]
    seeds = [0, other, 10, 11, 12]
    alone = _streamed(engine, reqs, cfg, 1, seeds)
    monkeypatch.setattr(continuous_module._RoomyLayer, "ROOM", 1000)  # no step needs more
    widened = []  # the layers whose running keys were copied into more columns
    hold = continuous_module._RoomyLayer.hold

    def watched(self, keys, values):
        if hasattr(self, "_k") and keys.shape[-2] > self.keys.shape[-2]:
            widened.append(self)
        return hold(self, keys, values)

    monkeypatch.setattr(continuous_module._RoomyLayer, "hold", watched)
    assert _tokens(_streamed(engine, reqs, cfg, 2, seeds)) == _tokens(alone)
    assert widened  # the running rows were padded for a longer prompt


class _StaticOnly:
    """The same model behind a backend without `stream`: static batches."""

    def __init__(self, engine: HFBackend):
        self.engine, self.name = engine, engine.name

    def generate(self, requests, config):
        return self.engine.generate(requests, config)


def test_evaluate_writes_the_same_samples_either_way(sft_model, tmp_path):
    engine = HFBackend(sft_model)
    kw = {"limit": 12, "batch_size": 5, "max_new_tokens": 32, "progress": False}
    a = evaluate(sft_model, "count_shapes,sides_sum", engine=engine,
                 output=str(tmp_path / "stream"), **kw)
    b = evaluate(sft_model, "count_shapes,sides_sum", engine=_StaticOnly(engine),
                 output=str(tmp_path / "static"), **kw)
    assert ((tmp_path / "stream" / "samples.jsonl").read_bytes()
            == (tmp_path / "static" / "samples.jsonl").read_bytes())
    assert a["results"] == b["results"]


def test_a_sampled_eval_is_streamed_and_its_responses_are_its_samples_own(sft_model,
                                                                          tmp_path):
    """A sampled evaluation batches continuously too: a sample's responses depend on the
    run's seed and the sample, not on the batch size or the limit."""
    engine = HFBackend(sft_model)
    kw = {"samples": 3, "temperature": 1.0, "max_new_tokens": 16, "progress": False}

    def resps(name, **more):
        evaluate(sft_model, "count_shapes", engine=engine, output=str(tmp_path / name),
                 **kw | more)
        return {r["doc_id"]: r["resps"] for r in read_jsonl(tmp_path / name / "samples.jsonl")}
    a = resps("a", limit=6, batch_size=2)
    assert resps("b", limit=6, batch_size=5) == a
    assert resps("c", limit=3, batch_size=3) == {k: a[k] for k in list(a)[:3]}
    assert len({x for rs in a.values() for x in rs}) > 6  # the responses differ
    assert resps("d", limit=6, batch_size=2, seed=1) != a
    # the seeding is part of a sampled run's identity (a run begun with seeds per batch is
    # never resumed with seeds per sample); a greedy run's needs none
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config["seeding"] == "sample"
    evaluate(sft_model, "count_shapes", engine=_StaticOnly(engine), output=str(tmp_path / "e"),
             limit=6, batch_size=2, **kw)
    assert json.loads((tmp_path / "e" / "config.json").read_text())["seeding"] is None
    evaluate(sft_model, "count_shapes", engine=engine, output=str(tmp_path / "g"), limit=2,
             max_new_tokens=4, progress=False)
    assert json.loads((tmp_path / "g" / "config.json").read_text())["seeding"] is None


def test_rollouts_do_not_depend_on_the_places_in_flight(sft_model):
    """RL's continuous rollouts seed each prompt's group by the prompt's index: generating
    2 or 8 prompts' groups at once gives the same responses; static batching gives others."""
    from trainers.config import RLConfig
    from trainers.rl import collect, rollout_generation
    from trainers.session import TrainSet

    engine = HFBackend(sft_model)

    def tokens(**kw):
        cfg = RLConfig(model=sft_model, out="unused", tasks="count_shapes", prompts_per_step=8,
                       group_size=3, max_new_tokens=24, **kw)
        data = TrainSet(cfg.tasks, cfg.split, cfg.seed, cfg.data_dir)
        rollouts = collect(engine, data, cfg, rollout_generation(cfg), step=1)
        assert len(rollouts) == 24
        return [x.response.token_ids for x in rollouts]

    two = tokens(gen_chunk=2)
    assert tokens(gen_chunk=8) == two
    assert len(set(two)) > 8  # a group's responses differ
    assert tokens(gen_chunk=2, rollout_batching="static") != two

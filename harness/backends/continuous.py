"""Continuous batching for the `hf` backend: a row that ends frees its place for the next
prompt, so no row waits for the longest response of a fixed batch.

The decoder keeps at most `slots` rows in flight over one key/value cache. New prompts are
encoded and prefilled together (the rows of one request, its n responses, share one
prefill), their cache left-padded to the running one's length (or the running one to
theirs) and joined to it; a row that ends is taken out, and the columns
no row attends to any more are cut off. A row's next position is its own: the count of its
real tokens, or for Qwen2-VL's multimodal rotary positions the one after the largest the
model gave its prompt; so a row's tokens do not depend on which rows share its steps, and
greedy responses equal static batches' in float32 (`tests/test_continuous.py`). A decode
step runs straight through the language model and its output layer (the multimodal
wrapper's forward only adds its checks and decorators once the images are in the cache)
where a probe shows that gives the wrapper's logits bit for bit. A token is drawn from
`harness.backends.sampling.Sampler`'s distribution, read off its cumulative distribution at
a uniform drawn up front from the row's own seed: a response depends on its seed only.

It serves models whose cache is transformers' plain dynamic cache (every attention layer
keeps every position, `new_cache`); others (sliding windows, hybrid caches) keep static
batches."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from harness.backends.sampling import Sampler


@dataclass
class Finished:
    key: object  # what the source gave with the row
    token_ids: list[int]
    stopped: bool  # it ended with an end-of-sequence token (else at the token limit)
    logprobs: list[float] = field(default_factory=list)


@dataclass
class _Row:
    key: object
    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)


class _RoomyLayer(DynamicLayer):
    """transformers' dynamic cache layer with room to grow: a step's keys and values are
    written into spare columns instead of concatenated (which copies the whole cache at
    every step). `keys` and `values` are views of the columns in use."""

    ROOM = 64  # spare columns allocated at a time

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        used = self.keys.shape[-2] if self.is_initialized else 0
        if not self.is_initialized or used + key_states.shape[-2] > self._k.shape[-2]:
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
                self.hold(key_states, value_states)
            else:
                self.hold(torch.cat([self.keys, key_states], dim=-2),
                          torch.cat([self.values, value_states], dim=-2))
            return self.keys, self.values
        end = used + key_states.shape[-2]
        self._k[:, :, used:end] = key_states
        self._v[:, :, used:end] = value_states
        self.keys, self.values = self._k[:, :, :end], self._v[:, :, :end]
        return self.keys, self.values

    def hold(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Keep these keys and values, with room after them."""
        b, h, t, d = keys.shape
        self._k = keys.new_empty((b, h, t + self.ROOM, d))
        self._v = values.new_empty((b, h, t + self.ROOM, values.shape[-1]))
        self._k[:, :, :t], self._v[:, :, :t] = keys, values
        self.keys, self.values = self._k[:, :, :t], self._v[:, :, :t]


def new_cache(model, roomy: bool = True):
    """An empty cache the decoder can join and cut (every layer keeps every position; with
    `roomy`, layers that write into spare columns, else transformers' own, through which
    gradients flow), or None for a model whose cache is of another kind or whose attention
    does not take a ready 4-D boolean mask (only `sdpa` is driven by hand)."""
    if getattr(model.config, "_attn_implementation", "sdpa") != "sdpa":
        return None
    try:
        cache = DynamicCache(config=model.config)
    except Exception:  # a config this transformers cannot lay a cache out for
        return None
    layers = getattr(cache, "layers", None)
    if not layers or any(type(x) is not DynamicLayer for x in layers):
        return None
    if roomy:
        cache.layers = [_RoomyLayer() for _ in layers]
    return cache


@dataclass
class Layout:
    """How to drive a model's forward by hand: the name of its cache argument and, for
    Qwen2-VL's family (multimodal rotary positions, 3 per token), the inner model that
    computes the positions and holds the language model."""

    cache_arg: str
    inner: object | None

    @classmethod
    def of(cls, model) -> Layout:
        base = model.get_base_model() if hasattr(model, "get_base_model") else model  # peft
        base = getattr(base, "module", base)  # DDP
        params = inspect.signature(base.forward).parameters
        return cls("cache" if "cache" in params else "past_key_values",
                   next((m for m in base.modules() if hasattr(m, "rope_deltas")
                         and hasattr(m, "language_model")), None))

    @property
    def mrope(self) -> bool:
        return self.inner is not None

    def prompt_forward(self, model, enc: dict, cache, **kwargs):
        """The forward of a left-padded prompt batch into `cache`: (the model's output, each
        row's next position: the count of its real tokens, or with multimodal positions
        one past the largest the model gave its prompt's real tokens)."""
        mask = enc["attention_mask"]
        if not self.mrope:
            out = model(**enc, position_ids=_positions(mask), use_cache=True,
                        **{self.cache_arg: cache}, **kwargs)
            return out, mask.long().sum(dim=1)
        seen = {}  # the positions the model gives the prompt, read on their way in
        hook = self.inner.language_model.register_forward_pre_hook(
            lambda _m, _a, kw: seen.update(pos=kw.get("position_ids")), with_kwargs=True)
        try:
            out = model(**enc, use_cache=True, **{self.cache_arg: cache}, **kwargs)
        finally:
            hook.remove()
        pos = seen.get("pos")
        if pos is None or pos.ndim != 3:
            raise RuntimeError("the model took no multimodal position ids")
        # [text, t, h, w] or [t, h, w]: the text after the prompt goes on from the largest
        # position of its real tokens
        pos = pos[-3:].masked_fill(mask[None] == 0, -1)
        return out, pos.amax(dim=(0, 2)) + 1

    def positions(self, nxt: torch.Tensor, n: int) -> torch.Tensor:
        """Position ids of `n` tokens a row, from each row's next position on."""
        pos = nxt[:, None] + torch.arange(n, device=nxt.device)
        return pos[None].expand(3, -1, -1) if self.mrope else pos


@dataclass
class _State:
    """The tensors the rows in flight share: their tokens so far and which are real (left
    padding aside), their key/value cache, and each row's next position."""

    ids: torch.Tensor
    mask: torch.Tensor
    cache: object
    next: torch.Tensor


@dataclass
class _Flight:
    """The rows in flight, in order: each row's tokens, their shared state, the logits of
    each row's next token and, when sampling, each row's uniforms (drawn from its seed)."""

    rows: list[_Row] = field(default_factory=list)
    state: _State | None = None
    logits: torch.Tensor | None = None
    noise: torch.Tensor | None = None

    def add(self, rows: list[_Row], state: _State, logits: torch.Tensor,
            noise: torch.Tensor | None, pad_id: int) -> None:
        """Rows prefilled together join the ones in flight."""
        if self.rows:
            state, logits = _join(self.state, state, pad_id), torch.cat([self.logits, logits])
            if noise is not None:
                noise = torch.cat([self.noise, noise])
        self.rows += rows
        self.state, self.logits, self.noise = state, logits, noise

    def keep(self, keep: list[int]) -> None:
        """Only the rows at `keep` stay in flight."""
        self.rows[:] = [self.rows[r] for r in keep]
        self.state = _select(self.state, keep) if keep else None
        if self.noise is not None and keep:
            self.noise = self.noise[keep]


class ContinuousDecoder:
    """`run(source, encode, ...)` takes rows from `source` as places free up and yields each
    row as it ends. `source` gives (key, item, seed); `encode(items)` returns the
    processor's left-padded batch for those items' prompts."""

    def __init__(self, model, eos_ids: set[int], pad_id: int):
        self.model = model
        self.eos = torch.tensor(sorted(eos_ids), device=model.device)
        self.pad_id = pad_id
        self.layout = Layout.of(model)
        self.direct = _direct(model, self.layout)

    def run(self, source: Iterator[tuple], encode: Callable[[list], dict], *, slots: int,
            max_new_tokens: int, sampler: Sampler, logprobs: bool = False
            ) -> Iterator[Finished]:
        """Each row's token drawn from `sampler`'s distribution; a row's seed seeds its
        uniforms (unused when greedy). New rows are prefilled once a quarter of the places
        are free (or none is taken)."""
        source = iter(source)
        flight = _Flight()
        more = True  # the source may hold more rows
        while more or flight.rows:
            with torch.inference_mode():  # not across the yield: the caller's code is its own
                if more and (slots - len(flight.rows) >= max(1, slots // 4) or not flight.rows):
                    more = self._admit(flight, source, encode, slots - len(flight.rows),
                                       None if sampler.greedy else max_new_tokens)
                if not flight.rows:
                    break
                finished = self._advance(flight, sampler, logprobs, max_new_tokens)
            yield from finished

    def _admit(self, flight: _Flight, source, encode, free: int, draws: int | None) -> bool:
        """Up to `free` new rows prefilled and joined to the flight (with `draws` uniforms
        each when sampling); whether the source may hold more."""
        take = [x for _, x in zip(range(free), source, strict=False)]
        if take:
            # rows of one item (a request's n responses) share one prefill of its prompt
            first: dict[int, int] = {}
            slot = [first.setdefault(id(item), len(first)) for _, item, _ in take]
            logits, state = self._prefill(encode(list({id(x[1]): x[1] for x in take
                                                      }.values())))
            if len(first) < len(take):
                state, logits = _select(state, slot), logits[slot]
            noise = None if draws is None else torch.stack(
                [_uniforms(seed, draws, self.model.device) for _, _, seed in take])
            flight.add([_Row(key) for key, _, _ in take], state, logits, noise, self.pad_id)
        return len(take) == free

    def _advance(self, flight: _Flight, sampler: Sampler, logprobs: bool,
                 max_new_tokens: int) -> list[Finished]:
        """One step: a token drawn for every row, the rows that end taken out (returned) and
        the others advanced by that token."""
        state = flight.state
        scores = sampler.scores(flight.logits, state.ids, state.mask)
        u = None
        if flight.noise is not None:  # each row's next uniform
            step = torch.tensor([len(row.tokens) for row in flight.rows], device=scores.device)
            u = flight.noise.gather(1, step[:, None])[:, 0]
        nxt = Sampler.draw(scores, u)
        if logprobs:
            taken = torch.log_softmax(scores, dim=-1).gather(1, nxt[:, None])[:, 0].tolist()
        ended = torch.isin(nxt, self.eos).tolist()
        finished, keep = [], []
        for r, (row, tok) in enumerate(zip(flight.rows, nxt.tolist(), strict=True)):
            row.tokens.append(tok)
            if logprobs:
                row.logprobs.append(taken[r])
            if ended[r] or len(row.tokens) >= max_new_tokens:
                finished.append(Finished(row.key, row.tokens, bool(ended[r]), row.logprobs))
            else:
                keep.append(r)
        if len(keep) < len(flight.rows):
            flight.keep(keep)
            nxt = nxt[keep]
        if flight.rows:
            flight.logits = self._step(nxt, flight.state)
        return finished

    def _prefill(self, enc: dict) -> tuple[torch.Tensor, _State]:
        enc = {k: v.to(self.model.device) if torch.is_tensor(v) else v for k, v in enc.items()}
        cache = new_cache(self.model)
        out, nxt = self.layout.prompt_forward(self.model, enc, cache, logits_to_keep=1)
        return out.logits[:, -1], _State(enc["input_ids"], enc["attention_mask"], cache, nxt)

    def _step(self, tokens: torch.Tensor, state: _State) -> torch.Tensor:
        state.ids = torch.cat([state.ids, tokens[:, None]], dim=1)
        state.mask = torch.cat([state.mask, state.mask.new_ones((len(tokens), 1))], dim=1)
        pos = self.layout.positions(state.next, 1)
        state.next = state.next + 1
        # one query a row: its mask is its padding mask, made 4-D here once for all layers
        return _logits(self.model, self.layout, self.direct, tokens[:, None],
                       state.mask[:, None, None].bool(), pos, state.cache)


def _logits(model, layout: Layout, direct, ids, mask, pos, cache) -> torch.Tensor:
    """The next token's logits of one decode step, through the wrapper or `direct`ly."""
    if direct is None:
        return model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True,
                     logits_to_keep=1, **{layout.cache_arg: cache}).logits[:, -1]
    language, head, cache_arg = direct
    hidden = language(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True,
                      **{cache_arg: cache}).last_hidden_state
    return head(hidden[:, -1])


def _direct(model, layout: Layout):
    """(the language model, the output layer, the former's cache argument) to run decode
    steps through, or None: where the model has no such parts, or where a probe (a step of
    two rows from empty caches) does not give the wrapper's logits bit for bit (a wrapper
    that scales or caps them)."""
    try:
        language, head = model.get_decoder(), model.get_output_embeddings()
    except (AttributeError, NotImplementedError):
        return None
    if not isinstance(language, torch.nn.Module) or not isinstance(head, torch.nn.Module):
        return None
    params = inspect.signature(language.forward).parameters
    direct = (language, head, "cache" if "cache" in params else "past_key_values")
    ids = torch.tensor([[1], [2]], device=model.device)
    mask = torch.ones((2, 1, 1, 1), dtype=torch.bool, device=model.device)
    pos = layout.positions(torch.zeros(2, dtype=torch.long, device=model.device), 1)
    try:
        with torch.inference_mode():
            wrapped, straight = (_logits(model, layout, way, ids, mask, pos, new_cache(model))
                                 for way in (None, direct))
            same = torch.equal(wrapped.float(), straight.float())
    except Exception:  # a language model that does not take these inputs alone
        return None
    return direct if same else None


def _uniforms(seed: int, n: int, device) -> torch.Tensor:
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return torch.rand(n, generator=g, device=device)


def _positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids of a left-padded batch, as transformers' `generate` makes them."""
    return (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 1)


def _pad_left(t: torch.Tensor, n: int, dim: int, value) -> torch.Tensor:
    if n == 0:
        return t
    shape = list(t.shape)
    shape[dim] = n
    return torch.cat([t.new_full(shape, value), t], dim=dim)


def _join(a: _State, b: _State, pad_id: int) -> _State:
    """Rows `b` after rows `a`, both left-padded to the longer length."""
    la, lb = a.mask.shape[1], b.mask.shape[1]
    n = max(la, lb)
    for x, y in zip(a.cache.layers, b.cache.layers, strict=True):
        x.hold(torch.cat([_pad_left(x.keys, n - la, 2, 0.0), _pad_left(y.keys, n - lb, 2, 0.0)]),
               torch.cat([_pad_left(x.values, n - la, 2, 0.0),
                          _pad_left(y.values, n - lb, 2, 0.0)]))
    return _State(torch.cat([_pad_left(a.ids, n - la, 1, pad_id),
                             _pad_left(b.ids, n - lb, 1, pad_id)]),
                  torch.cat([_pad_left(a.mask, n - la, 1, 0), _pad_left(b.mask, n - lb, 1, 0)]),
                  a.cache, torch.cat([a.next, b.next]))


def _select(state: _State, keep: list[int]) -> _State:
    """The rows `keep` (a row may be taken more than once), without the leading columns
    none of them attends to."""
    idx = torch.tensor(keep, dtype=torch.long, device=state.mask.device)
    mask = state.mask[idx]
    first = int(mask.any(dim=0).long().argmax())
    for layer in state.cache.layers:
        layer.hold(layer.keys[idx, :, first:], layer.values[idx, :, first:])
    return _State(state.ids[idx, first:], mask[:, first:], state.cache, state.next[idx])

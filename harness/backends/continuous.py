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
where a probe shows that gives the wrapper's logits bit for bit. Sampling
reads each row's token off the cumulative distribution at a uniform drawn up front from the
row's own seed: a response depends on its seed only.

It serves models whose cache is transformers' plain dynamic cache (every attention layer
keeps every position, `new_cache`); others (sliding windows, hybrid caches) keep static
batches."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from transformers import (
    DynamicCache,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)
from transformers.cache_utils import DynamicLayer


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


class ContinuousDecoder:
    """`run(source, encode, ...)` takes rows from `source` as places free up and yields each
    row as it ends. `source` gives (key, item, seed); `encode(items)` returns the
    processor's left-padded batch for those items' prompts."""

    def __init__(self, model, eos_ids: set[int], pad_id: int, suppress: list[int]):
        self.model = model
        self.eos = torch.tensor(sorted(eos_ids), device=model.device)
        self.pad_id, self.suppress = pad_id, suppress
        self.layout = Layout.of(model)
        self.direct = _direct(model, self.layout)

    def run(self, source: Iterator[tuple], encode: Callable[[list], dict], *, slots: int,
            max_new_tokens: int, temperature: float = 0.0, top_p: float = 1.0,
            top_k: int = 0, repetition_penalty: float = 1.0, logprobs: bool = False
            ) -> Iterator[Finished]:
        """A row's seed seeds its sampling (unused when greedy). New rows are prefilled
        once a quarter of the places are free (or none is taken)."""
        warpers = []
        if temperature > 0:
            warpers.append(TemperatureLogitsWarper(temperature))
            if top_k:
                warpers.append(TopKLogitsWarper(top_k))
            if top_p < 1:
                warpers.append(TopPLogitsWarper(top_p))
        source = iter(source)
        rows: list[_Row] = []
        state_box: dict = {}  # the rows' tensors and cache, and the logits of their next token
        more = True  # the source may hold more rows
        while more or rows:
            with torch.inference_mode():  # not across the yield: the caller's code is its own
                finished, more = self._advance(rows, state_box, source, encode, slots, more,
                                               warpers, repetition_penalty, logprobs,
                                               max_new_tokens)
            if finished is None:
                break
            yield from finished

    def _advance(self, rows: list[_Row], box: dict, source, encode, slots: int, more: bool,
                 warpers: list, penalty: float, logprobs: bool, max_new_tokens: int):
        """One step: new rows prefilled where places are free, a token chosen for every row,
        the rows that end taken out (returned) and the others advanced by that token."""
        if more and (slots - len(rows) >= max(1, slots // 4) or not rows):
            take = [x for _, x in zip(range(slots - len(rows)), source, strict=False)]
            more = len(take) == slots - len(rows)
            if take:
                # rows of one item (a request's n responses) share one prefill of its prompt
                first: dict[int, int] = {}
                slot = [first.setdefault(id(item), len(first)) for _, item, _ in take]
                logits, state = self._prefill(encode(list({id(x[1]): x[1] for x in take
                                                          }.values())))
                if len(first) < len(take):
                    state, logits = _select(state, slot), logits[slot]
                if rows:
                    state = _join(box["state"], state, self.pad_id)
                    logits = torch.cat([box["logits"], logits])
                box["state"], box["logits"] = state, logits
                if warpers:  # each row's uniforms, drawn from its own seed up front
                    noise = torch.stack([_uniforms(seed, max_new_tokens, self.model.device)
                                         for _, _, seed in take])
                    box["noise"] = noise if not rows else torch.cat([box["noise"], noise])
                rows += [_Row(key) for key, _, _ in take]
            if not rows:
                return None, more
        state = box["state"]
        scores = self._process(box["logits"].float(), state, penalty)
        for warp in warpers:
            scores = warp(state["ids"], scores)
        if warpers:  # inverse-CDF sampling at each row's next uniform, for all rows at once
            cdf = torch.softmax(scores, dim=-1).cumsum(dim=-1)
            step = torch.tensor([len(row.tokens) for row in rows], device=cdf.device)
            u = box["noise"].gather(1, step[:, None]) * cdf[:, -1:]
            nxt = torch.searchsorted(cdf, u, right=True)[:, 0].clamp_max(cdf.shape[1] - 1)
        else:
            nxt = scores.argmax(dim=-1)
        if logprobs:
            taken = torch.log_softmax(scores, dim=-1).gather(1, nxt[:, None])[:, 0].tolist()
        ended = torch.isin(nxt, self.eos).tolist()
        finished, keep = [], []
        for r, (row, tok) in enumerate(zip(rows, nxt.tolist(), strict=True)):
            row.tokens.append(tok)
            if logprobs:
                row.logprobs.append(taken[r])
            if ended[r] or len(row.tokens) >= max_new_tokens:
                finished.append(Finished(row.key, row.tokens, bool(ended[r]), row.logprobs))
            else:
                keep.append(r)
        if len(keep) < len(rows):
            rows[:] = [rows[r] for r in keep]
            state = box["state"] = _select(state, keep) if keep else {}
            if warpers and keep:
                box["noise"] = box["noise"][keep]
            nxt = nxt[keep]
        if rows:
            box["logits"] = self._step(nxt, state)
        return finished, more

    def _prefill(self, enc: dict) -> tuple[torch.Tensor, dict]:
        enc = {k: v.to(self.model.device) if torch.is_tensor(v) else v for k, v in enc.items()}
        cache = new_cache(self.model)
        out, nxt = self.layout.prompt_forward(self.model, enc, cache, logits_to_keep=1)
        return out.logits[:, -1], {"ids": enc["input_ids"], "mask": enc["attention_mask"],
                                   "cache": cache, "next": nxt}

    def _step(self, tokens: torch.Tensor, state: dict) -> torch.Tensor:
        state["ids"] = torch.cat([state["ids"], tokens[:, None]], dim=1)
        mask = state["mask"] = torch.cat([state["mask"], state["mask"].new_ones(
            (len(tokens), 1))], dim=1)
        pos = self.layout.positions(state["next"], 1)
        state["next"] = state["next"] + 1
        # one query a row: its mask is its padding mask, made 4-D here once for all layers
        return _logits(self.model, self.layout, self.direct, tokens[:, None],
                       mask[:, None, None].bool(), pos, state["cache"])

    def _process(self, scores: torch.Tensor, state: dict, penalty: float) -> torch.Tensor:
        """What transformers' processors would do: suppressed tokens and the repetition
        penalty (over the row's real tokens only: never its padding)."""
        if self.suppress:
            scores[:, self.suppress] = -float("inf")
        if penalty != 1.0:
            ids = state["ids"].masked_fill(state["mask"] == 0, -1)
            for r in range(len(scores)):
                seen = ids[r][ids[r] >= 0].unique()
                s = scores[r, seen]
                scores[r, seen] = torch.where(s < 0, s * penalty, s / penalty)
        return scores


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


def _join(a: dict, b: dict, pad_id: int) -> dict:
    """Rows `b` after rows `a`, both left-padded to the longer length."""
    la, lb = a["mask"].shape[1], b["mask"].shape[1]
    n = max(la, lb)
    out = {"ids": torch.cat([_pad_left(a["ids"], n - la, 1, pad_id),
                             _pad_left(b["ids"], n - lb, 1, pad_id)]),
           "mask": torch.cat([_pad_left(a["mask"], n - la, 1, 0),
                              _pad_left(b["mask"], n - lb, 1, 0)]),
           "cache": a["cache"]}
    for x, y in zip(a["cache"].layers, b["cache"].layers, strict=True):
        x.hold(torch.cat([_pad_left(x.keys, n - la, 2, 0.0), _pad_left(y.keys, n - lb, 2, 0.0)]),
               torch.cat([_pad_left(x.values, n - la, 2, 0.0),
                          _pad_left(y.values, n - lb, 2, 0.0)]))
    out["next"] = torch.cat([a["next"], b["next"]])
    return out


def _select(state: dict, keep: list[int]) -> dict:
    """The rows `keep` (a row may be taken more than once), without the leading columns
    none of them attends to."""
    idx = torch.tensor(keep, dtype=torch.long, device=state["mask"].device)
    mask = state["mask"][idx]
    first = int(mask.any(dim=0).long().argmax())
    out = {"ids": state["ids"][idx, first:], "mask": mask[:, first:], "cache": state["cache"]}
    for layer in state["cache"].layers:
        layer.hold(layer.keys[idx, :, first:], layer.values[idx, :, first:])
    out["next"] = state["next"][idx]
    return out

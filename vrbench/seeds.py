"""Seeds, derived one way: a child seed from (parent, purpose, index).

Every stream of random numbers vrbench draws (an evaluation batch's, a response's, a
rollout's, a training epoch's order, a PPO epoch's mini-batch order, a warm start's choice of
solution) is seeded by `derive(the run's seed, what it is for, its index)`: a hash, so no two
purposes or indices share a stream and neighbouring seeds give unrelated streams (seed 0's
stream k is never seed 1's stream k - 1, as `seed * C + k` or `seed + k` would make it). It
sits at the bottom of the house with the error type: every layer may call it.
"""

from __future__ import annotations

import hashlib


def derive(parent: int, purpose: str, index: int = 0) -> int:
    """A seed in [0, 2**63) for stream `index` of `purpose` under seed `parent`."""
    key = f"{parent}/{purpose}/{index}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "little") >> 1


def unit(parent: int, purpose: str, index: int = 0) -> float:
    """A number in [0, 1) drawn from `derive(parent, purpose, index)`: one draw, no stream."""
    return derive(parent, purpose, index) / 2**63

"""The two key operations every step performs, `fold_in` and `split`, with JAX's bits.

Before each step the framework derives the step's keys from `States.rng` (`fold_in`,
then `split`). JAX computes both with the Threefry-2x32 hash, and on the CPU it lowers
that hash to an XLA while loop over its five key injections (small code, quick to
compile); XLA's CPU runtime pays a few microseconds for every iteration and every
operation in it. For the benchmark's MLP the two hashes cost about 65 us of a 390 us
evaluation step. Written here as straight-line arithmetic on a handful of scalars, XLA
fuses them into a couple of kernels that cost almost nothing.

The results are JAX's own bits (Salmon et al., "Parallel random numbers: as easy as 1,
2, 3", SC 2011, defines the hash; the tests compare against `jax.random` on many
keys), so nothing a model computes depends on which implementation ran. Keys that are
not raw Threefry keys (a typed key, another default PRNG implementation) go to
`jax.random` unchanged.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))  # alternate between key injections
_PARITY = np.uint32(0x1BD11BDA)  # the third key word is the XOR of the two and this


def threefry2x32(key: Any, x0: Any, x1: Any) -> tuple[Any, Any]:
    """The Threefry-2x32 hash (20 rounds) of the counter words `x0, x1` under the raw
    `key` (two uint32 words), as straight-line uint32 arithmetic."""
    words = (key[0], key[1], key[0] ^ key[1] ^ _PARITY)
    x0, x1 = x0 + words[0], x1 + words[1]
    for injection in range(1, 6):
        for rotation in _ROTATIONS[(injection - 1) % 2]:
            x0 = x0 + x1
            x1 = ((x1 << np.uint32(rotation)) | (x1 >> np.uint32(32 - rotation))) ^ x0
        x0 = x0 + words[injection % 3]
        x1 = x1 + words[(injection + 1) % 3] + np.uint32(injection)
    return x0, x1


def _is_raw_threefry(key: Any) -> bool:
    return (
        jax.config.jax_default_prng_impl == "threefry2x32"  # type: ignore[attr-defined]
        and np.shape(key) == (2,)
        and getattr(key, "dtype", None) == np.uint32
    )


def fold_in(key: Any, data: int) -> Any:
    """`jax.random.fold_in(key, data)` for a non-negative 32-bit `data`."""
    if not _is_raw_threefry(key):
        return jax.random.fold_in(key, data)
    return _fold_in(key, data)


def split(key: Any) -> tuple[Any, Any]:
    """The two keys of `jax.random.split(key)`, as a pair."""
    if not _is_raw_threefry(key):
        first, second = jax.random.split(key)
        return first, second
    partitionable = bool(jax.config.jax_threefry_partitionable)  # type: ignore[attr-defined]
    pair: tuple[Any, Any] = _split(key, partitionable)
    return pair


# Jitted so that an eager call is one dispatch, not one per operation; inside a step
# they are inlined like any nested jit.
@partial(jax.jit, static_argnums=1)
def _fold_in(key: jax.Array, data: int) -> jax.Array:
    y0, y1 = threefry2x32(key, np.uint32(0), np.uint32(data))
    return jnp.stack([y0, y1])


@partial(jax.jit, static_argnums=1)
def _split(key: jax.Array, partitionable: bool) -> tuple[jax.Array, jax.Array]:
    if partitionable:  # key i hashes the 64-bit counter i
        y0, y1 = threefry2x32(key, jnp.zeros(2, np.uint32), jnp.arange(2, dtype=np.uint32))
        return jnp.stack([y0[0], y1[0]]), jnp.stack([y0[1], y1[1]])
    return threefry2x32(key, jnp.arange(2, dtype=np.uint32), jnp.arange(2, 4, dtype=np.uint32))

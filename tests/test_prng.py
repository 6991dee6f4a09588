"""`elegy.prng` computes `jax.random`'s own bits, only faster on the CPU."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from elegy import prng


def random_keys(count: int, seed: int = 0) -> list[jax.Array]:
    words = np.random.default_rng(seed).integers(0, 2**32, (count, 2), dtype=np.uint64)
    return [jnp.asarray(pair.astype(np.uint32)) for pair in words]


@pytest.mark.parametrize("partitionable", [True, False])
def test_split_and_fold_in_equal_jax_random_bit_for_bit(partitionable):
    data = np.random.default_rng(1).integers(0, 2**32, 64, dtype=np.uint64)
    with jax.threefry_partitionable(partitionable):
        for key, value in zip(random_keys(64), data, strict=True):
            np.testing.assert_array_equal(prng.fold_in(key, int(value)), jax.random.fold_in(key, int(value)))
            first, second = prng.split(key)
            expected = jax.random.split(key)
            np.testing.assert_array_equal(np.stack([first, second]), expected)


def test_inside_a_jitted_step_the_bits_are_the_same():
    key = jax.random.PRNGKey(7)
    ours = jax.jit(lambda k: prng.split(prng.fold_in(k, 1))[0])(key)
    theirs = jax.jit(lambda k: jax.random.split(jax.random.fold_in(k, 1))[0])(key)
    np.testing.assert_array_equal(ours, theirs)


def test_the_cpu_program_has_no_loop():
    """JAX's CPU lowering of the hash is a while loop; ours is straight-line code."""
    text = jax.jit(lambda k: prng.split(prng.fold_in(k, 1))[0]).lower(jax.random.PRNGKey(0)).as_text()
    assert "while" not in text
    assert "while" in jax.jit(lambda k: jax.random.split(k)[0]).lower(jax.random.PRNGKey(0)).as_text()


def test_a_typed_key_is_handed_to_jax_random():
    key = jax.random.key(3)
    first, second = prng.split(key)
    expected = jax.random.split(key)
    assert jax.dtypes.issubdtype(first.dtype, jax.dtypes.prng_key)
    np.testing.assert_array_equal(jax.random.key_data(first), jax.random.key_data(expected[0]))
    np.testing.assert_array_equal(jax.random.key_data(second), jax.random.key_data(expected[1]))
    folded = prng.fold_in(key, 5)
    np.testing.assert_array_equal(
        jax.random.key_data(folded), jax.random.key_data(jax.random.fold_in(key, 5))
    )

"""Every kind of input trains and evaluates to the numbers the equivalent arrays give."""

import haiku as hk
import jax
import numpy as np
import optax
import pytest
from tests.conftest import blobs

import elegy

X, Y = blobs(90, seed=5)
BATCH = 20  # 90 rows: four full batches and a partial one of 10


def forward(x):
    return hk.nets.MLP([8, 3])(x)


def make_model():
    return elegy.Model(
        forward,
        loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        optimizer=optax.adam(1e-2),
    )


def batch_list():
    return [(X[i : i + BATCH], Y[i : i + BATCH]) for i in range(0, len(X), BATCH)]


def train(data, **kwargs):
    model = make_model()
    history = model.fit(data, epochs=2, verbose=0, **kwargs)
    return model, history


@pytest.fixture(scope="module")
def reference():
    model = make_model()
    history = model.fit(X, Y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0)
    return (
        jax.device_get(model.states.net_params),
        history.history,
        model.evaluate(X, Y, batch_size=BATCH, verbose=0),
    )


def assert_same_training(model, history, reference):
    params, logs, evaluation = reference
    jax.tree_util.tree_map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
        jax.device_get(model.states.net_params),
        params,
    )
    for name, values in logs.items():
        np.testing.assert_allclose(history.history[name], values, rtol=1e-5)
    got = model.evaluate(batch_list(), verbose=0)
    assert got == pytest.approx(evaluation, rel=1e-5)


def test_a_list_of_batches(reference):
    assert_same_training(*train(batch_list()), reference)


def test_a_generator_with_steps_per_epoch(reference):
    def endless():
        while True:
            yield from batch_list()

    assert_same_training(*train(endless(), steps_per_epoch=5), reference)


def test_a_re_iterable_object_like_a_data_loader(reference):
    class Loader:
        def __len__(self):
            return 5

        def __iter__(self):
            return iter([[x, y] for x, y in batch_list()])  # lists, as torch's collate gives

    assert_same_training(*train(Loader()), reference)


def test_jax_arrays(reference):
    import jax.numpy as jnp

    model = make_model()
    history = model.fit(jnp.asarray(X), jnp.asarray(Y), batch_size=BATCH, epochs=2, shuffle=False, verbose=0)
    assert_same_training(model, history, reference)


def test_an_iterable_whose_len_raises_is_of_unknown_length(reference):
    """As a `tf.data.Dataset` of infinite or unknown cardinality is: read to its end."""

    class UnknownLength:
        def __len__(self):
            raise TypeError("The dataset length is unknown.")

        def __iter__(self):
            return iter(batch_list())

    assert_same_training(*train(UnknownLength()), reference)


def test_drop_remainder_skips_the_partial_batch():
    dropped = make_model()
    dropped.fit(X, Y, batch_size=BATCH, epochs=1, shuffle=False, drop_remainder=True, verbose=0)
    exact = make_model()
    exact.fit(X[:80], Y[:80], batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    jax.tree_util.tree_map(
        np.testing.assert_array_equal,
        jax.device_get(dropped.states.net_params),
        jax.device_get(exact.states.net_params),
    )


def test_drop_remainder_for_iterables_skips_short_batches():
    dropped = make_model()
    dropped.fit(batch_list(), epochs=1, drop_remainder=True, verbose=0)
    exact = make_model()
    exact.fit(batch_list()[:4], epochs=1, verbose=0)
    jax.tree_util.tree_map(
        np.testing.assert_array_equal,
        jax.device_get(dropped.states.net_params),
        jax.device_get(exact.states.net_params),
    )

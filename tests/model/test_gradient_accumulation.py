"""`Model(gradient_accumulation_steps=K)`: K batches make one optimizer update whose
gradient is that of one batch of all their real rows.

The oracle is training on batches K times larger with K=1: 200 rows make 12 batches of
16 and one of 8, or 3 batches of 64 and one of 8, so the groups of 4 small batches hold
the same rows as the large batches (the shuffled order depends on the seed and the
epoch, not on the batch size), the last group partial in both.
"""

import haiku as hk
import jax
import numpy as np
import optax
import pytest
from tests.conftest import blobs, mlp_forward

import elegy
from elegy.callbacks import Callback

X, Y = blobs(200)
EPOCHS = 2
UPDATES = EPOCHS * 4  # per epoch: 3 full groups and the partial one


def scheduled(name):
    """An optimizer on a schedule, which reaches zero after UPDATES steps: if its count
    advanced on every batch, the last updates would not move the params."""
    schedule = optax.linear_schedule(0.3 if name == "sgd" else 0.03, 0.0, UPDATES)
    make = optax.sgd if name == "sgd" else optax.adam
    return optax.inject_hyperparams(make)(learning_rate=schedule)


def make_model(k, optimizer="adam", forward=mlp_forward, steps_per_execution=1):
    return elegy.Model(
        forward,
        loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        optimizer=scheduled(optimizer),
        gradient_accumulation_steps=k,
        steps_per_execution=steps_per_execution,
    )


def leaves(tree):
    return [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(jax.device_get(tree))]


def assert_same_params(model, reference, atol=1e-6):
    for actual, expected in zip(
        leaves(model.states.net_params), leaves(reference.states.net_params), strict=True
    ):
        np.testing.assert_allclose(actual, expected, atol=atol)


@pytest.fixture(scope="module")
def large_batches():
    """K=1 on batches of 64, for each optimizer."""
    runs = {}
    for name in ("sgd", "adam"):
        model = make_model(1, name)
        runs[name] = model, model.fit(X, Y, batch_size=64, epochs=EPOCHS, verbose=0).history
    return runs


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_four_batches_of_16_equal_one_batch_of_64(optimizer, large_batches):
    reference, reference_history = large_batches[optimizer]
    model = make_model(4, optimizer)
    history = model.fit(X, Y, batch_size=16, epochs=EPOCHS, verbose=0).history
    assert_same_params(model, reference)
    # The epoch's loss is the mean over every row, each computed with the params of its
    # group: the same numbers. The schedule advanced once per update.
    np.testing.assert_allclose(history["loss"], reference_history["loss"], rtol=1e-5)
    np.testing.assert_allclose(history["accuracy"], reference_history["accuracy"])
    assert int(model.states.optimizer_states.count) == UPDATES
    hyperparams = model.states.optimizer_states.hyperparams, reference.states.optimizer_states.hyperparams
    assert float(hyperparams[0]["learning_rate"]) == float(hyperparams[1]["learning_rate"])
    # The sums are emptied by the update at the end of each epoch.
    assert int(model.states.accumulated["batches"]) == 0
    assert float(model.states.accumulated["rows"]) == 0.0


@pytest.mark.parametrize(("steps_per_execution", "data_on_device"), [(8, False), (8, True), ("auto", True)])
def test_fused_steps_accumulate_alike(steps_per_execution, data_on_device, large_batches):
    """Groups of 4 batches inside executions of 8 (and 13 batches: the last execution
    partial), from the host and from data on the device."""
    reference, _ = large_batches["adam"]
    model = make_model(4, "adam", steps_per_execution=steps_per_execution)
    model.fit(X, Y, batch_size=16, epochs=EPOCHS, verbose=0, data_on_device=data_on_device)
    assert_same_params(model, reference)
    assert int(model.states.optimizer_states.count) == UPDATES


def bn_forward(x, training):
    x = hk.Linear(8)(x)
    x = hk.BatchNorm(create_scale=True, create_offset=True, decay_rate=0.9)(x, training)
    return hk.Linear(3)(jax.nn.relu(x))


class AfterEachBatch(Callback):
    """The params and the BatchNorm statistics after every batch of the first epoch."""

    def __init__(self):
        super().__init__()
        self.seen_params, self.seen_statistics = [], []

    def on_train_batch_end(self, batch, logs=None):
        states = jax.device_get(self.model.states)
        self.seen_params.append(leaves(states.net_params))
        self.seen_statistics.append(leaves(states.net_states))


def test_params_move_once_per_group_and_batchnorm_statistics_every_batch():
    model = make_model(3, "sgd", forward=bn_forward)
    record = AfterEachBatch()
    model.fit(X, Y, batch_size=32, epochs=1, verbose=0, callbacks=[record])  # 7 batches: 3 + 3 + 1
    initial = leaves(model.init(X[:32], Y[:32]).net_params)  # (already built: returns the current)
    moved = [not all(np.array_equal(a, b) for a, b in zip(now, before, strict=True))
             for now, before in zip(record.seen_params[1:], record.seen_params[:-1], strict=True)]  # fmt: skip
    # After batches 1 and 2 nothing moved yet, after 3 it did; the last (7th) batch alone
    # is applied when the epoch ends, after its on_train_batch_end.
    assert moved == [False, True, False, False, True, False]
    assert all(
        np.array_equal(a, b) for a, b in zip(record.seen_params[-1], record.seen_params[-2], strict=True)
    )
    assert not all(np.array_equal(a, b) for a, b in zip(initial, record.seen_params[-1], strict=True))
    for now, before in zip(record.seen_statistics[1:], record.seen_statistics[:-1], strict=True):
        assert not any(np.array_equal(a, b) for a, b in zip(now, before, strict=True))


def test_train_on_batch_accumulates_across_calls():
    """Four calls of 10 rows make one SGD update: that of one call on all 40 rows."""
    model, reference = make_model(4, "sgd"), make_model(1, "sgd")
    initial = None
    for i in range(4):
        model.train_on_batch(X[10 * i : 10 * (i + 1)], Y[10 * i : 10 * (i + 1)])
        if i == 0:
            initial = leaves(make_model(4, "sgd").init(X[:10], Y[:10]).net_params)
        if i < 3:
            assert all(
                np.array_equal(a, b) for a, b in zip(leaves(model.states.net_params), initial, strict=True)
            )
    reference.train_on_batch(X[:40], Y[:40])
    assert_same_params(model, reference)
    assert int(model.states.optimizer_states.count) == 1


@pytest.mark.parametrize("bad", [0, -2, 2.5, "4"])
def test_a_bad_number_of_steps_names_the_argument(bad):
    with pytest.raises((ValueError, TypeError), match="gradient_accumulation_steps"):
        make_model(bad)


def float16_model(k):
    return elegy.Model(
        mlp_forward,
        loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer=optax.adam(1e-2),
        dtype_policy="mixed_float16",
        gradient_accumulation_steps=k,
        steps_per_execution=1,
    )


def test_an_overflowing_float16_batch_counts_in_its_group_but_adds_nothing():
    """Under mixed_float16 a batch whose scaled gradients overflow halves the scale and
    adds nothing to the sums; the group's update, on its second batch, is then that of
    the second batch alone (had the inf entered the sums, every param would be NaN)."""
    model = float16_model(2)
    model.train_on_batch(X[:16] * 1e3, Y[:16])  # overflows at the initial scale, 2**15
    assert float(model.states.loss_scale["scale"]) == 2.0**14
    assert int(model.states.accumulated["batches"]) == 1
    assert float(model.states.accumulated["rows"]) == 0.0
    assert all(not leaf.any() for leaf in leaves(model.states.accumulated["gradients"]))
    model.train_on_batch(X[16:32], Y[16:32])
    reference = float16_model(1)
    reference.train_on_batch(X[16:32], Y[16:32])
    assert int(model.states.optimizer_states[0].count) == 1
    assert_same_params(model, reference)

"""Checks on 4 CPU devices, run by `tests/test_distributed.py` in a subprocess.

`XLA_FLAGS=--xla_force_host_platform_device_count=4` must be set before JAX starts, so
these run in a process of their own and the flag never reaches the rest of the suite.
Each check compares a distributed fit with a one-device fit of the same model, seed and
global batch size.
"""

import os

import jax
import numpy as np
import optax
import pytest
from jax.sharding import PartitionSpec as P
from tests import conftest
from tests.conftest import blobs, mlp_forward

import elegy

X, Y = blobs(130)  # batches of 30: 4 full ones and a ragged one of 10 rows
VX, VY = blobs(50, seed=1)
LAYOUT = {"linear_0/w": P(None, "model"), "linear_1/w": P("model", None)}


class TraceCounter(conftest.TraceCounter, elegy.Model):
    pass


class AccumulatingModel(elegy.Model):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, gradient_accumulation_steps=2, **kwargs)


def make_model(distribution=None, steps=1, cls=TraceCounter):
    return cls(
        mlp_forward,
        loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        optimizer=optax.adam(1e-2),
        steps_per_execution=steps,
        distribution=distribution,
    )


def fit(model, batch_size):
    return model.fit(X, Y, batch_size=batch_size, epochs=3, verbose=0, validation_data=(VX, VY)).history


def assert_same_training(reference, model, reference_history, history):
    assert history.keys() == reference_history.keys()
    for name, values in reference_history.items():
        np.testing.assert_allclose(history[name], values, rtol=1e-5, atol=1e-6, err_msg=name)
    for path, expected in jax.tree_util.tree_flatten_with_path(reference.states.net_params)[0]:
        actual = dict(jax.tree_util.tree_flatten_with_path(model.states.net_params)[0])[path]
        np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), atol=1e-5, err_msg=str(path))


def test_four_devices_are_visible():
    assert jax.device_count() == 4


@pytest.mark.parametrize(("batch_size", "steps"), [(30, 1), (32, 1), (30, 3)])
def test_data_parallel_equals_one_device(batch_size, steps):
    """30 does not divide by 4 devices (padded to 32, masked); 130 rows leave a ragged
    last batch; steps=3 fuses steps over the mesh too."""
    reference, model = make_model(), make_model(elegy.distributed.DataParallel(), steps)
    reference_history, history = fit(reference, batch_size), fit(model, batch_size)
    assert_same_training(reference, model, reference_history, history)
    for name, value in reference.evaluate(X, Y, batch_size=batch_size, verbose=0).items():
        np.testing.assert_allclose(
            model.evaluate(X, Y, batch_size=batch_size, verbose=0)[name], value, rtol=1e-5
        )
    np.testing.assert_allclose(model.predict(X, batch_size=batch_size), reference.predict(X), atol=1e-5)
    # one compilation per step function: init, train, and test/predict (training=False);
    # fused, 5 batches make a group of 3 and 2 alone: each program compiles fused and alone
    programs = 1 if steps == 1 else 2
    assert dict(model.traces) == {(True, True): 1, (False, True): programs, (False, False): 2 * programs}


def test_gradient_accumulation_over_the_mesh_equals_one_large_batch_on_one_device():
    """Two batches of 15 (each padded to 16 over the 4 devices) make one update: that of
    one batch of 30 on one device; 130 rows leave a partial last group (one batch of 10)."""
    reference = make_model()
    model = make_model(elegy.distributed.DataParallel(), cls=AccumulatingModel)
    assert_same_training(reference, model, fit(reference, 30), fit(model, 15))


def test_data_parallel_replicates_states_and_splits_batches():
    distribution = elegy.distributed.DataParallel()
    model = make_model(distribution)
    fit(model, 30)
    for leaf in jax.tree_util.tree_leaves(dict(model.states)):
        assert leaf.sharding.is_fully_replicated
    batch = next(iter(model._plan().executions(elegy.data.make_source(X, Y, batch_size=30), 0))).batches
    assert batch.x.shape == (32, 4) and batch.x.sharding.spec == P("batch")
    assert sorted(shard.data.shape[0] for shard in batch.x.addressable_shards) == [8, 8, 8, 8]
    np.testing.assert_array_equal(np.asarray(batch.mask), np.arange(32) < 30)


def test_model_parallel_equals_one_device_and_shards_params_and_adam_state():
    distribution = elegy.distributed.ModelParallel((2, 2), ("batch", "model"), LAYOUT)
    reference, model = make_model(), make_model(distribution)
    assert_same_training(reference, model, fit(reference, 30), fit(model, 30))
    params = model.states.net_params
    assert params["mlp/~/linear_0"]["w"].sharding.spec == P(None, "model")
    assert params["mlp/~/linear_1"]["w"].sharding.spec == P("model", None)
    assert params["mlp/~/linear_0"]["b"].sharding.spec == P()  # unmatched: replicated
    adam = model.states.optimizer_states[0]
    for moments in (adam.mu, adam.nu):
        assert moments["mlp/~/linear_0"]["w"].sharding.spec == P(None, "model")
        assert moments["mlp/~/linear_1"]["w"].sharding.spec == P("model", None)
    # each device holds half of the first layer's columns, not the whole matrix
    shapes = {shard.data.shape for shard in params["mlp/~/linear_0"]["w"].addressable_shards}
    assert shapes == {(4, 8)}


def test_save_on_four_devices():
    """Writes a save and its predictions; the parent process loads it on one device."""
    out = os.environ.get("ELEGY_DISTRIBUTED_OUT")
    if out is None:
        pytest.skip("run by tests/test_distributed.py, which reads the save back")
    # (a plain Model: the parent process must be able to import the saved class)
    model = make_model(elegy.distributed.ModelParallel((2, 2), layout=LAYOUT), cls=elegy.Model)
    fit(model, 30)
    model.save(os.path.join(out, "model"))
    np.save(os.path.join(out, "predictions.npy"), model.predict(X, batch_size=30))

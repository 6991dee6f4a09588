"""model.summary: rows per Haiku module, totals that agree with the States, no side effects."""

import re

import haiku as hk
import jax
import numpy as np
import optax
import pytest
from tests.conftest import blobs, bn_dropout_forward

import elegy
from elegy.summary import human_bytes

X, Y = blobs(24)


class Block(hk.Module):
    def __call__(self, x):
        return hk.nets.MLP([8, 8])(x) + hk.Linear(8)(x)


def nested_forward(x, training):
    return bn_dropout_forward(Block()(x), training)


def make_model(module=nested_forward):
    return elegy.Model(
        module, loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True), optimizer=optax.adam(1e-2)
    )


def rows(table):
    """{module name: (output, params, bytes, states)} from the printed table."""
    found = {}
    for line in table.splitlines():
        match = re.match(r"^(\s*)(\S+)\s+(\S+)\s+([\d,]+)\s+([\d.]+ \w+)\s+([\d,]+)$", line)
        if match and match.group(2) != "Module":
            found[match.group(2)] = (
                match.group(3),
                int(match.group(4).replace(",", "")),
                match.group(5),
                int(match.group(6).replace(",", "")),
            )
    return found


def size(tree):
    return sum(int(np.size(leaf)) for leaf in jax.tree_util.tree_leaves(tree))


def nbytes(tree):
    return sum(np.asarray(leaf).nbytes for leaf in jax.tree_util.tree_leaves(tree))


def owned(tree, name):
    """Leaves of a Haiku params/state dict that belong to module `name` or its submodules."""
    return {k: v for k, v in tree.items() if k == name or k.startswith(name + "/")}


def test_totals_match_the_trained_states():
    model = make_model()
    model.fit(X, Y, epochs=1, verbose=0)
    table = model.summary(X, print_fn=None)
    params, states = model.states.net_params, model.states.net_states
    assert f"Total params: {size(params):,} ({human_bytes(nbytes(params))})" in table
    assert f"Total states (non-trainable): {size(states):,} ({human_bytes(nbytes(states))})" in table
    assert f"Total bytes: {human_bytes(nbytes(params) + nbytes(states))}" in table


def test_each_row_counts_what_its_module_owns():
    model = make_model()
    model.init(X, Y)
    table = model.summary(X, depth=3, print_fn=None)
    params, states = model.states.net_params, model.states.net_states
    found = rows(table)
    assert set(found) == {
        "block", "block/mlp", "block/mlp/~/linear_0", "block/mlp/~/linear_1", "block/linear",
        "linear", "batch_norm", "batch_norm/~/mean_ema", "batch_norm/~/var_ema", "linear_1",
    }  # fmt: skip
    for name, (_, count, _, state_count) in found.items():
        assert count == size(owned(params, name)), name
        assert state_count == size(owned(states, name)), name
    assert found["batch_norm"][3] == 2 * (16 + 16 + 1)  # two EMAs: hidden, average, counter


def test_outputs_are_shapes_and_dtypes_for_the_given_input():
    model = make_model()
    found = rows(model.summary(X[:5], print_fn=None))
    assert found["block"][0] == "f32[5,8]"
    assert found["linear_1"][0] == "f32[5,3]"
    assert model.predict(X[:5]).shape == (5, 3)


def test_depth_limits_the_nesting():
    model = make_model()
    assert set(rows(model.summary(X, depth=1, print_fn=None))) == {
        "block",
        "linear",
        "batch_norm",
        "linear_1",
    }
    assert "block/mlp/~/linear_0" not in rows(model.summary(X, depth=2, print_fn=None))


def test_summary_before_training_leaves_the_model_unbuilt():
    model = make_model()
    table = model.summary(X, print_fn=None)
    assert not model.built
    model.init(X, Y)
    assert model.summary(X, print_fn=None) == table  # the abstract totals were the real ones


def test_summary_after_training_does_not_change_the_states():
    model = make_model()
    model.fit(X, Y, epochs=1, verbose=0)
    before = model.states
    model.summary(X, print_fn=None)
    assert model.states is before


def test_without_x_the_batch_the_model_was_built_with_is_used():
    model = make_model()
    with pytest.raises(ValueError, match="pass x"):
        model.summary()
    model.fit(X, Y, batch_size=8, epochs=1, verbose=0)
    assert model.summary(print_fn=None) == model.summary(X[:8], print_fn=None)
    assert rows(model.summary(print_fn=None))["linear_1"][0] == "f32[8,3]"


def test_shape_dtype_structs_are_enough():
    spec = jax.ShapeDtypeStruct((2, 4), np.float32)
    assert rows(make_model().summary(spec, print_fn=None))["linear_1"][0] == "f32[2,3]"


def test_prints_with_print_fn_and_returns_the_table():
    printed = []
    table = make_model().summary(X, print_fn=printed.append)
    assert printed == [table]


@pytest.mark.parametrize(
    "module",
    [
        lambda: hk.nets.MLP([8, 3]),
        hk.transform_with_state(lambda x, is_training: hk.nets.MLP([8, 3])(x)),
        hk.without_apply_rng(hk.transform(lambda x: hk.nets.MLP([8, 3])(x))),
    ],
    ids=["factory", "transformed_with_flag", "transformed_without_rng"],
)
def test_every_module_form_is_summarised(module):
    found = rows(make_model(module).summary(X, print_fn=None))
    assert found["mlp"][1] == 4 * 8 + 8 + 8 * 3 + 3


def test_bad_depth_is_named():
    with pytest.raises(ValueError, match="depth must be an integer >= 1, got 0"):
        make_model().summary(X, depth=0)


def test_a_model_without_module_says_so():
    with pytest.raises(ValueError, match="module is None"):
        elegy.Model(loss="mse").summary(X)


@pytest.mark.parametrize(
    "count, text", [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (3 * 2**20, "3.0 MiB")]
)
def test_human_bytes(count, text):
    assert human_bytes(count) == text


def test_a_network_that_reports_add_loss_is_summarised_before_and_after_fit(tmp_path):
    """The summary traces the network outside a step: its add_loss/add_metric values are
    dropped there, not an error (TensorBoard writes the summary after the first epoch)."""

    def penalised(x):
        y = hk.Linear(3)(x)
        elegy.add_loss("activity", 1e-3 * jax.numpy.mean(y**2))
        elegy.add_metric("mean_output", jax.numpy.mean(y))
        return y

    model = make_model(penalised)
    before = rows(model.summary(X, print_fn=None))
    history = model.fit(
        X, Y, epochs=1, batch_size=8, verbose=0, callbacks=[elegy.callbacks.TensorBoard(tmp_path)]
    )
    assert {"activity_loss", "mean_output"} <= set(history.history)
    assert rows(model.summary(X, print_fn=None)) == before
    assert before["linear"][1] == 4 * 3 + 3

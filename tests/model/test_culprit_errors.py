"""Mistakes that used to fail deep inside Haiku, a broadcast or as a NaN loss now raise an
error that names the culprit, before the model keeps any States."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from tests.conftest import blobs, mlp_forward

import elegy

X, Y = blobs(32)


def model(module=mlp_forward, **options):
    options.setdefault("loss", elegy.losses.SparseCategoricalCrossentropy(from_logits=True))
    return elegy.Model(module, optimizer=optax.sgd(0.1), **options)


def fit(m, x, y=Y):
    return m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)


def assert_untouched(m):
    assert m.states.net_params is None and not m.initialized


def test_integer_x_names_the_module_x_and_its_dtype():
    m = model()
    with pytest.raises(
        TypeError, match=r"Linear 'mlp/~/linear_0' received integer inputs \(int32\[8, 4\]\)"
    ) as error:
        fit(m, X.astype(np.int32))
    assert "x is int32: cast it, e.g. x.astype('float32')" in str(error.value)
    assert_untouched(m)


def test_integer_leaf_of_a_dict_x_is_named_by_its_path():
    m = model(lambda x: mlp_forward(x["rows"]))
    with pytest.raises(TypeError, match=r"x\['rows'\] is int32"):
        fit(m, {"rows": X.astype(np.int32), "ids": np.zeros(32, np.float32)})


def test_integer_x_into_an_embedding_still_trains():
    def forward(ids):  # token ids are integers, as hk.Embed wants them
        return hk.Linear(3)(hk.Embed(10, 4)(ids).mean(axis=1))

    ids = np.arange(32 * 5).reshape(32, 5) % 10
    history = fit(model(forward), ids)
    assert np.isfinite(history.history["loss"][0])


def test_a_dict_x_without_the_key_the_network_reads_lists_the_keys_given():
    m = model(lambda x: mlp_forward(x["image"]))
    with pytest.raises(
        KeyError,
        match=r"the network looked up the key 'image', which x does not have \(x's keys: \['img', 'label'\]",
    ):
        fit(m, {"img": X, "label": Y.astype(np.float32)})
    assert_untouched(m)


def test_a_key_error_of_the_network_s_own_is_left_as_it_is():
    def forward(x):
        return mlp_forward({"a": x["rows"]}["b"])

    with pytest.raises(KeyError, match=r"^'b'"):
        fit(model(forward), {"rows": X, "b": X})  # 'b' is a key of x: not x's fault


def test_a_loss_of_the_wrong_shape_names_the_loss_and_both_shapes():
    def mean_over_batch(y_true, y_pred):  # reduces the wrong axis: one value per class
        return jnp.mean(y_pred**2, axis=0)

    m = model(loss=mean_over_batch)
    with pytest.raises(
        ValueError, match=r"loss 'mean_over_batch' returned values of shape \(3,\), but the batch has 8 rows"
    ):
        fit(m, X)
    assert_untouched(m)


@pytest.mark.parametrize("metrics", [None, ["accuracy"]])
def test_sparse_labels_out_of_range_fail_on_the_first_batch(metrics):
    y = Y.copy()
    y[5] = 7  # the network predicts 3 classes
    m = model(metrics=metrics)
    with pytest.raises(
        ValueError,
        match=r"in the first batch, sparse_categorical_crossentropy: labels must be class indices in \[0, 3\), got 7",
    ):
        fit(m, X, y)
    assert_untouched(m)


def test_negative_labels_fail_and_the_ignored_class_does_not():
    y = Y.copy()
    y[0] = -1
    with pytest.raises(ValueError, match=r"got -1"):
        fit(model(), X, y)
    ignoring = elegy.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1)
    history = fit(model(loss=ignoring), X, y)
    assert np.isfinite(history.history["loss"][0])


def test_the_value_check_costs_nothing_after_initialization():
    """Only the first batch is checked: later steps compile without the check (XLA drops
    what nobody reads), so a bad label later gives the documented NaN, caught by the step's
    non-finite guard, and the params stay those before it."""
    y = Y.copy()
    y[-1] = 9  # in the last batch
    m = model()
    with pytest.warns(RuntimeWarning, match="non-finite loss"):
        history = fit(m, X, y)
    assert np.isnan(history.history["loss"][0])
    assert all(np.isfinite(leaf).all() for leaf in jax.tree_util.tree_leaves(m.states.net_params))


def test_a_normalization_without_parameters_still_reads_integers():
    def forward(x):  # LayerNorm without scale or offset creates no parameters
        return hk.Linear(3)(hk.LayerNorm(-1, create_scale=False, create_offset=False)(x).astype(jnp.float32))

    history = fit(model(forward), X.astype(np.int32))
    assert np.isfinite(history.history["loss"][0])


def test_labels_checked_inside_a_vmap_are_left_to_the_loss():
    """A sparse loss vmapped over time steps: its labels are values of the inner
    transformation, which cannot leave it, so they are not checked (and nothing breaks)."""
    from elegy.losses import sparse_categorical_crossentropy

    def per_time_step(y_true, y_pred):
        def one_step(labels, logits):
            return sparse_categorical_crossentropy(labels, logits, from_logits=True)

        return jax.vmap(one_step, in_axes=1, out_axes=1)(y_true, y_pred).mean(axis=-1)

    x = np.repeat(X[:, None, :], 5, axis=1)
    y = np.repeat(Y[:, None], 5, axis=1)
    history = fit(model(lambda v: hk.Linear(3)(v), loss=per_time_step), x, y)
    assert np.isfinite(history.history["loss"][0])


def test_a_loss_called_on_its_own_may_broadcast_its_weight():
    loss = elegy.losses.MeanSquaredError()
    value = loss(jnp.zeros((4, 2)), jnp.ones((4, 2)), sample_weight=jnp.array([2.0]))
    assert float(value) == 2.0

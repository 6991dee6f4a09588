"""Unit tests for elegy.losses: per-sample functions, reductions, weights, masks and `get`.

Every expected value comes from an independent oracle: optax, scikit-learn or a numpy
formula written out here.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from sklearn.metrics import log_loss
from sklearn.metrics import mean_squared_error as sk_mean_squared_error

from elegy import losses
from elegy.losses import (
    Loss,
    LossFunctionWrapper,
    MeanSquaredError,
    SparseCategoricalCrossentropy,
    mean_squared_error,
    sparse_categorical_crossentropy,
)

REDUCTIONS = ["sum_over_batch_size", "sum", "none"]

LOGITS = np.array([[2.0, -1.0, 0.5], [0.1, 0.2, 0.3], [-3.0, 4.0, 1.0], [1.5, 1.5, -2.0]], np.float32)
LABELS = np.array([0, 2, 1, 1], np.int32)
SAMPLE_WEIGHT = np.array([1.0, 0.5, 2.0, 0.0], np.float32)

REG_TRUE = np.array([[0.0, 1.0], [2.0, -1.0], [0.5, 0.5], [3.0, 0.0]], np.float32)
REG_PRED = np.array([[1.0, 1.0], [0.0, 0.0], [0.5, 1.5], [1.0, 2.0]], np.float32)


def ce_oracle(labels, logits):
    return np.asarray(optax.softmax_cross_entropy_with_integer_labels(logits, labels))


def mse_oracle(y_true, y_pred):
    return np.mean((np.asarray(y_pred) - np.asarray(y_true)) ** 2, axis=-1)


# (loss object factory, y_true, y_pred, per-sample oracle)
CASES = {
    "sparse_ce_logits": (
        lambda **kw: SparseCategoricalCrossentropy(from_logits=True, **kw),
        LABELS,
        LOGITS,
        ce_oracle,
    ),
    "mse": (lambda **kw: MeanSquaredError(**kw), REG_TRUE, REG_PRED, mse_oracle),
}


def reduce_oracle(values, weights, reduction):
    """Keras's reductions written out: weights multiply, sum_over_batch_size divides by n."""
    weighted = values * (np.ones_like(values) if weights is None else weights)
    if reduction == "none":
        return weighted
    if reduction == "sum":
        return weighted.sum()
    return weighted.sum() / len(values)


def pad_rows(a, size):
    """Pad the first axis to `size` by repeating rows, as elegy.data does."""
    a = np.asarray(a)
    return a[np.arange(size) % len(a)]


# --- per-sample functions -------------------------------------------------------------


def test_sparse_ce_from_logits_matches_optax_per_sample():
    values = sparse_categorical_crossentropy(LABELS, LOGITS, from_logits=True)
    np.testing.assert_allclose(values, ce_oracle(LABELS, LOGITS), rtol=1e-6, atol=1e-6)


def test_sparse_ce_probabilities_sum_matches_sklearn_log_loss():
    probs = np.asarray(jax.nn.softmax(LOGITS, axis=-1))
    loss = SparseCategoricalCrossentropy(reduction="sum")
    result = loss(LABELS, probs, sample_weight=SAMPLE_WEIGHT)
    expected = log_loss(LABELS, probs, labels=[0, 1, 2], sample_weight=SAMPLE_WEIGHT, normalize=False)
    np.testing.assert_allclose(result, expected, rtol=1e-5)


def test_sparse_ce_unnormalised_probabilities_are_normalised_per_row():
    probs = np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]], np.float32)
    scale = np.array([[3.0], [0.5]], np.float32)
    values = sparse_categorical_crossentropy(np.array([2, 1]), probs * scale)
    np.testing.assert_allclose(values, [-math.log(0.5), -math.log(0.3)], rtol=1e-5)


def test_mse_per_sample_is_mean_over_last_axis():
    values = mean_squared_error(REG_TRUE, REG_PRED)
    # hand computed: ((1)^2 + 0)/2, (4 + 1)/2, (0 + 1)/2, (4 + 4)/2
    np.testing.assert_allclose(values, [0.5, 2.5, 0.5, 4.0], rtol=1e-6)


def test_mse_sum_over_batch_size_matches_sklearn():
    result = MeanSquaredError()(REG_TRUE, REG_PRED)
    np.testing.assert_allclose(result, sk_mean_squared_error(REG_TRUE, REG_PRED), rtol=1e-6)


def test_mse_accepts_vector_targets_for_single_output():
    y_true = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    y_pred = np.array([[1.5], [2.0], [2.0], [6.0]], np.float32)
    result = MeanSquaredError(reduction="none")(y_true, y_pred)
    np.testing.assert_allclose(result, [0.25, 0.0, 1.0, 4.0], rtol=1e-6)


def test_sparse_ce_accepts_column_labels():
    column = sparse_categorical_crossentropy(LABELS[:, None], LOGITS, from_logits=True)
    np.testing.assert_allclose(column, ce_oracle(LABELS, LOGITS), rtol=1e-6, atol=1e-6)


# --- reductions, sample_weight, mask, weight ------------------------------------------


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_reduction_with_sample_weight_matches_oracle(case, reduction):
    make, y_true, y_pred, per_sample = CASES[case]
    result = make(reduction=reduction)(y_true, y_pred, sample_weight=SAMPLE_WEIGHT)
    expected = reduce_oracle(per_sample(y_true, y_pred), SAMPLE_WEIGHT, reduction)
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_reduction_without_sample_weight_matches_oracle(case, reduction):
    make, y_true, y_pred, per_sample = CASES[case]
    result = make(reduction=reduction)(y_true, y_pred)
    expected = reduce_oracle(per_sample(y_true, y_pred), None, reduction)
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-6)


def test_sum_over_batch_size_divides_by_rows_not_by_weight_sum():
    y_true = np.zeros((4, 1), np.float32)
    y_pred = np.array([[2.0], [1.0], [1.0], [1.0]], np.float32)
    result = MeanSquaredError()(y_true, y_pred, sample_weight=np.array([1.0, 0.0, 0.0, 0.0]))
    assert float(result) == pytest.approx(4.0 / 4)


@pytest.mark.parametrize("with_sample_weight", [True, False], ids=["weighted", "unweighted"])
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum"])
def test_padded_masked_batch_equals_real_rows_only(case, reduction, with_sample_weight):
    make, y_true, y_pred, per_sample = CASES[case]
    real = 3
    weights = SAMPLE_WEIGHT[:real] if with_sample_weight else None
    size = 6
    mask = np.arange(size) < real
    loss = make(reduction=reduction)
    padded = loss(
        pad_rows(y_true[:real], size),
        pad_rows(y_pred[:real], size),
        sample_weight=None if weights is None else pad_rows(weights, size),
        mask=mask,
    )
    expected = reduce_oracle(per_sample(y_true[:real], y_pred[:real]), weights, reduction)
    np.testing.assert_allclose(padded, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", sorted(CASES))
def test_reduction_none_zeroes_masked_rows_and_keeps_real_ones(case):
    make, y_true, y_pred, per_sample = CASES[case]
    real, size = 3, 6
    result = np.asarray(
        make(reduction="none")(
            pad_rows(y_true[:real], size),
            pad_rows(y_pred[:real], size),
            sample_weight=pad_rows(SAMPLE_WEIGHT[:real], size),
            mask=np.arange(size) < real,
        )
    )
    expected_real = per_sample(y_true[:real], y_pred[:real]) * SAMPLE_WEIGHT[:real]
    np.testing.assert_allclose(result[:real], expected_real, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(result[real:], np.zeros(size - real))


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_weight_factor_scales_the_reduced_loss(case, reduction):
    make, y_true, y_pred, per_sample = CASES[case]
    result = make(reduction=reduction, weight=0.25)(y_true, y_pred, sample_weight=SAMPLE_WEIGHT)
    expected = 0.25 * reduce_oracle(per_sample(y_true, y_pred), SAMPLE_WEIGHT, reduction)
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_loss_under_jit_matches_eager_and_oracle(case, reduction):
    make, y_true, y_pred, per_sample = CASES[case]
    loss = make(reduction=reduction)
    size, real = 6, 4
    args = (
        pad_rows(y_true, size),
        pad_rows(y_pred, size),
        pad_rows(SAMPLE_WEIGHT, size),
        np.arange(size) < real,
    )
    jitted = jax.jit(lambda yt, yp, w, m: loss(yt, yp, sample_weight=w, mask=m))(*args)
    eager = loss(*args[:2], sample_weight=args[2], mask=args[3])
    np.testing.assert_allclose(jitted, eager, rtol=1e-6, atol=1e-7)
    expected = reduce_oracle(per_sample(y_true, y_pred), SAMPLE_WEIGHT, reduction)
    if reduction == "none":
        jitted = np.asarray(jitted)[:real]
    np.testing.assert_allclose(jitted, expected, rtol=1e-5, atol=1e-6)


# --- numerical stability ----------------------------------------------------------------


def test_from_logits_with_huge_logits_is_finite_and_exact():
    logits = np.array([[1e4, 0.0, -1e4]] * 3, np.float32)
    labels = np.array([0, 1, 2])
    values = np.asarray(SparseCategoricalCrossentropy(from_logits=True, reduction="none")(labels, logits))
    assert np.all(np.isfinite(values))
    # hand computed: log-sum-exp is 1e4, so the losses are 1e4 - logit
    np.testing.assert_allclose(values, [0.0, 1e4, 2e4], rtol=1e-6)
    np.testing.assert_allclose(values, ce_oracle(labels, logits), rtol=1e-6)


def test_from_logits_with_huge_logits_has_finite_gradient():
    logits = jnp.array([[1e4, 0.0, -1e4], [-1e4, 1e4, 0.0]], jnp.float32)
    labels = jnp.array([2, 1])
    grads = jax.jit(jax.grad(lambda z: SparseCategoricalCrossentropy(from_logits=True)(labels, z)))(logits)
    expected = np.asarray(
        jax.jit(jax.grad(lambda z: optax.softmax_cross_entropy_with_integer_labels(z, labels).mean()))(logits)
    )
    assert np.all(np.isfinite(np.asarray(grads)))
    np.testing.assert_allclose(grads, expected, atol=1e-6)


def test_probabilities_zero_and_one_give_finite_clipped_values():
    probs = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]], np.float32)
    labels = np.array([0, 1])
    values = np.asarray(SparseCategoricalCrossentropy(reduction="none")(labels, probs))
    assert np.all(np.isfinite(values))
    # probability 1 gives -log(1 - 1e-7) ~ 0; probability 0 gives -log(1e-7)
    np.testing.assert_allclose(values, [0.0, -math.log(1e-7)], rtol=1e-5, atol=1e-6)


def test_probabilities_zero_and_one_give_finite_gradient():
    probs = jnp.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]], jnp.float32)
    labels = jnp.array([0, 1])
    grads = jax.jit(jax.grad(lambda p: SparseCategoricalCrossentropy()(labels, p)))(probs)
    assert np.all(np.isfinite(np.asarray(grads)))


# --- shape errors -----------------------------------------------------------------------


@pytest.mark.parametrize("fn", [mean_squared_error, MeanSquaredError()], ids=["function", "class"])
def test_mse_shape_mismatch_raises_naming_both_shapes(fn):
    with pytest.raises(ValueError) as info:
        fn(np.zeros(4, np.float32), np.zeros((4, 3), np.float32))
    message = str(info.value)
    assert "(4,)" in message and "(4, 3)" in message


@pytest.mark.parametrize("label_shape", [(4, 2), (3,), (4, 3), (2, 2)])
def test_sparse_ce_wrong_label_shape_raises_naming_shapes(label_shape):
    with pytest.raises(ValueError) as info:
        SparseCategoricalCrossentropy(from_logits=True)(np.zeros(label_shape, np.int32), LOGITS)
    message = str(info.value)
    assert str(label_shape) in message and str(LOGITS.shape) in message


# --- configuration, naming, get ---------------------------------------------------------


def test_invalid_reduction_raises_listing_valid_ones():
    with pytest.raises(ValueError, match="sum_over_batch_size"):
        MeanSquaredError(reduction="mean")


@pytest.mark.parametrize(
    "loss, name",
    [
        (SparseCategoricalCrossentropy(), "sparse_categorical_crossentropy"),
        (MeanSquaredError(), "mean_squared_error"),
        (MeanSquaredError(name="my_mse"), "my_mse"),
    ],
)
def test_loss_name_defaults_to_snake_case_class_name(loss, name):
    assert loss.name == name


def test_loss_subclass_call_is_reduced_and_named():
    class AbsoluteError(Loss):
        def call(self, y_true, y_pred):
            return jnp.abs(y_pred - y_true)

    loss = AbsoluteError(reduction="sum")
    y_true, y_pred = np.array([1.0, 2.0, 3.0]), np.array([2.0, 0.0, 3.5])
    assert loss.name == "absolute_error"
    assert float(loss(y_true, y_pred, sample_weight=np.array([1.0, 2.0, 4.0]))) == pytest.approx(
        1.0 * 1 + 2.0 * 2 + 0.5 * 4
    )


def test_loss_without_targets_raises():
    with pytest.raises(ValueError, match="y is None"):
        MeanSquaredError()(None, REG_PRED)


@pytest.mark.parametrize(
    "name, cls, y_true, y_pred, oracle",
    [
        (
            "sparse_categorical_crossentropy",
            SparseCategoricalCrossentropy,
            LABELS,
            np.asarray(jax.nn.softmax(LOGITS)),
            lambda t, p: log_loss(t, p, labels=[0, 1, 2]),
        ),
        ("mean_squared_error", MeanSquaredError, REG_TRUE, REG_PRED, sk_mean_squared_error),
        ("mse", MeanSquaredError, REG_TRUE, REG_PRED, sk_mean_squared_error),
    ],
)
def test_get_by_name_builds_named_loss(name, cls, y_true, y_pred, oracle):
    loss = losses.get(name)
    assert type(loss) is cls
    assert loss.name == name
    np.testing.assert_allclose(loss(y_true, y_pred), oracle(y_true, y_pred), rtol=1e-5)


def test_get_returns_loss_instance_unchanged():
    loss = MeanSquaredError(weight=3.0)
    assert losses.get(loss) is loss


def test_get_wraps_per_sample_function():
    def absolute_error(y_true, y_pred):
        return jnp.abs(y_pred - y_true)

    loss = losses.get(absolute_error)
    assert isinstance(loss, LossFunctionWrapper)
    assert loss.name == "absolute_error"
    y_true, y_pred = np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 1.0, 0.0, 3.5])
    np.testing.assert_allclose(loss(y_true, y_pred), np.mean(np.abs(y_pred - y_true)), rtol=1e-6)


def test_get_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as info:
        losses.get("hinge_like")
    message = str(info.value)
    assert "hinge_like" in message
    for valid in ("mean_squared_error", "mse", "sparse_categorical_crossentropy"):
        assert valid in message


def test_get_rejects_non_callable():
    with pytest.raises(TypeError, match="int"):
        losses.get(3)


def test_function_wrapper_passes_kwargs():
    def scaled_error(y_true, y_pred, scale):
        return scale * jnp.abs(y_pred - y_true)

    loss = LossFunctionWrapper(scaled_error, reduction="sum", scale=3.0)
    assert float(loss(np.array([0.0, 1.0]), np.array([1.0, 3.0]))) == pytest.approx(3.0 * (1 + 2))


def test_function_wrapper_uses_scalar_result_as_is_times_weight():
    def batch_max_error(y_true, y_pred):
        return jnp.max(jnp.abs(y_pred - y_true))

    loss = LossFunctionWrapper(batch_max_error, weight=2.0)
    result = loss(
        np.array([0.0, 1.0, 2.0]), np.array([0.5, 4.0, 2.0]), sample_weight=np.array([0.0, 0.0, 1.0])
    )
    assert float(result) == pytest.approx(2.0 * 3.0)

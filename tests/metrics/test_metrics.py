"""Unit tests for elegy.metrics: Mean accumulation, metric wrappers, built-ins and `get`.

Expected values come from numpy (np.mean / np.average), scikit-learn (accuracy_score and
mean_squared_error with sample_weight) or hand computation, never from elegy itself.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.metrics import accuracy_score
from sklearn.metrics import mean_squared_error as sk_mean_squared_error

from elegy import metrics
from elegy.metrics import Mean, MeanMetricWrapper, MeanSquaredError, SparseCategoricalAccuracy

BATCH = 4  # fixed padded batch size, as the data pipeline produces

# 9 samples, 3 classes; split into batches of unequal real sizes 4, 2 and 3
LOGITS = np.array(
    [
        [2.0, 0.1, 0.3],
        [0.1, 0.9, 0.2],
        [0.3, 0.2, 0.8],
        [1.0, 1.2, 0.1],
        [0.5, 0.1, 0.0],
        [0.0, 0.2, 0.1],
        [0.9, 0.3, 0.4],
        [0.1, 0.0, 3.0],
        [0.2, 0.7, 0.1],
    ],
    np.float32,
)
LABELS = np.array([0, 1, 1, 1, 2, 1, 0, 2, 0])
WEIGHTS = np.array([1.0, 2.0, 0.5, 1.0, 3.0, 0.0, 1.5, 1.0, 2.5], np.float32)
REG_TRUE = np.array(
    [
        [0.0, 1.0],
        [2.0, -1.0],
        [0.5, 0.5],
        [3.0, 0.0],
        [1.0, 1.0],
        [0.0, 0.0],
        [-1.0, 2.0],
        [0.3, 0.3],
        [4.0, 4.0],
    ],
    np.float32,
)
REG_PRED = np.array(
    [
        [1.0, 1.0],
        [0.0, 0.0],
        [0.5, 1.5],
        [1.0, 2.0],
        [1.0, 0.0],
        [0.5, 0.5],
        [-1.0, 1.0],
        [0.3, 0.0],
        [2.0, 5.0],
    ],
    np.float32,
)
SPLITS = [slice(0, 4), slice(4, 6), slice(6, 9)]


def pad_rows(a, size=BATCH):
    a = np.asarray(a)
    return a[np.arange(size) % len(a)]


def padded_batches(*arrays):
    """(padded arrays..., mask) for each split, padded to BATCH by repeating real rows."""
    for part in SPLITS:
        rows = part.stop - part.start
        yield tuple(pad_rows(a[part]) for a in arrays) + (np.arange(BATCH) < rows,)


def accumulate(metric, y_true, y_pred, weights=None, jit=False, masked=True):
    update = jax.jit(metric.update) if jit else metric.update
    state = metric.init()
    if masked:
        arrays = (y_true, y_pred) + (() if weights is None else (weights,))
        for batch in padded_batches(*arrays):
            yt, yp, *rest = batch
            w = rest[0] if weights is not None else None
            state = update(state, yt, yp, w, rest[-1])
    else:
        for part in SPLITS:
            state = update(state, y_true[part], y_pred[part], None if weights is None else weights[part])
    return float(metric.compute(state))


# --- Mean ----------------------------------------------------------------------------------


def test_mean_of_unequal_batches_is_mean_over_all_samples():
    values = np.arange(9, dtype=np.float32) ** 2
    mean = Mean()
    state = mean.init()
    for part in SPLITS:
        state = mean.update(state, values[part])
    assert float(mean.compute(state)) == pytest.approx(np.mean(values))


def test_weighted_mean_of_unequal_batches_matches_np_average():
    values = np.arange(9, dtype=np.float32) ** 2
    mean = Mean()
    state = mean.init()
    for part in SPLITS:
        state = mean.update(state, values[part], WEIGHTS[part])
    assert float(mean.compute(state)) == pytest.approx(np.average(values, weights=WEIGHTS))


def test_mean_ignores_masked_padding_rows():
    values = np.arange(9, dtype=np.float32) ** 2
    mean = Mean()
    state = mean.init()
    for v, w, mask in padded_batches(values, WEIGHTS):
        state = mean.update(state, v, w, mask)
    assert float(mean.compute(state)) == pytest.approx(np.average(values, weights=WEIGHTS))


def test_mean_row_weights_apply_to_every_element_of_a_row():
    values = np.array([[1.0, 3.0], [5.0, 7.0], [2.0, 2.0]], np.float32)
    weights = np.array([1.0, 2.0, 0.0], np.float32)
    mean = Mean()
    state = mean.update(mean.init(), values, weights)
    expected = np.average(values, weights=np.broadcast_to(weights[:, None], values.shape))
    assert float(mean.compute(state)) == pytest.approx(expected)


def test_mean_update_under_jit_matches_eager():
    values = np.arange(9, dtype=np.float32) ** 2
    mean = Mean()
    update = jax.jit(mean.update)
    eager, jitted = mean.init(), mean.init()
    for v, w, mask in padded_batches(values, WEIGHTS):
        eager = mean.update(eager, v, w, mask)
        jitted = update(jitted, v, w, mask)
    assert float(mean.compute(jitted)) == pytest.approx(float(mean.compute(eager)), rel=1e-6)
    assert float(mean.compute(jitted)) == pytest.approx(np.average(values, weights=WEIGHTS))


def test_mean_of_nothing_is_zero():
    mean = Mean()
    assert float(mean.compute(mean.init())) == 0.0


# --- built-in metrics against scikit-learn -------------------------------------------------


def accuracy_oracle(y_true, y_pred, weights=None):
    return accuracy_score(y_true, np.argmax(y_pred, axis=-1), sample_weight=weights)


METRICS = {
    "accuracy": (SparseCategoricalAccuracy, LABELS, LOGITS, accuracy_oracle),
    "mse": (
        MeanSquaredError,
        REG_TRUE,
        REG_PRED,
        lambda t, p, w=None: sk_mean_squared_error(t, p, sample_weight=w),
    ),
}


@pytest.mark.parametrize("weighted", [True, False], ids=["weighted", "unweighted"])
@pytest.mark.parametrize("name", sorted(METRICS))
def test_metric_over_unequal_batches_matches_sklearn(name, weighted):
    cls, y_true, y_pred, oracle = METRICS[name]
    weights = WEIGHTS if weighted else None
    result = accumulate(cls(), y_true, y_pred, weights, masked=False)
    assert result == pytest.approx(oracle(y_true, y_pred, weights), rel=1e-5)


@pytest.mark.parametrize("weighted", [True, False], ids=["weighted", "unweighted"])
@pytest.mark.parametrize("name", sorted(METRICS))
def test_metric_over_padded_masked_batches_matches_sklearn_on_real_rows(name, weighted):
    cls, y_true, y_pred, oracle = METRICS[name]
    weights = WEIGHTS if weighted else None
    result = accumulate(cls(), y_true, y_pred, weights, masked=True)
    assert result == pytest.approx(oracle(y_true, y_pred, weights), rel=1e-5)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_metric_update_under_jit_matches_eager_and_sklearn(name):
    cls, y_true, y_pred, oracle = METRICS[name]
    eager = accumulate(cls(), y_true, y_pred, WEIGHTS, jit=False)
    jitted = accumulate(cls(), y_true, y_pred, WEIGHTS, jit=True)
    assert jitted == pytest.approx(eager, rel=1e-6)
    assert jitted == pytest.approx(oracle(y_true, y_pred, WEIGHTS), rel=1e-5)


def test_accuracy_accepts_column_labels():
    metric = SparseCategoricalAccuracy()
    state = metric.update(metric.init(), LABELS[:4, None], LOGITS[:4])
    assert float(metric.compute(state)) == pytest.approx(accuracy_oracle(LABELS[:4], LOGITS[:4]))


def test_accuracy_label_shape_mismatch_raises_naming_shapes():
    metric = SparseCategoricalAccuracy()
    with pytest.raises(ValueError) as info:
        metric.update(metric.init(), LABELS[:3], LOGITS[:4])
    assert "(3,)" in str(info.value) and "(4, 3)" in str(info.value)


def test_mse_metric_shape_mismatch_raises_naming_shapes():
    metric = MeanSquaredError()
    with pytest.raises(ValueError) as info:
        metric.update(metric.init(), np.zeros(4, np.float32), np.zeros((4, 3), np.float32))
    assert "(4,)" in str(info.value) and "(4, 3)" in str(info.value)


def test_metric_without_targets_raises():
    metric = SparseCategoricalAccuracy()
    with pytest.raises(ValueError, match="y is None"):
        metric.update(metric.init(), None, LOGITS)


# --- MeanMetricWrapper ---------------------------------------------------------------------


def absolute_error(y_true, y_pred):
    return jnp.abs(jnp.asarray(y_pred) - jnp.asarray(y_true))


def batch_max_error(y_true, y_pred):
    """A scalar per batch; repeating rows (padding) does not change it."""
    return jnp.max(jnp.abs(jnp.asarray(y_pred) - jnp.asarray(y_true)))


Y_TRUE_1D = REG_TRUE[:, 0]
Y_PRED_1D = REG_PRED[:, 0]


def row_weighted_batch_max():
    """Each batch's max error counted once per real row: the documented epoch value."""
    maxima = [np.max(np.abs(Y_PRED_1D[p] - Y_TRUE_1D[p])) for p in SPLITS]
    rows = [p.stop - p.start for p in SPLITS]
    return np.average(maxima, weights=rows)


def test_wrapper_of_per_sample_function_is_weighted_mean():
    metric = MeanMetricWrapper(absolute_error)
    result = accumulate(metric, Y_TRUE_1D, Y_PRED_1D, WEIGHTS)
    assert metric.name == "absolute_error"
    assert result == pytest.approx(np.average(np.abs(Y_PRED_1D - Y_TRUE_1D), weights=WEIGHTS))


def test_wrapper_passes_kwargs_to_function():
    def scaled_error(y_true, y_pred, scale):
        return scale * jnp.abs(y_pred - y_true)

    metric = MeanMetricWrapper(scaled_error, name="scaled", scale=10.0)
    state = metric.update(metric.init(), np.array([0.0, 1.0]), np.array([1.0, 4.0]))
    assert metric.name == "scaled"
    assert float(metric.compute(state)) == pytest.approx(10.0 * (1.0 + 3.0) / 2)


def test_wrapper_of_scalar_function_with_mask_counts_each_real_row():
    metric = MeanMetricWrapper(batch_max_error)
    assert accumulate(metric, Y_TRUE_1D, Y_PRED_1D, masked=True) == pytest.approx(
        row_weighted_batch_max(), rel=1e-6
    )


def test_wrapper_of_scalar_function_without_mask_counts_each_row():
    # Documented: "a function that returns a scalar for the batch is counted as that value
    # for every real row of the batch"; without a mask every row is real.
    metric = MeanMetricWrapper(batch_max_error)
    assert accumulate(metric, Y_TRUE_1D, Y_PRED_1D, masked=False) == pytest.approx(
        row_weighted_batch_max(), rel=1e-6
    )


def test_wrapper_of_scalar_function_ignores_sample_weight():
    metric = MeanMetricWrapper(batch_max_error)
    assert accumulate(metric, Y_TRUE_1D, Y_PRED_1D, WEIGHTS, masked=True) == pytest.approx(
        row_weighted_batch_max(), rel=1e-6
    )


def test_wrapper_of_scalar_function_under_jit_matches_eager():
    metric = MeanMetricWrapper(batch_max_error)
    eager = accumulate(metric, Y_TRUE_1D, Y_PRED_1D, jit=False)
    jitted = accumulate(metric, Y_TRUE_1D, Y_PRED_1D, jit=True)
    assert jitted == pytest.approx(eager, rel=1e-6)
    assert jitted == pytest.approx(row_weighted_batch_max(), rel=1e-6)


# --- get -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, cls",
    [
        ("accuracy", metrics.AutoAccuracy),
        ("acc", metrics.AutoAccuracy),
        ("sparse_categorical_accuracy", SparseCategoricalAccuracy),
        ("mean_squared_error", MeanSquaredError),
        ("mse", MeanSquaredError),
    ],
)
def test_get_by_name_builds_metric_logged_under_that_name(name, cls):
    metric = metrics.get(name)
    assert type(metric) is cls
    assert metric.name == name


@pytest.mark.parametrize("name", ["accuracy", "mse"])
def test_get_by_name_computes_the_right_metric(name):
    _, y_true, y_pred, oracle = METRICS[name]
    metric = metrics.get(name)
    state = metric.update(metric.init(), y_true[:4], y_pred[:4])
    assert float(metric.compute(state)) == pytest.approx(oracle(y_true[:4], y_pred[:4]))


def test_get_returns_metric_instance_unchanged():
    metric = SparseCategoricalAccuracy(name="top1")
    assert metrics.get(metric) is metric


def test_get_wraps_function_as_mean_metric():
    metric = metrics.get(absolute_error)
    assert isinstance(metric, MeanMetricWrapper)
    assert metric.name == "absolute_error"
    state = metric.update(metric.init(), Y_TRUE_1D, Y_PRED_1D)
    assert float(metric.compute(state)) == pytest.approx(np.mean(np.abs(Y_PRED_1D - Y_TRUE_1D)))


def test_get_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as info:
        metrics.get("f1_score")
    message = str(info.value)
    assert "f1_score" in message
    for valid in ("acc", "accuracy", "mean_squared_error", "mse", "sparse_categorical_accuracy"):
        assert repr(valid) in message


def test_get_rejects_non_callable():
    with pytest.raises(TypeError, match="float"):
        metrics.get(0.5)

"""Oracle tests for the whole loss library and the regularizers.

Every expected value comes from an independent oracle: a numpy formula written out here
from the Keras documentation's definition, optax, or scikit-learn. Inputs are drawn from a
seeded numpy Generator. tests/losses/test_losses.py covers the reduction machinery on
MeanSquaredError and SparseCategoricalCrossentropy(from_logits=True); this file extends the
same checks to every loss.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from sklearn.metrics import log_loss
from sklearn.metrics import mean_absolute_error as sk_mae
from sklearn.metrics import mean_absolute_percentage_error as sk_mape
from sklearn.metrics import mean_squared_error as sk_mse
from sklearn.metrics import mean_squared_log_error as sk_msle

from elegy import losses, regularizers
from elegy.data.batches import padded_batch
from elegy.losses import Loss
from elegy.states import States

RNG = np.random.default_rng(20240611)
N, D, C = 8, 4, 4  # rows, columns of regression/binary targets, classes (one shape: fast eager)
REAL = 5  # real rows of the ragged final batch, padded to N
REDUCTIONS = ["sum_over_batch_size", "sum", "none"]
EPS32 = np.float32(1e-7)  # Keras's epsilon, clipped in float32 as the library computes
f32 = np.float32


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# --- data ---------------------------------------------------------------------------------

REG_T = RNG.normal(size=(N, D)).astype(f32)
REG_P = (REG_T + RNG.uniform(-3, 3, size=(N, D))).astype(f32)  # errors on both sides of delta
POS_T = RNG.uniform(0.5, 3.0, size=(N, D)).astype(f32)  # away from 0 for MAPE, >= 0 for MSLE
POS_P = RNG.uniform(0.0, 3.5, size=(N, D)).astype(f32)
BIN_Y = RNG.integers(0, 2, size=(N, D)).astype(f32)
BIN_P = RNG.uniform(0.02, 0.98, size=(N, D)).astype(f32)
BIN_LOGITS = (3 * RNG.normal(size=(N, D))).astype(f32)
LABELS = np.concatenate([np.arange(C), RNG.integers(0, C, N - C)]).astype(np.int32)
ONE_HOT = np.eye(C, dtype=f32)[LABELS]
LOGITS = (2 * RNG.normal(size=(N, C))).astype(f32)
PROBS = RNG.dirichlet(np.ones(C), size=N).astype(f32)
UNNORMALISED = (PROBS * RNG.uniform(0.5, 3.0, size=(N, 1))).astype(f32)
SOFT_T = RNG.dirichlet(np.ones(C), size=N).astype(f32)
COUNTS = RNG.poisson(2.0, size=(N, D)).astype(f32)
RATES = RNG.uniform(0.1, 4.0, size=(N, D)).astype(f32)
SIGNED = RNG.choice([-1.0, 1.0], size=(N, D)).astype(f32)
ZERO_ONE = ((SIGNED + 1) / 2).astype(f32)
SCORES = (1.5 * RNG.normal(size=(N, D))).astype(f32)
WEIGHTS = RNG.uniform(0.0, 2.0, size=N).astype(f32)
WEIGHTS[2] = 0.0


# --- per-sample oracles (float64 numpy from Keras's definitions, or optax) ------------------


def o_mse(t, p):
    return np.mean((np.float64(p) - t) ** 2, -1)


def o_mae(t, p):
    return np.mean(np.abs(np.float64(p) - t), -1)


def o_mape(t, p):
    t = np.float64(t)
    return 100 * np.mean(np.abs(t - p) / np.maximum(np.abs(t), 1e-7), -1)


def o_msle(t, p):
    return np.mean((np.log(np.maximum(np.float64(p), 1e-7) + 1) - np.log(np.maximum(t, 1e-7) + 1)) ** 2, -1)


def optax_oracle(fn):
    """An optax formula compiled once (rather than op by op) and returned as float64 numpy."""
    compiled = jax.jit(fn)
    return lambda *args, **kwargs: np.asarray(compiled(*args, **kwargs), np.float64)


o_huber = optax_oracle(lambda t, p, delta=1.0: jnp.mean(optax.huber_loss(p, t, delta=delta), -1))
o_log_cosh = optax_oracle(lambda t, p: jnp.mean(optax.log_cosh(p, t), -1))


def o_cosine(t, p, axis=-1):
    t, p = np.float64(t), np.float64(p)
    unit = lambda v: v / np.sqrt(np.maximum((v**2).sum(axis, keepdims=True), 1e-12))
    return -np.sum(unit(t) * unit(p), axis)


def o_bce(t, p, ls=0.0):
    t, p = np.float64(t) * (1 - ls) + 0.5 * ls, np.float64(p)
    return -np.mean(t * np.log(p) + (1 - t) * np.log1p(-p), -1)


o_bce_logits = optax_oracle(
    lambda t, z, ls=0.0: jnp.mean(optax.sigmoid_binary_cross_entropy(z, t * (1 - ls) + 0.5 * ls), -1)
)


def o_cce(t, p, ls=0.0):
    t = np.float64(t) * (1 - ls) + ls / t.shape[-1]
    p = np.float64(p)
    return -np.sum(t * np.log(p / p.sum(-1, keepdims=True)), -1)


o_cce_logits = optax_oracle(lambda t, z, ls=0.0: optax.softmax_cross_entropy(z, optax.smooth_labels(t, ls)))


def o_scce(labels, p):
    p = np.float64(p)
    return -np.log(p[np.arange(len(labels)), labels] / p.sum(-1))


o_kl = optax_oracle(lambda t, p: optax.kl_divergence(jnp.log(p), t))


def o_poisson(t, p):
    return np.mean(np.float64(p) - t * np.log(np.float64(p) + 1e-7), -1)


o_hinge = optax_oracle(lambda t, p: jnp.mean(optax.hinge_loss(p, jnp.where(t == 0, -1.0, t)), -1))


def o_squared_hinge(t, p):
    return np.mean(np.maximum(1 - np.where(t == 0, -1.0, t) * np.float64(p), 0) ** 2, -1)


# name: (class factory, per-sample function, y_true, y_pred, oracle)
CASES = {
    "mean_squared_error": (losses.MeanSquaredError, losses.mean_squared_error, REG_T, REG_P, o_mse),
    "mean_absolute_error": (losses.MeanAbsoluteError, losses.mean_absolute_error, REG_T, REG_P, o_mae),
    "mean_absolute_percentage_error": (
        losses.MeanAbsolutePercentageError,
        losses.mean_absolute_percentage_error,
        POS_T * SIGNED,
        POS_P,
        o_mape,
    ),
    "mean_squared_logarithmic_error": (
        losses.MeanSquaredLogarithmicError,
        losses.mean_squared_logarithmic_error,
        POS_T,
        POS_P,
        o_msle,
    ),
    "huber": (losses.Huber, losses.huber, REG_T, REG_P, o_huber),
    "huber_delta_0.5": (
        functools.partial(losses.Huber, delta=0.5),
        functools.partial(losses.huber, delta=0.5),
        REG_T,
        REG_P,
        functools.partial(o_huber, delta=0.5),
    ),
    "log_cosh": (losses.LogCosh, losses.log_cosh, REG_T, REG_P, o_log_cosh),
    "cosine_similarity": (losses.CosineSimilarity, losses.cosine_similarity, REG_T, REG_P, o_cosine),
    "binary_crossentropy": (losses.BinaryCrossentropy, losses.binary_crossentropy, BIN_Y, BIN_P, o_bce),
    "binary_crossentropy_smoothed": (
        functools.partial(losses.BinaryCrossentropy, label_smoothing=0.2),
        functools.partial(losses.binary_crossentropy, label_smoothing=0.2),
        BIN_Y,
        BIN_P,
        functools.partial(o_bce, ls=0.2),
    ),
    "binary_crossentropy_logits": (
        functools.partial(losses.BinaryCrossentropy, from_logits=True),
        functools.partial(losses.binary_crossentropy, from_logits=True),
        BIN_Y,
        BIN_LOGITS,
        o_bce_logits,
    ),
    "binary_crossentropy_logits_smoothed": (
        functools.partial(losses.BinaryCrossentropy, from_logits=True, label_smoothing=0.3),
        functools.partial(losses.binary_crossentropy, from_logits=True, label_smoothing=0.3),
        BIN_Y,
        BIN_LOGITS,
        functools.partial(o_bce_logits, ls=0.3),
    ),
    "categorical_crossentropy": (
        losses.CategoricalCrossentropy,
        losses.categorical_crossentropy,
        ONE_HOT,
        UNNORMALISED,
        o_cce,
    ),
    "categorical_crossentropy_smoothed": (
        functools.partial(losses.CategoricalCrossentropy, label_smoothing=0.2),
        functools.partial(losses.categorical_crossentropy, label_smoothing=0.2),
        ONE_HOT,
        PROBS,
        functools.partial(o_cce, ls=0.2),
    ),
    "categorical_crossentropy_logits": (
        functools.partial(losses.CategoricalCrossentropy, from_logits=True),
        functools.partial(losses.categorical_crossentropy, from_logits=True),
        ONE_HOT,
        LOGITS,
        o_cce_logits,
    ),
    "categorical_crossentropy_logits_smoothed": (
        functools.partial(losses.CategoricalCrossentropy, from_logits=True, label_smoothing=0.3),
        functools.partial(losses.categorical_crossentropy, from_logits=True, label_smoothing=0.3),
        ONE_HOT,
        LOGITS,
        functools.partial(o_cce_logits, ls=0.3),
    ),
    "categorical_crossentropy_soft_targets": (
        losses.CategoricalCrossentropy,
        losses.categorical_crossentropy,
        SOFT_T,
        PROBS,
        o_cce,
    ),
    "sparse_categorical_crossentropy": (
        losses.SparseCategoricalCrossentropy,
        losses.sparse_categorical_crossentropy,
        LABELS,
        UNNORMALISED,
        o_scce,
    ),
    "kl_divergence": (losses.KLDivergence, losses.kl_divergence, SOFT_T, PROBS, o_kl),
    "poisson": (losses.Poisson, losses.poisson, COUNTS, RATES, o_poisson),
    "hinge": (losses.Hinge, losses.hinge, SIGNED, SCORES, o_hinge),
    "hinge_zero_one_labels": (losses.Hinge, losses.hinge, ZERO_ONE, SCORES, o_hinge),
    "squared_hinge": (losses.SquaredHinge, losses.squared_hinge, SIGNED, SCORES, o_squared_hinge),
    "squared_hinge_zero_one_labels": (
        losses.SquaredHinge,
        losses.squared_hinge,
        ZERO_ONE,
        SCORES,
        o_squared_hinge,
    ),
}
CASE_IDS = sorted(CASES)


@functools.cache
def expected_per_sample(case):
    """The oracle's per-sample values on the whole data, computed once per case (rows are
    independent, so a ragged batch's expectation is a slice of these)."""
    _, _, y_true, y_pred, oracle = CASES[case]
    return np.asarray(oracle(y_true, y_pred), np.float64)


def keras_reduce(values, weights, reduction):
    """Keras's reductions written out: weights multiply, sum_over_batch_size divides by rows."""
    weighted = values * (1.0 if weights is None else weights)
    if reduction == "none":
        return weighted
    if reduction == "sum":
        return weighted.sum()
    return weighted.sum() / values.size


def close(actual, expected, rtol=1e-5, atol=1e-5):
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected, rtol=rtol, atol=atol)


# --- per-sample functions and reductions -------------------------------------------------------


@pytest.mark.parametrize("case", CASE_IDS)
def test_per_sample_function_matches_oracle(case):
    _, fn, y_true, y_pred, _ = CASES[case]
    close(fn(y_true, y_pred), expected_per_sample(case))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", CASE_IDS)
def test_reduction_with_sample_weight_matches_oracle(case, reduction):
    make, _, y_true, y_pred, _ = CASES[case]
    result = make(reduction=reduction)(y_true, y_pred, sample_weight=WEIGHTS)
    close(result, keras_reduce(expected_per_sample(case), WEIGHTS, reduction))


@pytest.mark.parametrize("case", CASE_IDS)
def test_padded_final_batch_with_mask_equals_real_rows_only(case):
    make, _, y_true, y_pred, _ = CASES[case]
    batch = padded_batch(y_pred[:REAL], y_true[:REAL], WEIGHTS[:REAL], N)
    assert batch.num_real == REAL and len(batch.mask) == N
    result = make()(batch.y, batch.x, sample_weight=batch.sample_weight, mask=batch.mask)
    # the padding rows leave both the sum and the number of rows it is divided by
    close(result, keras_reduce(expected_per_sample(case)[:REAL], WEIGHTS[:REAL], "sum_over_batch_size"))


def ragged_batch(case):
    _, _, y_true, y_pred, _ = CASES[case]
    return padded_batch(y_pred[:REAL], y_true[:REAL], WEIGHTS[:REAL], N)


def weighted_half_loss(case, batch):
    return CASES[case][0](weight=0.5)(batch.y, batch.x, sample_weight=batch.sample_weight, mask=batch.mask)


@functools.cache
def jitted_losses():
    """Every case's `weighted_half_loss` computed by one jax.jit-compiled function: one
    compilation instead of one per case keeps the file fast."""
    compute_all = jax.jit(lambda batches: {c: weighted_half_loss(c, b) for c, b in batches.items()})
    return compute_all({c: ragged_batch(c) for c in CASE_IDS})


@pytest.mark.parametrize("case", CASE_IDS)
def test_call_under_jit_matches_eager_and_oracle(case):
    jitted = jitted_losses()[case]
    eager = weighted_half_loss(case, ragged_batch(case))
    np.testing.assert_allclose(jitted, eager, rtol=1e-6, atol=1e-6)
    expected = 0.5 * keras_reduce(expected_per_sample(case)[:REAL], WEIGHTS[:REAL], "sum_over_batch_size")
    close(jitted, expected)


@pytest.mark.parametrize("case", CASE_IDS)
def test_all_zero_sample_weights_give_zero_not_nan(case):
    make, _, y_true, y_pred, _ = CASES[case]
    result = np.asarray(make()(y_true, y_pred, sample_weight=np.zeros(N, f32)))
    assert np.isfinite(result) and result == 0.0


@pytest.mark.parametrize("case", CASE_IDS)
def test_shape_mismatch_raises_naming_both_shapes(case):
    make, _, y_true, y_pred, _ = CASES[case]
    # one column short (one row short for integer labels): never a silent broadcast
    y_true = y_true[:-1] if y_true.ndim == 1 else y_true[:, :-1]
    with pytest.raises(ValueError) as info:
        make()(y_true, y_pred)
    assert str(y_true.shape) in str(info.value) and str(y_pred.shape) in str(info.value)


@pytest.mark.parametrize(
    "make, oracle",
    [(losses.MeanSquaredError, o_mse), (losses.BinaryCrossentropy, o_bce)],
    ids=["mse", "binary_crossentropy"],
)
def test_one_dimensional_targets_and_predictions_are_one_value_per_sample(make, oracle):
    # A model whose output is (batch,) against (batch,) targets: each element is a sample,
    # so sample_weight and the padding mask must apply per element, not be dropped.
    y_true, y_pred = BIN_Y[:REAL, 0], BIN_P[:REAL, 0]
    batch = padded_batch(y_pred, y_true, WEIGHTS[:REAL], N)
    result = make()(batch.y, batch.x, sample_weight=batch.sample_weight, mask=batch.mask)
    per_sample = oracle(y_true[:, None], y_pred[:, None])
    close(result, keras_reduce(per_sample, WEIGHTS[:REAL], "sum_over_batch_size"))


# --- scikit-learn cross-checks ---------------------------------------------------------------


def test_binary_crossentropy_sum_matches_sklearn_log_loss_per_column():
    # each row is the mean over its columns, so the weighted sum is the mean of the columns'
    # weighted log losses
    result = losses.BinaryCrossentropy(reduction="sum")(BIN_Y, BIN_P, sample_weight=WEIGHTS)
    columns = [log_loss(BIN_Y[:, j], BIN_P[:, j], sample_weight=WEIGHTS, normalize=False) for j in range(D)]
    close(result, np.mean(columns))


@pytest.mark.parametrize("make", [losses.CategoricalCrossentropy, losses.SparseCategoricalCrossentropy])
def test_categorical_crossentropies_sum_match_sklearn_log_loss(make):
    y_true = ONE_HOT if make is losses.CategoricalCrossentropy else LABELS
    result = make(reduction="sum")(y_true, PROBS, sample_weight=WEIGHTS)
    expected = log_loss(LABELS, PROBS, labels=range(C), sample_weight=WEIGHTS, normalize=False)
    close(result, expected)


@pytest.mark.parametrize(
    "make, sk, scale, y_true, y_pred",
    [
        (losses.MeanSquaredError, sk_mse, 1, REG_T, REG_P),
        (losses.MeanAbsoluteError, sk_mae, 1, REG_T, REG_P),
        (losses.MeanAbsolutePercentageError, sk_mape, 100, POS_T, POS_P),
        (losses.MeanSquaredLogarithmicError, sk_msle, 1, POS_T, POS_P),
    ],
    ids=["mse", "mae", "mape", "msle"],
)
def test_regression_weighted_sum_matches_sklearn_weighted_average(make, sk, scale, y_true, y_pred):
    # sklearn's weighted average over rows times the total weight is Keras's "sum" reduction.
    result = make(reduction="sum")(y_true, y_pred, sample_weight=WEIGHTS)
    close(result, scale * sk(y_true, y_pred, sample_weight=WEIGHTS) * WEIGHTS.sum())


# --- label smoothing -----------------------------------------------------------------------------


@pytest.mark.parametrize("from_logits", [False, True])
def test_binary_label_smoothing_one_makes_every_target_one_half(from_logits):
    y_pred = BIN_LOGITS if from_logits else BIN_P
    loss = losses.BinaryCrossentropy(from_logits=from_logits, label_smoothing=1.0, reduction="none")
    p = 1 / (1 + np.exp(-np.float64(y_pred))) if from_logits else np.float64(y_pred)
    expected = -np.mean(0.5 * np.log(p) + 0.5 * np.log1p(-p), -1)
    close(loss(BIN_Y, y_pred), expected)
    close(loss(1 - BIN_Y, y_pred), expected)


@pytest.mark.parametrize("from_logits", [False, True])
def test_categorical_label_smoothing_one_makes_targets_uniform(from_logits):
    y_pred = LOGITS if from_logits else PROBS
    loss = losses.CategoricalCrossentropy(from_logits=from_logits, label_smoothing=1.0, reduction="none")
    log_p = np.log(_softmax(np.float64(LOGITS))) if from_logits else np.log(PROBS)
    close(loss(ONE_HOT, y_pred), -log_p.mean(-1))


# --- ignore_class ------------------------------------------------------------------------------

IGNORED = 1
KEPT = LABELS != IGNORED
SCCE_LOGITS = optax_oracle(optax.softmax_cross_entropy_with_integer_labels)(LOGITS, LABELS)
SCCE_PROBS = o_scce(LABELS, PROBS)


@pytest.mark.parametrize("from_logits", [False, True])
def test_ignore_class_rows_leave_numerator_and_denominator(from_logits):
    assert 0 < KEPT.sum() < N
    loss = losses.SparseCategoricalCrossentropy(from_logits=from_logits, ignore_class=IGNORED)
    per_sample = SCCE_LOGITS if from_logits else SCCE_PROBS
    expected = np.sum((WEIGHTS * per_sample)[KEPT]) / KEPT.sum()
    close(loss(LABELS, LOGITS if from_logits else PROBS, sample_weight=WEIGHTS), expected)


@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_ignore_class_rows_give_zero_in_sum_and_none(reduction):
    loss = losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=IGNORED, reduction=reduction)
    weighted = np.where(KEPT, WEIGHTS * SCCE_LOGITS, 0.0)
    close(loss(LABELS, LOGITS, sample_weight=WEIGHTS), weighted.sum() if reduction == "sum" else weighted)


def test_ignore_class_combines_with_padding_mask():
    loss = losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=IGNORED)
    batch = padded_batch(LOGITS[:REAL], LABELS[:REAL], WEIGHTS[:REAL], N)
    result = loss(batch.y, batch.x, sample_weight=batch.sample_weight, mask=batch.mask)
    kept = KEPT[:REAL]
    close(result, np.sum((WEIGHTS * SCCE_LOGITS)[:REAL][kept]) / kept.sum())


def test_ignore_class_minus_one_padding_labels_are_not_nan():
    labels = LABELS.copy()
    labels[[0, 5]] = -1
    loss = losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1)
    close(loss(labels, LOGITS), SCCE_LOGITS[labels != -1].mean())


def test_ignore_class_on_every_row_gives_zero_not_nan():
    labels = np.full(N, IGNORED, np.int32)
    result = losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=IGNORED)(labels, LOGITS)
    assert float(result) == 0.0


def test_ignore_class_under_jit_matches_eager():
    loss = losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=IGNORED)
    call = lambda yt, yp, w: loss(yt, yp, sample_weight=w)
    jitted = jax.jit(call)(LABELS, LOGITS, WEIGHTS)
    np.testing.assert_allclose(jitted, call(LABELS, LOGITS, WEIGHTS), rtol=1e-6)
    close(jitted, np.sum((WEIGHTS * SCCE_LOGITS)[KEPT]) / KEPT.sum())


# --- out-of-range sparse labels ----------------------------------------------------------------


@pytest.mark.parametrize("bad_label", [-1, C, C + 7])
@pytest.mark.parametrize("from_logits", [False, True])
def test_sparse_label_out_of_range_under_jit_gives_nan_for_that_row_only(from_logits, bad_label):
    labels = LABELS.copy()
    labels[3] = bad_label
    y_pred = LOGITS if from_logits else PROBS
    loss = losses.SparseCategoricalCrossentropy(from_logits=from_logits, reduction="none")
    values = np.asarray(jax.jit(loss)(labels, y_pred))
    assert np.isnan(values[3])
    assert np.all(np.isfinite(np.delete(values, 3)))


@pytest.mark.parametrize("bad_label", [-1, C, C + 7])
def test_sparse_label_out_of_range_with_known_values_is_an_error(bad_label):
    labels = LABELS.copy()
    labels[0] = bad_label
    with pytest.raises(ValueError, match=rf"labels must be class indices in \[0, {C}\), got \[{bad_label}\]"):
        losses.SparseCategoricalCrossentropy(from_logits=True)(labels, LOGITS)


def test_sparse_label_out_of_range_makes_the_jitted_reduced_loss_nan():
    labels = LABELS.copy()
    labels[0] = C
    call = lambda yt, yp: losses.SparseCategoricalCrossentropy(from_logits=True)(yt, yp)
    assert np.isnan(float(jax.jit(call)(labels, LOGITS)))


# --- numerical edge cases (same (N, 4) shapes as the data, so eager calls stay fast) -------------

LOW, HIGH = EPS32, f32(1) - EPS32  # the clipping bounds, in float32 as the library applies them
ZERO_ONE_PROBS = RNG.integers(0, 2, size=(N, D)).astype(f32)  # probabilities exactly 0 and 1
ONE_HOT_PROBS = np.eye(C, dtype=f32)[(LABELS + RNG.integers(0, 2, N)) % C]  # half right, half wrong
HUGE = RNG.choice([1e4, -1e4, 5e3, 0.0], size=(N, D)).astype(f32)
ZERO_RATES = np.where(RNG.uniform(size=(N, D)) < 0.5, 0.0, RATES).astype(f32)


def clipped(p):
    return np.clip(np.asarray(p, f32), LOW, HIGH).astype(np.float64)


def test_binary_crossentropy_probabilities_zero_and_one_are_clipped_and_finite():
    p = clipped(ZERO_ONE_PROBS)
    expected = -np.mean(BIN_Y * np.log(p) + (1 - BIN_Y) * np.log1p(-p), -1)
    values = losses.BinaryCrossentropy(reduction="none")(BIN_Y, ZERO_ONE_PROBS)
    assert np.all(np.isfinite(np.asarray(values)))
    close(values, expected)


def test_categorical_crossentropy_probabilities_zero_and_one_are_clipped_and_finite():
    values = losses.CategoricalCrossentropy(reduction="none")(ONE_HOT, ONE_HOT_PROBS)
    assert np.all(np.isfinite(np.asarray(values)))
    close(values, -np.sum(ONE_HOT * np.log(clipped(ONE_HOT_PROBS)), -1))


def test_sparse_categorical_crossentropy_probabilities_zero_and_one_are_clipped_and_finite():
    values = losses.SparseCategoricalCrossentropy(reduction="none")(LABELS, ONE_HOT_PROBS)
    assert np.all(np.isfinite(np.asarray(values)))
    close(values, -np.log(clipped(ONE_HOT_PROBS)[np.arange(N), LABELS]))


def test_kl_divergence_with_zeros_is_clipped_and_finite():
    t, p = np.clip(np.float64(ONE_HOT), 1e-7, 1), np.clip(np.float64(ONE_HOT_PROBS), 1e-7, 1)
    values = losses.KLDivergence(reduction="none")(ONE_HOT, ONE_HOT_PROBS)
    assert np.all(np.isfinite(np.asarray(values)))
    close(values, np.sum(t * np.log(t / p), -1), rtol=1e-5, atol=1e-5)


def test_poisson_with_zero_rates_is_finite():
    values = losses.Poisson(reduction="none")(COUNTS, ZERO_RATES)
    assert np.all(np.isfinite(np.asarray(values)))
    close(values, o_poisson(COUNTS, ZERO_RATES))


@pytest.mark.parametrize("ls", [0.0, 0.1])
def test_binary_crossentropy_huge_logits_are_exact_and_finite(ls):
    loss = losses.BinaryCrossentropy(from_logits=True, label_smoothing=ls, reduction="none")
    values = loss(BIN_Y, HUGE)
    assert np.all(np.isfinite(np.asarray(values)))
    close(values, o_bce_logits(BIN_Y, HUGE, ls), rtol=1e-6)


@pytest.mark.parametrize("ls", [0.0, 0.1])
def test_categorical_crossentropy_huge_logits_are_exact_and_finite(ls):
    loss = losses.CategoricalCrossentropy(from_logits=True, label_smoothing=ls, reduction="none")
    values = loss(ONE_HOT, HUGE)
    assert np.all(np.isfinite(np.asarray(values)))
    close(values, o_cce_logits(ONE_HOT, HUGE, ls), rtol=1e-6)


def test_log_cosh_of_huge_error_is_finite_and_matches_optax():
    values = losses.LogCosh(reduction="none")(np.zeros_like(HUGE), HUGE)
    assert np.all(np.isfinite(np.asarray(values)))
    close(values, o_log_cosh(np.zeros_like(HUGE), HUGE), rtol=1e-6)


def test_cosine_similarity_of_zero_vector_is_zero_not_nan():
    values = losses.CosineSimilarity(reduction="none")(np.zeros_like(REG_P), REG_P)
    np.testing.assert_array_equal(np.asarray(values), np.zeros(N))


def test_mape_with_zero_target_is_finite():
    values = np.asarray(losses.MeanAbsolutePercentageError(reduction="none")(np.zeros_like(REG_P), REG_P))
    assert np.all(np.isfinite(values))
    close(values, o_mape(np.zeros_like(REG_P), REG_P))


EDGE_GRADIENTS = {
    "binary_crossentropy_probabilities": (losses.BinaryCrossentropy(), BIN_Y, ZERO_ONE_PROBS),
    "binary_crossentropy_huge_logits": (losses.BinaryCrossentropy(from_logits=True), BIN_Y, HUGE),
    "categorical_crossentropy_probabilities": (losses.CategoricalCrossentropy(), ONE_HOT, ONE_HOT_PROBS),
    "categorical_crossentropy_huge_logits": (losses.CategoricalCrossentropy(from_logits=True), ONE_HOT, HUGE),
    "kl_divergence": (losses.KLDivergence(), ONE_HOT, ONE_HOT_PROBS),
    "poisson": (losses.Poisson(), COUNTS, ZERO_RATES),
    "log_cosh": (losses.LogCosh(), np.zeros_like(HUGE), HUGE),
}


@functools.cache
def edge_gradients():
    """Gradients with respect to y_pred for every edge case, from one compiled function."""
    grad = lambda c, p: jax.grad(lambda p: EDGE_GRADIENTS[c][0](EDGE_GRADIENTS[c][1], p))(p)
    return jax.jit(lambda preds: {c: grad(c, p) for c, p in preds.items()})(
        {c: jnp.asarray(v[2]) for c, v in EDGE_GRADIENTS.items()}
    )


@pytest.mark.parametrize("case", sorted(EDGE_GRADIENTS))
def test_gradient_at_edge_inputs_is_finite(case):
    assert np.all(np.isfinite(np.asarray(edge_gradients()[case])))


# --- other axes and inputs -----------------------------------------------------------------------


def test_cosine_similarity_along_another_axis_matches_numpy():
    y_true = RNG.normal(size=(N, D, 2)).astype(f32)
    y_pred = RNG.normal(size=(N, D, 2)).astype(f32)
    loss = losses.CosineSimilarity(axis=1, reduction="sum")
    result = jax.jit(lambda t, p, w: loss(t, p, sample_weight=w))(y_true, y_pred, WEIGHTS)
    close(result, np.sum(WEIGHTS[:, None] * o_cosine(y_true, y_pred, axis=1)))


def test_loss_may_declare_inputs_x_and_receives_them():
    class ReconstructionError(Loss):
        def call(self, x, y_pred):
            return jnp.mean(jnp.abs(y_pred - x), axis=-1)

    loss = ReconstructionError(reduction="sum")
    result = loss(None, REG_P, sample_weight=WEIGHTS, x=REG_T)
    close(result, np.sum(WEIGHTS * o_mae(REG_T, REG_P)))
    assert loss.name == "reconstruction_error"


# --- names and get -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls, name",
    [
        (losses.MeanSquaredError, "mean_squared_error"),
        (losses.MeanAbsoluteError, "mean_absolute_error"),
        (losses.MeanAbsolutePercentageError, "mean_absolute_percentage_error"),
        (losses.MeanSquaredLogarithmicError, "mean_squared_logarithmic_error"),
        (losses.Huber, "huber"),
        (losses.LogCosh, "log_cosh"),
        (losses.BinaryCrossentropy, "binary_crossentropy"),
        (losses.CategoricalCrossentropy, "categorical_crossentropy"),
        (losses.SparseCategoricalCrossentropy, "sparse_categorical_crossentropy"),
        (losses.KLDivergence, "kl_divergence"),
        (losses.Poisson, "poisson"),
        (losses.CosineSimilarity, "cosine_similarity"),
        (losses.Hinge, "hinge"),
        (losses.SquaredHinge, "squared_hinge"),
    ],
)
def test_default_name_is_snake_case_of_class(cls, name):
    assert cls().name == name
    assert cls(name="custom").name == "custom"


# every name losses.get accepts, with the case holding Keras's defaults for it
GET_NAMES = {
    "mean_squared_error": "mean_squared_error",
    "mse": "mean_squared_error",
    "mean_absolute_error": "mean_absolute_error",
    "mae": "mean_absolute_error",
    "mean_absolute_percentage_error": "mean_absolute_percentage_error",
    "mape": "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error": "mean_squared_logarithmic_error",
    "msle": "mean_squared_logarithmic_error",
    "huber": "huber",
    "log_cosh": "log_cosh",
    "binary_crossentropy": "binary_crossentropy",
    "categorical_crossentropy": "categorical_crossentropy",
    "sparse_categorical_crossentropy": "sparse_categorical_crossentropy",
    "kl_divergence": "kl_divergence",
    "kld": "kl_divergence",
    "poisson": "poisson",
    "cosine_similarity": "cosine_similarity",
    "hinge": "hinge",
    "squared_hinge": "squared_hinge",
}


def test_get_names_table_covers_every_registered_name():
    assert set(GET_NAMES) == set(losses.NAMES)


@pytest.mark.parametrize("name", sorted(GET_NAMES))
def test_get_by_name_is_named_so_and_matches_oracle(name):
    case = GET_NAMES[name]
    make, _, y_true, y_pred, _ = CASES[case]
    loss = losses.get(name)
    assert type(loss) is type(make())
    assert loss.name == name
    expected = keras_reduce(expected_per_sample(case), WEIGHTS, "sum_over_batch_size")
    close(loss(y_true, y_pred, sample_weight=WEIGHTS), expected)


def test_get_unknown_name_lists_every_valid_name():
    with pytest.raises(ValueError) as info:
        losses.get("mean_squared_eror")
    message = str(info.value)
    assert "mean_squared_eror" in message
    for valid in losses.NAMES:
        assert repr(valid) in message


# --- regularizers --------------------------------------------------------------------------------

PARAMS = {  # float leaves count, integer and boolean leaves do not
    "linear": {"w": RNG.normal(size=(N, D)).astype(f32), "b": RNG.normal(size=N).astype(f32)},
    "embed": {"table": RNG.normal(size=(N, D)).astype(f32), "ids": np.arange(N, dtype=np.int32)},
    "counter": np.array(7, np.int32),
    "flags": np.array([True, False]),
}
FLOAT_LEAVES = [PARAMS["linear"]["w"], PARAMS["linear"]["b"], PARAMS["embed"]["table"]]
L1_SUM = sum(np.abs(np.float64(a)).sum() for a in FLOAT_LEAVES)
L2_SUM = sum((np.float64(a) ** 2).sum() for a in FLOAT_LEAVES)


@pytest.mark.parametrize(
    "regularizer, expected",
    [
        (regularizers.L1(0.03), 0.03 * L1_SUM),
        (regularizers.L2(0.02), 0.02 * L2_SUM),
        (regularizers.L1L2(l1=0.03, l2=0.02), 0.03 * L1_SUM + 0.02 * L2_SUM),
        (regularizers.L1(), 0.01 * L1_SUM),
        (regularizers.L2(), 0.01 * L2_SUM),
        (regularizers.L1L2(), 0.0),
    ],
    ids=["l1", "l2", "l1_l2", "l1_default", "l2_default", "l1_l2_default"],
)
def test_regularizer_equals_numpy_sum_over_float_leaves(regularizer, expected):
    close(regularizer(states=States(net_params=PARAMS)), expected, rtol=1e-6, atol=1e-7)


def test_regularizer_under_jit_matches_eager():
    regularizer = regularizers.L1L2(l1=0.03, l2=0.02)
    states = States(net_params=PARAMS)
    jitted = jax.jit(lambda s: regularizer(states=s))(states)
    np.testing.assert_allclose(jitted, regularizer(states=states), rtol=1e-6)
    close(jitted, 0.03 * L1_SUM + 0.02 * L2_SUM, rtol=1e-6)


def test_regularizer_ignores_sample_weight_and_mask():
    regularizer = regularizers.L2(0.02)
    result = regularizer(states=States(net_params=PARAMS), sample_weight=np.zeros(N), mask=np.zeros(N, bool))
    close(result, 0.02 * L2_SUM, rtol=1e-6)


@pytest.mark.parametrize(
    "regularizer, name",
    [
        (regularizers.L1(), "l1_regularization"),
        (regularizers.L2(), "l2_regularization"),
        (regularizers.L1L2(), "l1_l2_regularization"),
        (regularizers.L2(name="decay"), "decay"),
    ],
)
def test_regularizer_names(regularizer, name):
    assert regularizer.name == name


@pytest.mark.parametrize(
    "make",
    [
        lambda: regularizers.L2(-1),
        lambda: regularizers.L1(-0.5),
        lambda: regularizers.L1L2(l1=-1.0),
        lambda: regularizers.L1L2(l2=-1e-4),
        lambda: regularizers.L2("0.1"),
    ],
    ids=["l2_negative", "l1_negative", "l1l2_l1_negative", "l1l2_l2_negative", "l2_string"],
)
def test_regularizer_invalid_coefficient_raises(make):
    with pytest.raises(ValueError):
        make()

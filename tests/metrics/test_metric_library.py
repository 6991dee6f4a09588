"""Oracle tests for the whole metric library.

Every expected value comes from scikit-learn (or a numpy formula from Keras's definition for
the losses used as metrics) applied to the whole data set at once; the metric is accumulated over batches of
unequal size whose last one is padded by repeating rows, with a mask, exactly as the data
pipeline (`elegy.data.batches.padded_batch`) delivers it. Inputs come from a seeded numpy
Generator. tests/metrics/test_metrics.py covers Mean, MeanSquaredError and
SparseCategoricalAccuracy; this file extends the checks to every other metric.
"""

import functools

import jax
import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    jaccard_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
    top_k_accuracy_score,
)
from sklearn.metrics import mean_absolute_error as sk_mae
from sklearn.metrics import mean_absolute_percentage_error as sk_mape
from sklearn.metrics import mean_squared_error as sk_mse
from sklearn.metrics import mean_squared_log_error as sk_msle

from elegy import losses, metrics
from elegy.data.batches import padded_batch

RNG = np.random.default_rng(7)
N, BATCH, C, K = 21, 8, 4, 4  # 21 rows in batches of 8, 8 and 5 (padded to 8); classes; columns
f32 = np.float32


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# --- data ---------------------------------------------------------------------------------------

LABELS = np.concatenate([np.arange(C), RNG.integers(0, C, N - C)]).astype(np.int32)
SCORES = RNG.normal(size=(N, C)).astype(f32)
SCORES[np.arange(N), LABELS] += 0.8  # better than chance, still many mistakes
ONE_HOT = np.eye(C, dtype=f32)[LABELS]
PROBS = _softmax(SCORES.astype(np.float64)).astype(f32)
# binary targets have K columns: binary metrics pool every element into one binary problem,
# and one (N, K) shape for everything keeps the number of eager compilations small
BIN_Y = RNG.integers(0, 2, size=(N, K)).astype(f32)
BIN_P = np.clip(0.3 * BIN_Y + RNG.uniform(0, 0.7, size=(N, K)), 0.01, 0.99).astype(f32)
COLUMN_Y, COLUMN_P = BIN_Y[:, :1], BIN_P[:, :1]  # a single output column
REG_T = RNG.uniform(0.5, 3.0, size=(N, K)).astype(f32)  # positive: fine for MAPE and MSLE
REG_P = RNG.uniform(0.0, 3.5, size=(N, K)).astype(f32)
INT_T = RNG.integers(0, 3, size=N).astype(np.int32)
INT_P = np.where(RNG.uniform(size=N) < 0.6, INT_T, RNG.integers(0, 3, size=N)).astype(np.int32)
INT2_T = RNG.integers(0, 3, size=(N, K)).astype(np.int32)
INT2_P = np.where(RNG.uniform(size=(N, K)) < 0.6, INT2_T, RNG.integers(0, 3, size=(N, K))).astype(np.int32)
SEG_T = RNG.integers(0, C, size=(N, K)).astype(np.int32)  # a class per position, e.g. pixels
SEG_SCORES = (RNG.normal(size=(N, K, C)) + 1.5 * np.eye(C)[SEG_T]).astype(f32)
SIGNED = RNG.choice([-1.0, 1.0], size=(N, K)).astype(f32)
SOFT_T = RNG.dirichlet(np.ones(C), size=N).astype(f32)  # no zeros: KL needs no clipping
COUNTS = RNG.poisson(2.0, size=(N, K)).astype(f32)
# AUC on scores that sit strictly between the thresholds of AUC(num_thresholds=11) (0.1, 0.2,
# ...): the binned curve then has one point per distinct score, so it is exact and must equal
# scikit-learn's unbinned value
LEVEL_Y = RNG.integers(0, 2, size=(N, K)).astype(f32)
LEVELS = ((np.clip(RNG.integers(0, 7, size=(N, K)) + 3 * LEVEL_Y, 0, 9) + 0.5) / 10).astype(f32)
WEIGHTS = RNG.uniform(0.0, 2.0, size=N).astype(f32)
WEIGHTS[[3, 12]] = 0.0


def rep(w, k):
    """Row weights repeated for each of the k elements of a row (row-major ravel)."""
    return None if w is None else np.repeat(w, k)


def iou_oracle(y_true, y_pred, w):
    """scikit-learn's Jaccard index averaged over the classes that occur with weight > 0."""
    weights = np.ones(len(y_true)) if w is None else w
    present = np.union1d(y_true[weights > 0], y_pred[weights > 0])
    return jaccard_score(y_true, y_pred, labels=present, average="macro", sample_weight=w)


def huber_np(error, delta=1.0):
    """Keras's Huber: 0.5 e**2 for |e| <= delta, delta * (|e| - delta / 2) beyond."""
    return np.where(np.abs(error) <= delta, 0.5 * error**2, delta * (np.abs(error) - 0.5 * delta))


def loss_oracle(per_sample):
    return lambda t, p, w: np.average(per_sample(t, p), weights=w)


def f1_case(average, y_true=LABELS):
    return (
        lambda: metrics.F1Score(num_classes=C, average=average),
        y_true,
        SCORES,
        lambda t, p, w: f1_score(
            LABELS, p.argmax(-1), labels=range(C), average=average, sample_weight=w, zero_division=0
        ),
    )


# name: (factory, y_true, y_pred, oracle(y_true, y_pred, sample_weight) on the whole data set)
CASES = {
    "mean_absolute_error": (
        metrics.MeanAbsoluteError,
        REG_T,
        REG_P,
        lambda t, p, w: sk_mae(t, p, sample_weight=w),
    ),
    "mean_absolute_percentage_error": (
        metrics.MeanAbsolutePercentageError,
        REG_T,
        REG_P,
        lambda t, p, w: 100 * sk_mape(t, p, sample_weight=w),  # sklearn gives a fraction
    ),
    "mean_squared_logarithmic_error": (
        metrics.MeanSquaredLogarithmicError,
        REG_T,
        REG_P,
        lambda t, p, w: sk_msle(t, p, sample_weight=w),
    ),
    "root_mean_squared_error": (
        metrics.RootMeanSquaredError,
        REG_T,
        REG_P,
        lambda t, p, w: np.sqrt(sk_mse(t, p, sample_weight=w)),  # root of the pooled mean
    ),
    "accuracy_exact": (metrics.Accuracy, INT_T, INT_P, lambda t, p, w: accuracy_score(t, p, sample_weight=w)),
    "accuracy_exact_multi_output": (
        metrics.Accuracy,
        INT2_T,
        INT2_P,
        lambda t, p, w: accuracy_score(t.ravel(), p.ravel(), sample_weight=rep(w, K)),
    ),
    "binary_accuracy": (
        metrics.BinaryAccuracy,
        BIN_Y,
        BIN_P,
        lambda t, p, w: accuracy_score(t.ravel(), p.ravel() > 0.5, sample_weight=rep(w, K)),
    ),
    "binary_accuracy_threshold_0.3": (
        lambda: metrics.BinaryAccuracy(threshold=0.3),
        BIN_Y,
        BIN_P,
        lambda t, p, w: accuracy_score(t.ravel(), p.ravel() > 0.3, sample_weight=rep(w, K)),
    ),
    "categorical_accuracy": (
        metrics.CategoricalAccuracy,
        ONE_HOT,
        SCORES,
        lambda t, p, w: accuracy_score(t.argmax(-1), p.argmax(-1), sample_weight=w),
    ),
    "top_2_categorical_accuracy": (
        lambda: metrics.TopKCategoricalAccuracy(k=2),
        ONE_HOT,
        SCORES,
        lambda t, p, w: top_k_accuracy_score(t.argmax(-1), p, k=2, labels=range(C), sample_weight=w),
    ),
    "sparse_top_1_categorical_accuracy": (
        lambda: metrics.SparseTopKCategoricalAccuracy(k=1),
        LABELS,
        SCORES,
        lambda t, p, w: top_k_accuracy_score(t, p, k=1, labels=range(C), sample_weight=w),
    ),
    "sparse_top_3_categorical_accuracy": (
        lambda: metrics.SparseTopKCategoricalAccuracy(k=3),
        LABELS,
        SCORES,
        lambda t, p, w: top_k_accuracy_score(t, p, k=3, labels=range(C), sample_weight=w),
    ),
    "auto_accuracy_single_column": (
        metrics.AutoAccuracy,
        COLUMN_Y,
        COLUMN_P,
        lambda t, p, w: accuracy_score(t.ravel(), p.ravel() > 0.5, sample_weight=w),
    ),
    "auto_accuracy_one_hot": (
        metrics.AutoAccuracy,
        ONE_HOT,
        SCORES,
        lambda t, p, w: accuracy_score(t.argmax(-1), p.argmax(-1), sample_weight=w),
    ),
    "auto_accuracy_class_indices": (
        metrics.AutoAccuracy,
        LABELS,
        SCORES,
        lambda t, p, w: accuracy_score(t, p.argmax(-1), sample_weight=w),
    ),
    "precision": (
        metrics.Precision,
        BIN_Y,
        BIN_P,
        lambda t, p, w: precision_score(t.ravel(), p.ravel() > 0.5, sample_weight=rep(w, K), zero_division=0),
    ),
    "precision_threshold_0.3": (
        lambda: metrics.Precision(threshold=0.3),
        BIN_Y,
        BIN_P,
        lambda t, p, w: precision_score(t.ravel(), p.ravel() > 0.3, sample_weight=rep(w, K), zero_division=0),
    ),
    "recall": (
        metrics.Recall,
        BIN_Y,
        BIN_P,
        lambda t, p, w: recall_score(t.ravel(), p.ravel() > 0.5, sample_weight=rep(w, K), zero_division=0),
    ),
    "recall_threshold_0.7": (
        lambda: metrics.Recall(threshold=0.7),
        BIN_Y,
        BIN_P,
        lambda t, p, w: recall_score(t.ravel(), p.ravel() > 0.7, sample_weight=rep(w, K), zero_division=0),
    ),
    "f1_score_binary": (
        metrics.F1Score,
        BIN_Y,
        BIN_P,
        lambda t, p, w: f1_score(t.ravel(), p.ravel() > 0.5, sample_weight=rep(w, K), zero_division=0),
    ),
    "f1_score_binary_threshold_0.3": (
        lambda: metrics.F1Score(threshold=0.3),
        BIN_Y,
        BIN_P,
        lambda t, p, w: f1_score(t.ravel(), p.ravel() > 0.3, sample_weight=rep(w, K), zero_division=0),
    ),
    "f1_score_macro": f1_case("macro"),
    "f1_score_micro": f1_case("micro"),
    "f1_score_weighted": f1_case("weighted"),
    "f1_score_per_class": f1_case(None),
    "f1_score_macro_one_hot_targets": f1_case("macro", ONE_HOT),
    "mean_iou_class_predictions": (
        lambda: metrics.MeanIoU(num_classes=C),
        LABELS,
        SCORES.argmax(-1).astype(np.int32),
        iou_oracle,
    ),
    "mean_iou_class_scores": (
        lambda: metrics.MeanIoU(num_classes=C),
        LABELS,
        SCORES,
        lambda t, p, w: iou_oracle(t, p.argmax(-1), w),
    ),
    "mean_iou_segmentation_maps": (
        lambda: metrics.MeanIoU(num_classes=C),
        SEG_T,
        SEG_SCORES,
        lambda t, p, w: iou_oracle(t.ravel(), p.argmax(-1).ravel(), rep(w, K)),
    ),
    "auc_roc": (
        lambda: metrics.AUC(num_thresholds=11),
        LEVEL_Y,
        LEVELS,
        lambda t, p, w: roc_auc_score(t.ravel(), p.ravel(), sample_weight=rep(w, K)),
    ),
    "auc_pr": (
        lambda: metrics.AUC(num_thresholds=11, curve="PR"),
        LEVEL_Y,
        LEVELS,
        lambda t, p, w: average_precision_score(t.ravel(), p.ravel(), sample_weight=rep(w, K)),
    ),
    "auc_roc_from_logits": (
        lambda: metrics.AUC(num_thresholds=11, from_logits=True),
        LEVEL_Y,
        np.log(LEVELS / (1 - LEVELS)).astype(f32),
        lambda t, p, w: roc_auc_score(t.ravel(), p.ravel(), sample_weight=rep(w, K)),  # monotone in p
    ),
    # losses used as metrics: the per-sample loss averaged with the sample weights
    "binary_crossentropy_as_metric": (
        lambda: metrics.get("binary_crossentropy"),
        BIN_Y,
        BIN_P,
        # each row is the mean over its columns: the mean of the columns' log losses
        lambda t, p, w: np.mean([log_loss(t[:, j], p[:, j], sample_weight=w) for j in range(K)]),
    ),
    "categorical_crossentropy_as_metric": (
        lambda: metrics.get("categorical_crossentropy"),
        ONE_HOT,
        PROBS,
        lambda t, p, w: log_loss(t.argmax(-1), p, labels=range(C), sample_weight=w),
    ),
    "sparse_categorical_crossentropy_from_logits_as_metric": (
        lambda: metrics.get(losses.SparseCategoricalCrossentropy(from_logits=True)),
        LABELS,
        SCORES,
        loss_oracle(lambda t, p: -np.log(_softmax(np.float64(p)))[np.arange(len(t)), t]),
    ),
    "kl_divergence_as_metric": (
        lambda: metrics.get("kl_divergence"),
        SOFT_T,
        PROBS,
        loss_oracle(lambda t, p: np.sum(t * np.log(np.float64(t) / p), -1)),
    ),
    "poisson_as_metric": (
        lambda: metrics.get("poisson"),
        COUNTS,
        REG_P + 0.1,
        loss_oracle(lambda t, p: np.mean(p - t * np.log(p + 1e-7), -1)),
    ),
    "hinge_as_metric": (
        lambda: metrics.get("hinge"),
        SIGNED,
        SCORES,
        loss_oracle(lambda t, p: np.mean(np.maximum(1 - t * np.float64(p), 0), -1)),
    ),
    "huber_as_metric": (
        lambda: metrics.get("huber"),
        REG_T,
        REG_P,
        loss_oracle(lambda t, p: np.mean(huber_np(np.float64(p) - t), -1)),
    ),
    "log_cosh_as_metric": (
        lambda: metrics.get("log_cosh"),
        REG_T,
        REG_P,
        loss_oracle(lambda t, p: np.mean(np.log(np.cosh(np.float64(p) - t)), -1)),
    ),
    "cosine_similarity_as_metric": (
        lambda: metrics.get("cosine_similarity"),
        REG_T - 1.5,
        REG_P - 1.5,
        loss_oracle(
            lambda t, p: -np.sum(t * p, -1) / np.linalg.norm(t, axis=-1) / np.linalg.norm(p, axis=-1)
        ),
    ),
}
CASE_IDS = sorted(CASES)


def ragged_batches(y_true, y_pred, sample_weight):
    """The data in batches of 8, 8 and 5 rows, the last padded to 8 with a mask."""
    for start in range(0, len(y_true), BATCH):
        rows = slice(start, start + BATCH)
        w = None if sample_weight is None else sample_weight[rows]
        yield padded_batch(y_pred[rows], y_true[rows], w, BATCH)


def accumulate(metric, y_true, y_pred, sample_weight):
    state = metric.init()
    for batch in ragged_batches(y_true, y_pred, sample_weight):
        state = metric.update(state, batch.y, batch.x, batch.sample_weight, batch.mask)
    return np.asarray(metric.compute(state), np.float64)


@functools.cache
def eager_result(case, weighted=True):
    """The metric accumulated eagerly over the ragged batches (cached: two tests use it)."""
    make, y_true, y_pred, _ = CASES[case]
    return accumulate(make(), y_true, y_pred, WEIGHTS if weighted else None)


@functools.cache
def expected(case, weighted=True):
    _, y_true, y_pred, oracle = CASES[case]
    return np.asarray(oracle(y_true, y_pred, WEIGHTS if weighted else None), np.float64)


def close(actual, expected_value, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected_value, rtol=rtol, atol=atol)


# --- exactness over ragged batches, weighted and unweighted -------------------------------------


def test_data_has_a_ragged_final_batch():
    sizes = [b.num_real for b in ragged_batches(REG_T, REG_P, WEIGHTS)]
    assert sizes == [8, 8, 5]


@pytest.mark.parametrize("weighted", [True, False], ids=["weighted", "unweighted"])
@pytest.mark.parametrize("case", CASE_IDS)
def test_ragged_batches_equal_oracle_on_whole_data_set(case, weighted):
    close(eager_result(case, weighted), expected(case, weighted))


@functools.cache
def jitted_results():
    """Every case accumulated with jax.jit-compiled update and compute: one compiled update
    for all cases (called once per batch) instead of one per case keeps the file fast."""
    instances = {c: CASES[c][0]() for c in CASE_IDS}

    def update_all(states, batches):
        return {
            c: m.update(states[c], batches[c].y, batches[c].x, batches[c].sample_weight, batches[c].mask)
            for c, m in instances.items()
        }

    update = jax.jit(update_all)
    compute = jax.jit(lambda states: {c: m.compute(states[c]) for c, m in instances.items()})
    states = {c: m.init() for c, m in instances.items()}
    per_case = {c: list(ragged_batches(CASES[c][1], CASES[c][2], WEIGHTS)) for c in CASE_IDS}
    for i in range(len(per_case[CASE_IDS[0]])):
        states = update(states, {c: per_case[c][i] for c in CASE_IDS})
    return compute(states)


@pytest.mark.parametrize("case", CASE_IDS)
def test_update_and_compute_under_jit_match_eager_and_oracle(case):
    jitted = np.asarray(jitted_results()[case], np.float64)
    np.testing.assert_allclose(jitted, eager_result(case), rtol=1e-6, atol=1e-7)
    close(jitted, expected(case))


@pytest.mark.parametrize("case", CASE_IDS)
def test_all_zero_sample_weights_give_a_finite_result(case):
    make, y_true, y_pred, _ = CASES[case]
    metric = make()
    state = metric.update(metric.init(), y_true[:BATCH], y_pred[:BATCH], np.zeros(BATCH, f32))
    assert np.all(np.isfinite(np.asarray(metric.compute(state))))


def test_sum_over_ragged_weighted_batches_equals_weighted_total():
    values = REG_T[:, 0]
    metric, state = metrics.Sum(), metrics.Sum().init()
    for batch in ragged_batches(values, values, WEIGHTS):
        state = metric.update(state, batch.y, batch.sample_weight, batch.mask)
    close(metric.compute(state), np.sum(np.float64(WEIGHTS) * values))


@pytest.mark.parametrize(
    "make, oracle",
    [
        (metrics.BinaryAccuracy, lambda t, p, w: accuracy_score(t, p > 0.5, sample_weight=w)),
        (metrics.AutoAccuracy, lambda t, p, w: accuracy_score(t, p > 0.5, sample_weight=w)),
        (metrics.MeanAbsoluteError, lambda t, p, w: sk_mae(t, p, sample_weight=w)),
        (metrics.RootMeanSquaredError, lambda t, p, w: np.sqrt(sk_mse(t, p, sample_weight=w))),
    ],
    ids=["binary_accuracy", "auto_accuracy", "mean_absolute_error", "root_mean_squared_error"],
)
def test_one_dimensional_targets_and_predictions_are_one_value_per_sample(make, oracle):
    # A model whose output is (batch,) against (batch,) targets: each element is a sample, so
    # sample weights and the padding mask apply per element.
    y_true, y_pred = COLUMN_Y[:, 0], COLUMN_P[:, 0]
    close(accumulate(make(), y_true, y_pred, WEIGHTS), oracle(y_true, y_pred, WEIGHTS))


@pytest.mark.parametrize("k", [C, C + 2])
def test_top_k_with_k_at_least_the_number_of_classes_counts_every_row(k):
    # every label is among the k best scores when k >= the number of classes
    assert accumulate(metrics.SparseTopKCategoricalAccuracy(k=k), LABELS, SCORES, WEIGHTS) == 1.0


# --- one class present ----------------------------------------------------------------------------


@pytest.mark.parametrize("truth", [0.0, 1.0], ids=["all_negative", "all_positive"])
@pytest.mark.parametrize(
    "make, sk",
    [(metrics.Precision, precision_score), (metrics.Recall, recall_score), (metrics.F1Score, f1_score)],
    ids=["precision", "recall", "f1_score"],
)
def test_binary_metric_with_one_class_present_matches_sklearn(make, sk, truth):
    y_true = np.full((N, K), truth, f32)
    result = accumulate(make(), y_true, BIN_P, WEIGHTS)
    expected_value = sk(y_true.ravel(), BIN_P.ravel() > 0.5, sample_weight=rep(WEIGHTS, K), zero_division=0)
    close(result, expected_value)


@pytest.mark.parametrize("average", ["macro", "micro", "weighted", None])
def test_f1_score_with_one_class_present_matches_sklearn(average):
    labels = np.full(N, 2, np.int32)
    result = accumulate(metrics.F1Score(num_classes=C, average=average), labels, SCORES, WEIGHTS)
    expected_value = f1_score(
        labels, SCORES.argmax(-1), labels=range(C), average=average, sample_weight=WEIGHTS, zero_division=0
    )
    close(result, expected_value)


def test_mean_iou_with_one_class_present_matches_sklearn():
    labels = np.full(N, 2, np.int32)
    result = accumulate(metrics.MeanIoU(num_classes=C), labels, SCORES, WEIGHTS)
    close(result, iou_oracle(labels, SCORES.argmax(-1), WEIGHTS))


def test_mean_iou_of_a_single_class_predicted_perfectly_is_one():
    labels = np.full(N, 1, np.int32)
    assert accumulate(metrics.MeanIoU(num_classes=C), labels, labels, WEIGHTS) == 1.0


@pytest.mark.parametrize("truth", [0.0, 1.0], ids=["all_negative", "all_positive"])
@pytest.mark.parametrize("curve", ["ROC", "PR"])
def test_auc_with_one_class_present_is_finite(curve, truth):
    result = accumulate(
        metrics.AUC(num_thresholds=11, curve=curve), np.full((N, K), truth, f32), LEVELS, WEIGHTS
    )
    assert np.isfinite(result) and 0.0 <= result <= 1.0


# --- AUC: binned approximation of the exact curve ---------------------------------------------------

AUC_N = 500
AUC_Y = RNG.integers(0, 2, size=(AUC_N, 1)).astype(f32)
AUC_SCORES = (1 / (1 + np.exp(-(RNG.normal(size=(AUC_N, 1)) + 1.2 * AUC_Y)))).astype(f32)
AUC_WEIGHTS = RNG.uniform(0.2, 2.0, size=AUC_N).astype(f32)


@functools.cache
def auc_1000_values():
    """Both curves, unweighted and weighted, in one compiled call (keeps the file fast)."""

    def value(curve, weights):
        metric = metrics.AUC(num_thresholds=1000, curve=curve)
        return metric.compute(metric.update(metric.init(), AUC_Y, AUC_SCORES, weights))

    all_values = lambda w: {
        (c, weighted): value(c, w if weighted else None) for c in ("ROC", "PR") for weighted in (False, True)
    }
    return {key: float(v) for key, v in jax.jit(all_values)(AUC_WEIGHTS).items()}


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_auc_roc_with_1000_thresholds_is_within_0_005_of_sklearn(weighted):
    exact = roc_auc_score(AUC_Y.ravel(), AUC_SCORES.ravel(), sample_weight=AUC_WEIGHTS if weighted else None)
    assert abs(auc_1000_values()["ROC", weighted] - exact) < 0.005


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_auc_pr_with_1000_thresholds_is_within_0_01_of_average_precision(weighted):
    weights = AUC_WEIGHTS if weighted else None
    exact = average_precision_score(AUC_Y.ravel(), AUC_SCORES.ravel(), sample_weight=weights)
    assert abs(auc_1000_values()["PR", weighted] - exact) < 0.01


@pytest.mark.parametrize("curve", ["ROC", "PR"])
def test_auc_of_perfectly_separated_scores_is_one(curve):
    y_true = LEVEL_Y
    scores = np.where(y_true == 1, RNG.uniform(0.6, 1.0, (N, K)), RNG.uniform(0.0, 0.4, (N, K))).astype(f32)
    result = accumulate(metrics.AUC(num_thresholds=11, curve=curve), y_true, scores, WEIGHTS)
    assert result == pytest.approx(1.0, abs=1e-6)


# --- losses as metrics ------------------------------------------------------------------------------


def test_loss_with_ignore_class_as_metric_leaves_ignored_rows_out():
    loss = losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)
    kept = LABELS != 0
    per_sample = -np.log(_softmax(np.float64(SCORES)))[np.arange(N), LABELS]
    result = accumulate(metrics.get(loss), LABELS, SCORES, WEIGHTS)
    close(result, np.average(per_sample[kept], weights=WEIGHTS[kept]))


@pytest.mark.parametrize("name", sorted(losses.NAMES))
def test_every_loss_name_is_a_metric_named_so(name):
    metric = metrics.get(name)
    assert isinstance(metric, metrics.MeanMetricWrapper)
    assert metric.name == name


def test_loss_object_as_metric_keeps_its_name():
    assert metrics.get(losses.Huber(delta=2.0, name="robust")).name == "robust"


# --- names and get ---------------------------------------------------------------------------------

METRIC_NAMES = {
    "accuracy": metrics.AutoAccuracy,
    "acc": metrics.AutoAccuracy,
    "binary_accuracy": metrics.BinaryAccuracy,
    "categorical_accuracy": metrics.CategoricalAccuracy,
    "sparse_categorical_accuracy": metrics.SparseCategoricalAccuracy,
    "top_k_categorical_accuracy": metrics.TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": metrics.SparseTopKCategoricalAccuracy,
    "mean_squared_error": metrics.MeanSquaredError,
    "mse": metrics.MeanSquaredError,
    "mean_absolute_error": metrics.MeanAbsoluteError,
    "mae": metrics.MeanAbsoluteError,
    "mean_absolute_percentage_error": metrics.MeanAbsolutePercentageError,
    "mape": metrics.MeanAbsolutePercentageError,
    "mean_squared_logarithmic_error": metrics.MeanSquaredLogarithmicError,
    "msle": metrics.MeanSquaredLogarithmicError,
    "root_mean_squared_error": metrics.RootMeanSquaredError,
    "rmse": metrics.RootMeanSquaredError,
    "precision": metrics.Precision,
    "recall": metrics.Recall,
    "auc": metrics.AUC,
}


@pytest.mark.parametrize("name", sorted(METRIC_NAMES))
def test_get_by_name_builds_the_metric_named_so(name):
    metric = metrics.get(name)
    assert type(metric) is METRIC_NAMES[name]
    assert metric.name == name


@pytest.mark.parametrize(
    "metric, name",
    [
        (metrics.BinaryAccuracy(), "binary_accuracy"),
        (metrics.CategoricalAccuracy(), "categorical_accuracy"),
        (metrics.TopKCategoricalAccuracy(), "top_k_categorical_accuracy"),
        (metrics.SparseTopKCategoricalAccuracy(), "sparse_top_k_categorical_accuracy"),
        (metrics.MeanAbsoluteError(), "mean_absolute_error"),
        (metrics.MeanAbsolutePercentageError(), "mean_absolute_percentage_error"),
        (metrics.MeanSquaredLogarithmicError(), "mean_squared_logarithmic_error"),
        (metrics.RootMeanSquaredError(), "root_mean_squared_error"),
        (metrics.Precision(), "precision"),
        (metrics.Recall(), "recall"),
        (metrics.F1Score(), "f1_score"),
        (metrics.AUC(), "auc"),
        (metrics.Accuracy(), "accuracy"),
        (metrics.Sum(), "sum"),
        (metrics.MeanIoU(num_classes=3), "mean_iou"),
        (metrics.F1Score(num_classes=3, name="f1"), "f1"),
    ],
)
def test_default_metric_name_is_snake_case(metric, name):
    assert metric.name == name


def test_get_unknown_name_lists_every_accepted_name():
    with pytest.raises(ValueError) as info:
        metrics.get("acuracy")
    message = str(info.value)
    assert "acuracy" in message
    for valid in sorted(METRIC_NAMES) + sorted(losses.NAMES):  # loss names are accepted too
        assert repr(valid) in message, valid


# --- bad input ---------------------------------------------------------------------------------------

B = BATCH  # one batch of rows: the shapes the compiled step sees
MISMATCHES = {  # y_true one column short, or (class indices) one row short
    "accuracy": (metrics.Accuracy, INT2_T[:B, :3], INT2_P[:B]),
    "binary_accuracy": (metrics.BinaryAccuracy, BIN_Y[:B, :3], BIN_P[:B]),
    "categorical_accuracy": (metrics.CategoricalAccuracy, ONE_HOT[:B, :3], SCORES[:B]),
    "top_k_categorical_accuracy": (lambda: metrics.TopKCategoricalAccuracy(k=2), ONE_HOT[:B, :3], SCORES[:B]),
    "sparse_top_k_categorical_accuracy": (metrics.SparseTopKCategoricalAccuracy, LABELS[: B - 1], SCORES[:B]),
    "auto_accuracy": (metrics.AutoAccuracy, ONE_HOT[:B, :3], SCORES[:B]),
    "precision": (metrics.Precision, BIN_Y[:B, :3], BIN_P[:B]),
    "recall": (metrics.Recall, BIN_Y[:B, :3], BIN_P[:B]),
    "f1_score_binary": (metrics.F1Score, BIN_Y[:B, :3], BIN_P[:B]),
    "f1_score_multiclass": (lambda: metrics.F1Score(num_classes=C), LABELS[: B - 1], SCORES[:B]),
    "f1_score_multiclass_one_hot": (lambda: metrics.F1Score(num_classes=C), ONE_HOT[:B, :3], SCORES[:B]),
    "mean_iou_class_predictions": (lambda: metrics.MeanIoU(num_classes=C), LABELS[: B - 1], LABELS[:B]),
    "mean_iou_class_scores": (lambda: metrics.MeanIoU(num_classes=C), LABELS[: B - 1], SCORES[:B]),
    "auc": (metrics.AUC, BIN_Y[:B, :3], BIN_P[:B]),
    "mean_absolute_error": (metrics.MeanAbsoluteError, REG_T[:B, :3], REG_P[:B]),
    "mean_absolute_percentage_error": (metrics.MeanAbsolutePercentageError, REG_T[:B, :3], REG_P[:B]),
    "mean_squared_logarithmic_error": (metrics.MeanSquaredLogarithmicError, REG_T[:B, :3], REG_P[:B]),
    "root_mean_squared_error": (metrics.RootMeanSquaredError, REG_T[:B, :3], REG_P[:B]),
    "loss_as_metric": (lambda: metrics.get("huber"), REG_T[:B, :3], REG_P[:B]),
}


@pytest.mark.parametrize("case", sorted(MISMATCHES))
def test_shape_mismatch_raises_naming_both_shapes(case):
    make, y_true, y_pred = MISMATCHES[case]
    metric = make()
    with pytest.raises(ValueError) as info:
        metric.update(metric.init(), y_true, y_pred)
    message = str(info.value)
    assert str(y_true.shape) in message and str(y_pred.shape) in message


@pytest.mark.parametrize(
    "make",
    [lambda: metrics.F1Score(num_classes=C - 1), lambda: metrics.MeanIoU(num_classes=C - 1)],
    ids=["f1_score", "mean_iou"],
)
def test_scores_for_more_classes_than_num_classes_raise(make):
    # SCORES has C columns: a metric configured for C - 1 classes must not silently drop one
    metric = make()
    with pytest.raises(ValueError, match="num_classes"):
        metric.update(metric.init(), LABELS[:BATCH] % (C - 1), SCORES[:BATCH])


@pytest.mark.parametrize(
    "make, argument",
    [
        (lambda: metrics.F1Score(average="bogus"), "average"),
        (lambda: metrics.F1Score(num_classes=1), "num_classes"),
        (lambda: metrics.AUC(curve="XY"), "curve"),
        (lambda: metrics.AUC(num_thresholds=2), "num_thresholds"),
        (lambda: metrics.AUC(num_thresholds=100.0), "num_thresholds"),
        (lambda: metrics.MeanIoU(num_classes=1), "num_classes"),
        (lambda: metrics.MeanIoU(num_classes=0), "num_classes"),
        (lambda: metrics.MeanIoU(num_classes=2.5), "num_classes"),
    ],
    ids=[
        "f1_average_bogus",
        "f1_one_class",
        "auc_curve_xy",
        "auc_two_thresholds",
        "auc_float_thresholds",
        "mean_iou_one_class",
        "mean_iou_zero_classes",
        "mean_iou_float_classes",
    ],
)
def test_invalid_constructor_argument_raises_naming_it(make, argument):
    with pytest.raises(ValueError, match=argument):
        make()


@pytest.mark.parametrize("accumulator", [metrics.Mean(), metrics.Sum()], ids=["Mean", "Sum"])
def test_an_accumulator_of_values_is_refused_as_a_model_metric(accumulator):
    """Mean and Sum take values, not (y_true, y_pred): as a metric they would read the
    targets as values and the predictions as weights."""
    with pytest.raises(
        TypeError, match=rf"metrics: elegy.metrics.{type(accumulator).__name__} reduces values"
    ):
        metrics.get(accumulator)
    assert not isinstance(accumulator, metrics.Metric)

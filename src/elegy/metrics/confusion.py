"""Metrics built from weighted confusion counts: Precision, Recall, F1Score, MeanIoU.

The counts (true positives, false positives, false negatives, or a whole confusion
matrix) are summed over the epoch and the ratio is taken once at the end, so the epoch
value is the value over all samples, as scikit-learn computes it on the whole data set.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from elegy.arguments import check_int
from elegy.metrics.metric import Metric
from elegy.shapes import class_indices, matching_targets
from elegy.weighting import element_weights

AVERAGES = (None, "micro", "macro", "weighted")


def _ratio(numerator: jnp.ndarray, denominator: jnp.ndarray) -> jnp.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (scikit-learn's zero_division=0)."""
    return jnp.where(denominator > 0, numerator / jnp.where(denominator > 0, denominator, 1.0), 0.0)


def _binary_counts(
    y_true: Any,
    y_pred: Any,
    threshold: float,
    sample_weight: jnp.ndarray | None,
    mask: jnp.ndarray | None,
    who: str,
) -> jnp.ndarray:
    """Weighted (tp, fp, fn) of `y_pred > threshold` against 0/1 targets, element-wise."""
    y_true = matching_targets(y_true, y_pred, who) > 0.5
    predicted = y_pred > threshold
    weights = element_weights(jnp.asarray(y_pred, jnp.float32), sample_weight, mask)
    count: Callable[[jnp.ndarray], jnp.ndarray] = lambda condition: jnp.sum(weights * condition)
    return jnp.stack([count(predicted & y_true), count(predicted & ~y_true), count(~predicted & y_true)])


class _BinaryCounts(Metric):
    def __init__(self, threshold: float = 0.5, name: str | None = None, on: Any = None):
        super().__init__(name, on=on)
        self.threshold = threshold

    def init(self) -> jnp.ndarray:
        return jnp.zeros(3, jnp.float32)  # tp, fp, fn

    def update(
        self,
        state: jnp.ndarray,
        y_true: Any,
        y_pred: Any,
        sample_weight: jnp.ndarray | None = None,
        mask: jnp.ndarray | None = None,
    ) -> jnp.ndarray:
        return state + _binary_counts(y_true, y_pred, self.threshold, sample_weight, mask, self.name)


class Precision(_BinaryCounts):
    """tp / (tp + fp) of `y_pred > threshold` against 0/1 targets (multi-label: element-wise).

    Examples:
        Two scores are above 0.5 and one of them is a true positive: `1 / (1 + 1)`.

        >>> import jax.numpy as jnp
        >>> m = Precision()
        >>> y_true, y_pred = jnp.array([1.0, 1.0, 1.0, 0.0, 0.0]), jnp.array([0.9, 0.2, 0.3, 0.7, 0.1])
        >>> state = m.update(m.init(), y_true, y_pred)
        >>> float(m.compute(state))
        0.5
    """

    def compute(self, state: jnp.ndarray) -> jnp.ndarray:
        tp, fp, _ = state
        return _ratio(tp, tp + fp)


class Recall(_BinaryCounts):
    """tp / (tp + fn) of `y_pred > threshold` against 0/1 targets (multi-label: element-wise).

    Examples:
        Of the three positives, only the one scored 0.9 is above 0.5: `1 / 3`.

        >>> import jax.numpy as jnp
        >>> m = Recall()
        >>> y_true, y_pred = jnp.array([1.0, 1.0, 1.0, 0.0, 0.0]), jnp.array([0.9, 0.2, 0.3, 0.7, 0.1])
        >>> state = m.update(m.init(), y_true, y_pred)
        >>> round(float(m.compute(state)), 4)
        0.3333
    """

    def compute(self, state: jnp.ndarray) -> jnp.ndarray:
        tp, _, fn = state
        return _ratio(tp, tp + fn)


def _check_classes(scores: jnp.ndarray, num_classes: int, who: str) -> None:
    if jnp.shape(scores)[-1] != num_classes:
        raise ValueError(
            f"{who}: y_pred has scores for {jnp.shape(scores)[-1]} classes (shape "
            f"{jnp.shape(scores)}) but num_classes={num_classes}"
        )


def _class_labels(y_true: Any, y_pred: Any, who: str) -> jnp.ndarray:
    """Integer labels from class indices or from one-hot targets shaped like the scores."""
    y_true = jnp.asarray(y_true)
    if y_true.shape == jnp.shape(y_pred) and y_true.shape[-1] > 1:
        return jnp.argmax(y_true, axis=-1)
    return class_indices(y_true, y_pred, who)


class F1Score(Metric):
    """Harmonic mean of precision and recall, binary or multiclass.

    Binary (`num_classes=None`): `y_pred` holds probabilities of the positive class,
    thresholded at `threshold`, and the value is the positive class's F1. Multiclass:
    `y_pred` holds scores for `num_classes` classes (the arg-max is the prediction) and
    `y_true` class indices or one-hot rows; `average` is `"macro"` (mean over classes),
    `"micro"` (from pooled counts), `"weighted"` (by support) or None (one value per
    class, logged as `f1_score_0`, `f1_score_1`, ...).

    Examples:
        Labels (0, 1, 2, 2) predicted as (0, 2, 2, 2): class 0 is perfect (F1 = 1),
        class 1 is never found (0), and class 2 has tp=2, fp=1, fn=0, so
        `F1 = 2 * 2 / (2 * 2 + 1) = 0.8`. The macro average is `1.8 / 3 = 0.6`.

        >>> import jax.numpy as jnp
        >>> y_true = jnp.array([0, 1, 2, 2])
        >>> y_pred = jnp.array([[0.8, 0.1, 0.1], [0.2, 0.3, 0.5], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]])
        >>> per_class, macro = F1Score(num_classes=3, average=None), F1Score(num_classes=3)
        >>> scores = per_class.compute(per_class.update(per_class.init(), y_true, y_pred))
        >>> [round(float(v), 4) for v in scores]
        [1.0, 0.0, 0.8]
        >>> round(float(macro.compute(macro.update(macro.init(), y_true, y_pred))), 4)
        0.6
    """

    def __init__(
        self,
        num_classes: int | None = None,
        average: str | None = "macro",
        threshold: float = 0.5,
        name: str | None = None,
        on: Any = None,
    ):
        if average not in AVERAGES:
            raise ValueError(f"average must be one of {AVERAGES}, got {average!r}")
        num_classes = check_int(num_classes, "num_classes (None: binary)", 2, allow_none=True)
        super().__init__(name, on=on)
        self.num_classes, self.average, self.threshold = num_classes, average, threshold

    def init(self) -> jnp.ndarray:
        return jnp.zeros((3, self.num_classes or 1), jnp.float32)  # tp, fp, fn per class

    def update(
        self,
        state: jnp.ndarray,
        y_true: Any,
        y_pred: Any,
        sample_weight: jnp.ndarray | None = None,
        mask: jnp.ndarray | None = None,
    ) -> jnp.ndarray:
        if self.num_classes is None:
            return (
                state
                + _binary_counts(y_true, y_pred, self.threshold, sample_weight, mask, self.name)[:, None]
            )
        _check_classes(y_pred, self.num_classes, self.name)
        labels = _class_labels(y_true, y_pred, self.name)
        truth = jax.nn.one_hot(labels, self.num_classes)
        predicted = jax.nn.one_hot(jnp.argmax(y_pred, axis=-1), self.num_classes)
        weights = element_weights(labels.astype(jnp.float32), sample_weight, mask)[..., None]
        counts = [truth * predicted, (1 - truth) * predicted, truth * (1 - predicted)]
        axes = tuple(range(labels.ndim))
        return state + jnp.stack([jnp.sum(weights * c, axis=axes) for c in counts])

    def compute(self, state: jnp.ndarray) -> jnp.ndarray:
        tp, fp, fn = state
        if self.average == "micro":
            return _ratio(2 * tp.sum(), 2 * tp.sum() + fp.sum() + fn.sum())
        per_class = _ratio(2 * tp, 2 * tp + fp + fn)
        if self.num_classes is None:
            return per_class[0]
        if self.average == "macro":
            return per_class.mean()
        if self.average == "weighted":
            support = tp + fn
            return _ratio(jnp.sum(per_class * support), support.sum())
        return per_class


class MeanIoU(Metric):
    """Intersection over union per class, averaged over the classes that occur.

    `y_true` holds class indices of any shape (e.g. segmentation maps); `y_pred` holds
    either indices of the same shape or scores with one more, last axis of classes.

    Examples:
        Class 0: 1 pixel in common out of 2 marked either way (IoU 1/2); class 1: 2 of 3
        (IoU 2/3). The mean is `(1/2 + 2/3) / 2`.

        >>> import jax.numpy as jnp
        >>> m = MeanIoU(num_classes=2)
        >>> state = m.update(m.init(), jnp.array([[0, 0], [1, 1]]), jnp.array([[0, 1], [1, 1]]))
        >>> round(float(m.compute(state)), 4)
        0.5833
    """

    def __init__(self, num_classes: int, name: str | None = None, on: Any = None):
        num_classes = check_int(num_classes, "num_classes", 2)
        super().__init__(name or "mean_iou", on=on)
        self.num_classes = num_classes

    def init(self) -> jnp.ndarray:
        return jnp.zeros((self.num_classes, self.num_classes), jnp.float32)  # rows: truth

    def update(
        self,
        state: jnp.ndarray,
        y_true: Any,
        y_pred: Any,
        sample_weight: jnp.ndarray | None = None,
        mask: jnp.ndarray | None = None,
    ) -> jnp.ndarray:
        y_true, y_pred = jnp.asarray(y_true), jnp.asarray(y_pred)
        scores = y_pred.ndim == y_true.ndim + 1
        predicted = jnp.argmax(y_pred, axis=-1) if scores else y_pred
        if predicted.shape != y_true.shape:
            raise ValueError(
                f"{self.name}: y_true of shape {y_true.shape} and y_pred of shape {y_pred.shape} "
                "must match (y_pred may add a last axis of class scores)"
            )
        if scores:
            _check_classes(y_pred, self.num_classes, self.name)
        weights = element_weights(y_true.astype(jnp.float32), sample_weight, mask)
        truth = jax.nn.one_hot(y_true.astype(jnp.int32).ravel(), self.num_classes)
        guess = jax.nn.one_hot(predicted.astype(jnp.int32).ravel(), self.num_classes)
        return state + jnp.einsum("n,ni,nj->ij", weights.ravel(), truth, guess)

    def compute(self, state: jnp.ndarray) -> jnp.ndarray:
        intersection = jnp.diag(state)
        union = state.sum(0) + state.sum(1) - intersection
        present = union > 0
        return _ratio(
            jnp.sum(jnp.where(present, intersection / jnp.where(present, union, 1.0), 0.0)), present.sum()
        )

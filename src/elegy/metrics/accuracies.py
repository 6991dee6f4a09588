"""Accuracy metrics: per-sample hit indicators, averaged with weights over the epoch."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from elegy.metrics.mean import MeanMetricWrapper
from elegy.shapes import class_indices, matching_targets, per_sample_mean


def binary_accuracy(y_true: jnp.ndarray, y_pred: jnp.ndarray, threshold: float = 0.5) -> jnp.ndarray:
    """Per-sample fraction of elements where `y_pred > threshold` equals the 0/1 target.

    Examples:
        Only the first of the three scores lands on the right side of 0.5.

        >>> import jax.numpy as jnp
        >>> round(float(binary_accuracy(jnp.array([[1.0, 0.0, 1.0]]), jnp.array([[0.9, 0.6, 0.2]]))[0]), 4)
        0.3333
    """
    y_true = matching_targets(y_true, y_pred, "binary_accuracy")
    return per_sample_mean(((y_pred > threshold) == (y_true > 0.5)).astype(jnp.float32))


def categorical_accuracy(y_true: jnp.ndarray, y_pred: jnp.ndarray) -> jnp.ndarray:
    """1.0 where the arg-max of the scores equals the arg-max of the one-hot target.

    Examples:
        >>> import jax.numpy as jnp
        >>> y_true = jnp.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
        >>> [float(v) for v in categorical_accuracy(y_true, jnp.array([[0.1, 0.7, 0.2], [0.3, 0.4, 0.3]]))]
        [1.0, 0.0]
    """
    y_true = matching_targets(y_true, y_pred, "categorical_accuracy")
    return (jnp.argmax(y_pred, axis=-1) == jnp.argmax(y_true, axis=-1)).astype(jnp.float32)


def sparse_categorical_accuracy(y_true: jnp.ndarray, y_pred: jnp.ndarray) -> jnp.ndarray:
    """1.0 where the highest-scoring class equals the integer label.

    Examples:
        >>> import jax.numpy as jnp
        >>> scores = jnp.array([[0.2, 0.8], [0.6, 0.4]])
        >>> [float(v) for v in sparse_categorical_accuracy(jnp.array([1, 1]), scores)]
        [1.0, 0.0]
    """
    labels = class_indices(y_true, y_pred, "sparse_categorical_accuracy")
    return (jnp.argmax(y_pred, axis=-1) == labels).astype(jnp.float32)


def _in_top_k(scores: jnp.ndarray, labels: jnp.ndarray, k: int) -> jnp.ndarray:
    """1.0 where the label's score is among the k highest; with k >= classes, always 1."""
    top = jax.lax.top_k(scores, min(k, scores.shape[-1]))[1]
    return jnp.any(top == labels[..., None], axis=-1).astype(jnp.float32)


def top_k_categorical_accuracy(y_true: jnp.ndarray, y_pred: jnp.ndarray, k: int = 5) -> jnp.ndarray:
    """1.0 where the one-hot target's class is among the `k` highest scores.

    Examples:
        Class 0 scores second highest in the first row and lowest in the second.

        >>> import jax.numpy as jnp
        >>> y_true = jnp.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
        >>> scores = jnp.array([[0.3, 0.5, 0.2], [0.1, 0.5, 0.4]])
        >>> [float(v) for v in top_k_categorical_accuracy(y_true, scores, k=2)]
        [1.0, 0.0]
    """
    y_true = matching_targets(y_true, y_pred, "top_k_categorical_accuracy")
    return _in_top_k(y_pred, jnp.argmax(y_true, axis=-1), k)


def sparse_top_k_categorical_accuracy(y_true: jnp.ndarray, y_pred: jnp.ndarray, k: int = 5) -> jnp.ndarray:
    """1.0 where the integer label is among the `k` highest scores.

    Examples:
        Class 0 scores second highest in the first row and lowest in the second.

        >>> import jax.numpy as jnp
        >>> scores = jnp.array([[0.3, 0.5, 0.2], [0.1, 0.5, 0.4]])
        >>> [float(v) for v in sparse_top_k_categorical_accuracy(jnp.array([0, 0]), scores, k=2)]
        [1.0, 0.0]
    """
    return _in_top_k(y_pred, class_indices(y_true, y_pred, "sparse_top_k_categorical_accuracy"), k)


def exact_accuracy(y_true: jnp.ndarray, y_pred: jnp.ndarray) -> jnp.ndarray:
    """Per-sample fraction of elements where prediction and target are equal."""
    y_true = matching_targets(y_true, y_pred, "accuracy")
    hits = (y_true == y_pred).astype(jnp.float32)
    return per_sample_mean(hits)


def accuracy(y_true: jnp.ndarray, y_pred: jnp.ndarray) -> jnp.ndarray:
    """The accuracy a Keras user means by `metrics=["accuracy"]`, chosen from the shapes.

    Integer labels against class scores: class-index accuracy. Targets shaped like
    scores with several classes: one-hot accuracy. A single output column: binary
    accuracy at 0.5.

    Examples:
        The same two predictions judged against labels, one-hot rows and 0/1 targets:

        >>> import jax.numpy as jnp
        >>> scores = jnp.array([[0.2, 0.8], [0.7, 0.3]])
        >>> [float(v) for v in accuracy(jnp.array([1, 1]), scores)]
        [1.0, 0.0]
        >>> [float(v) for v in accuracy(jnp.array([[0.0, 1.0], [1.0, 0.0]]), scores)]
        [1.0, 1.0]
        >>> [float(v) for v in accuracy(jnp.array([[1.0], [1.0]]), scores[:, 1:])]
        [1.0, 0.0]
    """
    y_true, y_pred = jnp.asarray(y_true), jnp.asarray(y_pred)
    single_column = y_pred.ndim == 1 or y_pred.shape[-1] == 1
    if single_column:
        return binary_accuracy(y_true, y_pred)
    if y_true.shape == y_pred.shape:
        return categorical_accuracy(y_true, y_pred)
    return sparse_categorical_accuracy(y_true, y_pred)


class Accuracy(MeanMetricWrapper):
    """Fraction of predictions exactly equal to the targets (for labels already decided).

    Examples:
        Three of the four predicted labels are right.

        >>> import jax.numpy as jnp
        >>> m = Accuracy()
        >>> state = m.update(m.init(), jnp.array([1, 2, 3, 4]), jnp.array([1, 2, 0, 4]))
        >>> float(m.compute(state))
        0.75
    """

    def __init__(self, name: str | None = None, on: Any = None):
        super().__init__(exact_accuracy, name or "accuracy", on=on)


class BinaryAccuracy(MeanMetricWrapper):
    """Fraction of elements where `y_pred > threshold` matches the 0/1 target.

    Examples:
        At 0.5 the first two of the four scores are right; at 0.3 the 0.4 becomes
        right too.

        >>> import jax.numpy as jnp
        >>> y_true, y_pred = jnp.array([[1.0], [0.0], [1.0], [0.0]]), jnp.array([[0.7], [0.2], [0.4], [0.6]])
        >>> metrics = [BinaryAccuracy(), BinaryAccuracy(threshold=0.3)]
        >>> [float(m.compute(m.update(m.init(), y_true, y_pred))) for m in metrics]
        [0.5, 0.75]
    """

    def __init__(self, threshold: float = 0.5, name: str | None = None, on: Any = None):
        super().__init__(binary_accuracy, name, threshold=threshold, on=on)


class CategoricalAccuracy(MeanMetricWrapper):
    """Fraction of rows whose arg-max class matches the one-hot target's.

    Examples:
        Only the first row is right; weighing it 3 times gives `3 / (3 + 1)`.

        >>> import jax.numpy as jnp
        >>> m = CategoricalAccuracy()
        >>> y_true = jnp.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
        >>> y_pred = jnp.array([[0.1, 0.7, 0.2], [0.3, 0.4, 0.3]])
        >>> float(m.compute(m.update(m.init(), y_true, y_pred, sample_weight=jnp.array([3.0, 1.0]))))
        0.75
    """

    def __init__(self, name: str | None = None, on: Any = None):
        super().__init__(categorical_accuracy, name, on=on)


class SparseCategoricalAccuracy(MeanMetricWrapper):
    """Fraction of rows whose arg-max class equals the integer label (weighted).

    Examples:
        Over two batches, two of the three rows are right.

        >>> import jax.numpy as jnp
        >>> m = SparseCategoricalAccuracy()
        >>> state = m.update(m.init(), jnp.array([1, 0]), jnp.array([[0.2, 0.8], [0.9, 0.1]]))
        >>> state = m.update(state, jnp.array([1]), jnp.array([[0.6, 0.4]]))
        >>> round(float(m.compute(state)), 4)
        0.6667
    """

    def __init__(self, name: str | None = None, on: Any = None):
        super().__init__(sparse_categorical_accuracy, name, on=on)


class TopKCategoricalAccuracy(MeanMetricWrapper):
    """Fraction of rows whose one-hot target is among the `k` highest scores.

    Examples:
        Class 0 scores second highest in the first row and lowest in the second.

        >>> import jax.numpy as jnp
        >>> m = TopKCategoricalAccuracy(k=2)
        >>> y_true = jnp.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
        >>> state = m.update(m.init(), y_true, jnp.array([[0.3, 0.5, 0.2], [0.1, 0.5, 0.4]]))
        >>> float(m.compute(state))
        0.5
    """

    def __init__(self, k: int = 5, name: str | None = None, on: Any = None):
        super().__init__(top_k_categorical_accuracy, name, k=k, on=on)


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    """Fraction of rows whose integer label is among the `k` highest scores.

    Examples:
        Class 0 scores second highest in the first row and lowest in the second.

        >>> import jax.numpy as jnp
        >>> m = SparseTopKCategoricalAccuracy(k=2)
        >>> state = m.update(m.init(), jnp.array([0, 0]), jnp.array([[0.3, 0.5, 0.2], [0.1, 0.5, 0.4]]))
        >>> float(m.compute(state))
        0.5
    """

    def __init__(self, k: int = 5, name: str | None = None, on: Any = None):
        super().__init__(sparse_top_k_categorical_accuracy, name, k=k, on=on)


class AutoAccuracy(MeanMetricWrapper):
    """`metrics=["accuracy"]`: binary, one-hot or class-index accuracy by the shapes.

    Examples:
        Integer labels against two class scores: class-index accuracy, 1 of 2 right.

        >>> import jax.numpy as jnp
        >>> m = AutoAccuracy()
        >>> state = m.update(m.init(), jnp.array([1, 1]), jnp.array([[0.2, 0.8], [0.7, 0.3]]))
        >>> m.name, float(m.compute(state))
        ('accuracy', 0.5)
    """

    def __init__(self, name: str | None = None, on: Any = None):
        super().__init__(accuracy, name or "accuracy", on=on)

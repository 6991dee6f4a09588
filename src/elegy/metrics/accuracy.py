"""Accuracy metrics."""

from __future__ import annotations

import jax.numpy as jnp

from elegy.metrics.mean import MeanMetricWrapper
from elegy.shapes import class_indices


def sparse_categorical_accuracy(y_true: jnp.ndarray, y_pred: jnp.ndarray) -> jnp.ndarray:
    """Per-sample 1.0 where the highest-scoring class equals the integer label."""
    labels = class_indices(y_true, y_pred, "sparse_categorical_accuracy")
    return (jnp.argmax(y_pred, axis=-1) == labels).astype(jnp.float32)


class SparseCategoricalAccuracy(MeanMetricWrapper):
    """Fraction of rows whose arg-max class equals the integer label (weighted)."""

    def __init__(self, name: str | None = None):
        super().__init__(sparse_categorical_accuracy, name or "sparse_categorical_accuracy")

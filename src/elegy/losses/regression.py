"""Regression losses."""

from __future__ import annotations

import jax.numpy as jnp

from elegy.losses.loss import Loss
from elegy.shapes import matching_targets


def mean_squared_error(y_true: jnp.ndarray, y_pred: jnp.ndarray) -> jnp.ndarray:
    """Per-sample mean of squared differences over the last axis (Keras's definition)."""
    y_true = matching_targets(y_true, y_pred, "mean_squared_error")
    return jnp.mean(jnp.square(y_pred - y_true), axis=-1)


class MeanSquaredError(Loss):
    """Mean squared error; see `mean_squared_error`.

    Example:
        >>> import jax.numpy as jnp
        >>> float(MeanSquaredError()(jnp.array([[0.0], [1.0]]), jnp.array([[1.0], [1.0]])))
        0.5
    """

    def call(self, y_true, y_pred):
        return mean_squared_error(y_true, y_pred)

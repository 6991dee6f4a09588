"""Regression losses: per-sample means over the last axis, as Keras defines them."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from elegy.losses.loss import LossFunctionWrapper
from elegy.shapes import matching_targets, per_sample_mean

EPSILON = 1e-7


def mean_squared_error(y_true: jnp.ndarray, y_pred: jnp.ndarray) -> jnp.ndarray:
    """`mean((y_pred - y_true)**2, axis=-1)`."""
    y_true = matching_targets(y_true, y_pred, "mean_squared_error")
    return per_sample_mean(jnp.square(y_pred - y_true))


def mean_absolute_error(y_true: jnp.ndarray, y_pred: jnp.ndarray) -> jnp.ndarray:
    """`mean(|y_pred - y_true|, axis=-1)`."""
    y_true = matching_targets(y_true, y_pred, "mean_absolute_error")
    return per_sample_mean(jnp.abs(y_pred - y_true))


def mean_absolute_percentage_error(y_true: jnp.ndarray, y_pred: jnp.ndarray) -> jnp.ndarray:
    """`100 * mean(|y_true - y_pred| / max(|y_true|, 1e-7), axis=-1)`."""
    y_true = matching_targets(y_true, y_pred, "mean_absolute_percentage_error")
    return 100.0 * per_sample_mean(jnp.abs(y_true - y_pred) / jnp.maximum(jnp.abs(y_true), EPSILON))


def mean_squared_logarithmic_error(y_true: jnp.ndarray, y_pred: jnp.ndarray) -> jnp.ndarray:
    """`mean((log1p(y_pred) - log1p(y_true))**2, axis=-1)`, inputs clipped at 1e-7 below."""
    y_true = matching_targets(y_true, y_pred, "mean_squared_logarithmic_error")
    first = jnp.log1p(jnp.maximum(y_pred, EPSILON))
    second = jnp.log1p(jnp.maximum(y_true, EPSILON))
    return per_sample_mean(jnp.square(first - second))


def huber(y_true: jnp.ndarray, y_pred: jnp.ndarray, delta: float = 1.0) -> jnp.ndarray:
    """Quadratic for errors up to `delta`, linear beyond: `0.5 e**2` or `delta (|e| - delta / 2)`."""
    y_true = matching_targets(y_true, y_pred, "huber")
    error = jnp.abs(y_pred - y_true)
    quadratic = jnp.minimum(error, delta)
    return per_sample_mean(0.5 * jnp.square(quadratic) + delta * (error - quadratic))


def log_cosh(y_true: jnp.ndarray, y_pred: jnp.ndarray) -> jnp.ndarray:
    """`mean(log(cosh(y_pred - y_true)), axis=-1)`, computed without overflow."""
    y_true = matching_targets(y_true, y_pred, "log_cosh")
    error = y_pred - y_true
    return per_sample_mean(error + jax.nn.softplus(-2.0 * error) - jnp.log(2.0))


def cosine_similarity(y_true: jnp.ndarray, y_pred: jnp.ndarray, axis: int = -1) -> jnp.ndarray:
    """Negative cosine similarity along `axis` (so that minimising aligns the vectors)."""
    y_true = matching_targets(y_true, y_pred, "cosine_similarity")
    unit = lambda v: v / jnp.sqrt(jnp.maximum(jnp.sum(jnp.square(v), axis=axis, keepdims=True), 1e-12))
    return -jnp.sum(unit(y_true) * unit(y_pred), axis=axis)


class MeanSquaredError(LossFunctionWrapper):
    """Mean squared error; see `mean_squared_error`.

    Example:
        >>> import jax.numpy as jnp
        >>> float(MeanSquaredError()(jnp.array([[0.0], [1.0]]), jnp.array([[1.0], [1.0]])))
        0.5
    """

    def __init__(self, reduction="sum_over_batch_size", weight=1.0, name=None, on=None):
        super().__init__(mean_squared_error, reduction, weight, name, on=on)


class MeanAbsoluteError(LossFunctionWrapper):
    """Mean absolute error; see `mean_absolute_error`."""

    def __init__(self, reduction="sum_over_batch_size", weight=1.0, name=None, on=None):
        super().__init__(mean_absolute_error, reduction, weight, name, on=on)


class MeanAbsolutePercentageError(LossFunctionWrapper):
    """Mean absolute percentage error; see `mean_absolute_percentage_error`."""

    def __init__(self, reduction="sum_over_batch_size", weight=1.0, name=None, on=None):
        super().__init__(mean_absolute_percentage_error, reduction, weight, name, on=on)


class MeanSquaredLogarithmicError(LossFunctionWrapper):
    """Mean squared logarithmic error; see `mean_squared_logarithmic_error`."""

    def __init__(self, reduction="sum_over_batch_size", weight=1.0, name=None, on=None):
        super().__init__(mean_squared_logarithmic_error, reduction, weight, name, on=on)


class Huber(LossFunctionWrapper):
    """Huber loss with threshold `delta`; see `huber`."""

    def __init__(self, delta=1.0, reduction="sum_over_batch_size", weight=1.0, name=None, on=None):
        super().__init__(huber, reduction, weight, name, on=on, delta=delta)


class LogCosh(LossFunctionWrapper):
    """Logarithm of the hyperbolic cosine of the error; see `log_cosh`."""

    def __init__(self, reduction="sum_over_batch_size", weight=1.0, name=None, on=None):
        super().__init__(log_cosh, reduction, weight, name, on=on)


class CosineSimilarity(LossFunctionWrapper):
    """Negative cosine similarity along `axis`; see `cosine_similarity`."""

    def __init__(self, axis=-1, reduction="sum_over_batch_size", weight=1.0, name=None, on=None):
        super().__init__(cosine_similarity, reduction, weight, name, on=on, axis=axis)

"""Regression losses: per-sample means over the last axis, as Keras defines them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from elegy.losses.loss import FixedFunctionLoss, LossFunctionWrapper
from elegy.shapes import matching_targets, per_sample_mean

EPSILON = 1e-7


def mean_squared_error(y_true: jnp.ndarray, y_pred: jnp.ndarray) -> jnp.ndarray:
    """`mean((y_pred - y_true)**2, axis=-1)`.

    Examples:
        One sample with errors 1 and 2: `(1**2 + 2**2) / 2 = 2.5`.

        >>> import jax.numpy as jnp
        >>> float(mean_squared_error(jnp.array([[1.0, 2.0]]), jnp.array([[0.0, 4.0]]))[0])
        2.5
    """
    y_true = matching_targets(y_true, y_pred, "mean_squared_error")
    return per_sample_mean(jnp.square(y_pred - y_true))


def mean_absolute_error(y_true: jnp.ndarray, y_pred: jnp.ndarray) -> jnp.ndarray:
    """`mean(|y_pred - y_true|, axis=-1)`.

    Examples:
        One value per sample, the mean over the last axis:

        >>> import jax.numpy as jnp
        >>> y_true, y_pred = jnp.array([[1.0, 2.0], [1.0, 1.0]]), jnp.array([[0.0, 4.0], [5.0, 1.0]])
        >>> [float(v) for v in mean_absolute_error(y_true, y_pred)]  # (1 + 2) / 2 and (4 + 0) / 2
        [1.5, 2.0]
    """
    y_true = matching_targets(y_true, y_pred, "mean_absolute_error")
    return per_sample_mean(jnp.abs(y_pred - y_true))


def mean_absolute_percentage_error(y_true: jnp.ndarray, y_pred: jnp.ndarray) -> jnp.ndarray:
    """`100 * mean(|y_true - y_pred| / max(|y_true|, 1e-7), axis=-1)`.

    Examples:
        Relative errors of 50% (2 vs 1) and 25% (4 vs 5) average to 37.5.

        >>> import jax.numpy as jnp
        >>> value = mean_absolute_percentage_error(jnp.array([[2.0, 4.0]]), jnp.array([[1.0, 5.0]]))
        >>> round(float(value[0]), 4)
        37.5
    """
    y_true = matching_targets(y_true, y_pred, "mean_absolute_percentage_error")
    return 100.0 * per_sample_mean(jnp.abs(y_true - y_pred) / jnp.maximum(jnp.abs(y_true), EPSILON))


def mean_squared_logarithmic_error(y_true: jnp.ndarray, y_pred: jnp.ndarray) -> jnp.ndarray:
    """`mean((log1p(y_pred) - log1p(y_true))**2, axis=-1)`, inputs clipped at 1e-7 below.

    Examples:
        Predicting 3 for a target of 1 gives `(log(4) - log(2))**2 = log(2)**2`.

        >>> import jax.numpy as jnp
        >>> import numpy as np
        >>> value = mean_squared_logarithmic_error(jnp.array([[1.0]]), jnp.array([[3.0]]))
        >>> bool(np.isclose(float(value[0]), np.log(2.0) ** 2))
        True
    """
    y_true = matching_targets(y_true, y_pred, "mean_squared_logarithmic_error")
    first = jnp.log1p(jnp.maximum(y_pred, EPSILON))
    second = jnp.log1p(jnp.maximum(y_true, EPSILON))
    return per_sample_mean(jnp.square(first - second))


def huber(y_true: jnp.ndarray, y_pred: jnp.ndarray, delta: float = 1.0) -> jnp.ndarray:
    """Quadratic for errors up to `delta`, linear beyond: `0.5 e**2` or `delta (|e| - delta / 2)`.

    Examples:
        With `delta=1`, an error of 0.5 costs `0.5 * 0.5**2 = 0.125` and an error of 3
        costs `3 - 0.5 = 2.5`; their mean is 1.3125.

        >>> import jax.numpy as jnp
        >>> float(huber(jnp.array([[0.0, 0.0]]), jnp.array([[0.5, 3.0]]))[0])
        1.3125
    """
    y_true = matching_targets(y_true, y_pred, "huber")
    error = jnp.abs(y_pred - y_true)
    quadratic = jnp.minimum(error, delta)
    return per_sample_mean(0.5 * jnp.square(quadratic) + delta * (error - quadratic))


def log_cosh(y_true: jnp.ndarray, y_pred: jnp.ndarray) -> jnp.ndarray:
    """`mean(log(cosh(y_pred - y_true)), axis=-1)`, computed without overflow.

    Examples:
        >>> import jax.numpy as jnp
        >>> import numpy as np
        >>> value = log_cosh(jnp.array([[0.0]]), jnp.array([[1.0]]))
        >>> bool(np.isclose(float(value[0]), np.log(np.cosh(1.0))))
        True

        A huge error stays finite: `log(cosh(e))` is close to `|e| - log(2)`.

        >>> round(float(log_cosh(jnp.array([[0.0]]), jnp.array([[1000.0]]))[0]), 2)
        999.31
    """
    y_true = matching_targets(y_true, y_pred, "log_cosh")
    error = y_pred - y_true
    return per_sample_mean(error + jax.nn.softplus(-2.0 * error) - jnp.log(2.0))


def cosine_similarity(y_true: jnp.ndarray, y_pred: jnp.ndarray, axis: int = -1) -> jnp.ndarray:
    """Negative cosine similarity along `axis` (so that minimising aligns the vectors).

    Examples:
        The vectors (1, 0) and (1, 1) are 45 degrees apart: `-cos(45°) = -1 / sqrt(2)`.

        >>> import jax.numpy as jnp
        >>> round(float(cosine_similarity(jnp.array([[1.0, 0.0]]), jnp.array([[1.0, 1.0]]))[0]), 4)
        -0.7071
    """
    y_true = matching_targets(y_true, y_pred, "cosine_similarity")
    unit: Callable[[jax.Array], jax.Array] = lambda v: (
        v / jnp.sqrt(jnp.maximum(jnp.sum(jnp.square(v), axis=axis, keepdims=True), 1e-12))
    )
    return -jnp.sum(unit(y_true) * unit(y_pred), axis=axis)


class MeanSquaredError(FixedFunctionLoss):
    """Mean squared error; see `mean_squared_error`.

    Examples:
        >>> import jax.numpy as jnp
        >>> float(MeanSquaredError()(jnp.array([[0.0], [1.0]]), jnp.array([[1.0], [1.0]])))
        0.5
    """

    function = staticmethod(mean_squared_error)


class MeanAbsoluteError(FixedFunctionLoss):
    """Mean absolute error; see `mean_absolute_error`.

    Examples:
        Errors of 1 and 2 average to 1.5; with `sample_weight`, the weighted sum is
        still divided by the number of rows (here `(1 * 1 + 0 * 2) / 2`).

        >>> import jax.numpy as jnp
        >>> loss = MeanAbsoluteError()
        >>> y_true, y_pred = jnp.array([[1.0], [2.0]]), jnp.array([[0.0], [4.0]])
        >>> float(loss(y_true, y_pred)), float(loss(y_true, y_pred, sample_weight=jnp.array([1.0, 0.0])))
        (1.5, 0.5)
    """

    function = staticmethod(mean_absolute_error)


class MeanAbsolutePercentageError(FixedFunctionLoss):
    """Mean absolute percentage error; see `mean_absolute_percentage_error`.

    Examples:
        Predicting 12 for 10 and 9 for 10 are 20% and 10% off: 15% on average.

        >>> import jax.numpy as jnp
        >>> loss = MeanAbsolutePercentageError()
        >>> round(float(loss(jnp.array([[10.0], [10.0]]), jnp.array([[12.0], [9.0]]))), 4)
        15.0
    """

    function = staticmethod(mean_absolute_percentage_error)


class MeanSquaredLogarithmicError(FixedFunctionLoss):
    """Mean squared logarithmic error; see `mean_squared_logarithmic_error`.

    Examples:
        The first row is exact; the second is off by `log(4) - log(2) = log(2)`, so the
        mean is `log(2)**2 / 2`.

        >>> import jax.numpy as jnp
        >>> import numpy as np
        >>> value = MeanSquaredLogarithmicError()(jnp.array([[1.0], [3.0]]), jnp.array([[1.0], [1.0]]))
        >>> bool(np.isclose(float(value), np.log(2.0) ** 2 / 2))
        True
    """

    function = staticmethod(mean_squared_logarithmic_error)


class Huber(LossFunctionWrapper):
    """Huber loss with threshold `delta`; see `huber`.

    Examples:
        With `delta=2`, an error of 1 costs `0.5 * 1**2 = 0.5` and an error of 3 costs
        `2 * (3 - 1) = 4`: 2.25 on average.

        >>> import jax.numpy as jnp
        >>> float(Huber(delta=2.0)(jnp.array([[0.0], [0.0]]), jnp.array([[1.0], [3.0]])))
        2.25
    """

    def __init__(
        self,
        delta: float = 1.0,
        reduction: str = "sum_over_batch_size",
        weight: float = 1.0,
        name: str | None = None,
        on: Any = None,
    ) -> None:
        super().__init__(huber, reduction, weight, name, on=on, delta=delta)


class LogCosh(FixedFunctionLoss):
    """Logarithm of the hyperbolic cosine of the error; see `log_cosh`.

    Examples:
        `cosh` is even, so errors of 1 and -1 both cost `log(cosh(1))`.

        >>> import jax.numpy as jnp
        >>> import numpy as np
        >>> value = LogCosh()(jnp.array([[0.0], [0.0]]), jnp.array([[1.0], [-1.0]]))
        >>> bool(np.isclose(float(value), np.log(np.cosh(1.0))))
        True
    """

    function = staticmethod(log_cosh)


class CosineSimilarity(LossFunctionWrapper):
    """Negative cosine similarity along `axis`; see `cosine_similarity`.

    Examples:
        Parallel vectors score -1 and orthogonal ones 0, so the mean is -0.5.

        >>> import jax.numpy as jnp
        >>> loss = CosineSimilarity()
        >>> round(float(loss(jnp.array([[1.0, 2.0], [1.0, 0.0]]), jnp.array([[2.0, 4.0], [0.0, 3.0]]))), 4)
        -0.5
    """

    def __init__(
        self,
        axis: int = -1,
        reduction: str = "sum_over_batch_size",
        weight: float = 1.0,
        name: str | None = None,
        on: Any = None,
    ) -> None:
        super().__init__(cosine_similarity, reduction, weight, name, on=on, axis=axis)

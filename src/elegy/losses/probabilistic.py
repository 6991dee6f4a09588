"""Losses between distributions or counts, and the hinge losses of max-margin classifiers."""

from __future__ import annotations

import jax.numpy as jnp

from elegy.losses.loss import FixedFunctionLoss
from elegy.shapes import matching_targets, per_sample_mean

EPSILON = 1e-7


def kl_divergence(y_true: jnp.ndarray, y_pred: jnp.ndarray) -> jnp.ndarray:
    """`sum(y_true * log(y_true / y_pred), axis=-1)`, both clipped to [1e-7, 1].

    Examples:
        From (0.25, 0.75) to (0.5, 0.5): `0.5 * log(0.5 / 0.25) + 0.5 * log(0.5 / 0.75)`.

        >>> import jax.numpy as jnp
        >>> import numpy as np
        >>> value = kl_divergence(jnp.array([[0.5, 0.5]]), jnp.array([[0.25, 0.75]]))
        >>> bool(np.isclose(float(value[0]), 0.5 * np.log(2.0) + 0.5 * np.log(2.0 / 3.0)))
        True
    """
    y_true = jnp.clip(matching_targets(y_true, y_pred, "kl_divergence"), EPSILON, 1.0)
    y_pred = jnp.clip(y_pred, EPSILON, 1.0)
    return jnp.sum(y_true * jnp.log(y_true / y_pred), axis=-1)


def poisson(y_true: jnp.ndarray, y_pred: jnp.ndarray) -> jnp.ndarray:
    """`mean(y_pred - y_true * log(y_pred + 1e-7), axis=-1)` for predicted rates.

    Examples:
        A rate of 2 for a count of 1 costs `2 - 1 * log(2)`.

        >>> import jax.numpy as jnp
        >>> import numpy as np
        >>> value = poisson(jnp.array([[1.0]]), jnp.array([[2.0]]))
        >>> bool(np.isclose(float(value[0]), 2.0 - np.log(2.0)))
        True
    """
    y_true = matching_targets(y_true, y_pred, "poisson")
    return per_sample_mean(y_pred - y_true * jnp.log(y_pred + EPSILON))


def _signed_targets(y_true: jnp.ndarray, y_pred: jnp.ndarray, who: str) -> jnp.ndarray:
    """Hinge losses take labels in {-1, 1}; labels in {0, 1} are mapped there, as in Keras."""
    y_true = matching_targets(y_true, y_pred, who)
    return jnp.where(y_true == 0, -1.0, y_true).astype(y_pred.dtype)


def hinge(y_true: jnp.ndarray, y_pred: jnp.ndarray) -> jnp.ndarray:
    """`mean(max(1 - y_true * y_pred, 0), axis=-1)` with labels in {-1, 1} (or {0, 1}).

    Examples:
        The label 0 counts as -1: the costs are `1 - 0.3` and `1 + 0.4`.

        >>> import jax.numpy as jnp
        >>> [round(float(v), 4) for v in hinge(jnp.array([[1.0], [0.0]]), jnp.array([[0.3], [0.4]]))]
        [0.7, 1.4]
    """
    y_true = _signed_targets(y_true, y_pred, "hinge")
    return per_sample_mean(jnp.maximum(1.0 - y_true * y_pred, 0.0))


def squared_hinge(y_true: jnp.ndarray, y_pred: jnp.ndarray) -> jnp.ndarray:
    """`mean(max(1 - y_true * y_pred, 0)**2, axis=-1)` with labels in {-1, 1} (or {0, 1}).

    Examples:
        The hinge costs 0.7 and 1.4, squared (the label 0 counts as -1).

        >>> import jax.numpy as jnp
        >>> [round(float(v), 4) for v in squared_hinge(jnp.array([[1.0], [0.0]]), jnp.array([[0.3], [0.4]]))]
        [0.49, 1.96]
    """
    y_true = _signed_targets(y_true, y_pred, "squared_hinge")
    return per_sample_mean(jnp.square(jnp.maximum(1.0 - y_true * y_pred, 0.0)))


class KLDivergence(FixedFunctionLoss):
    """Kullback-Leibler divergence from `y_pred` to `y_true`; see `kl_divergence`.

    Examples:
        The divergence of a distribution from itself is 0; from (0.5, 0.5) to (1, 0) it
        is `log(2)` (the clipped zero adds almost nothing).

        >>> import jax.numpy as jnp
        >>> loss = KLDivergence()
        >>> p = jnp.array([[0.5, 0.5]])
        >>> float(loss(p, p)), round(float(loss(jnp.array([[1.0, 0.0]]), p)), 4)
        (0.0, 0.6931)
    """

    function = staticmethod(kl_divergence)


class Poisson(FixedFunctionLoss):
    """Poisson negative log-likelihood (up to a constant); see `poisson`.

    Examples:
        With no events observed, the loss is the predicted rate itself: `(1 + 3) / 2`.

        >>> import jax.numpy as jnp
        >>> round(float(Poisson()(jnp.array([[0.0], [0.0]]), jnp.array([[1.0], [3.0]]))), 4)
        2.0
    """

    function = staticmethod(poisson)


class Hinge(FixedFunctionLoss):
    """Hinge loss; see `hinge`.

    Examples:
        A margin of 2 costs nothing; -0.5 on a negative sample costs `1 - 0.5`.

        >>> import jax.numpy as jnp
        >>> round(float(Hinge()(jnp.array([[1.0], [-1.0]]), jnp.array([[2.0], [-0.5]]))), 4)  # (0 + 0.5) / 2
        0.25
    """

    function = staticmethod(hinge)


class SquaredHinge(FixedFunctionLoss):
    """Squared hinge loss; see `squared_hinge`.

    Examples:
        The hinge costs 0 and 0.5, squared and averaged: `(0 + 0.25) / 2`.

        >>> import jax.numpy as jnp
        >>> round(float(SquaredHinge()(jnp.array([[1.0], [-1.0]]), jnp.array([[2.0], [-0.5]]))), 4)
        0.125
    """

    function = staticmethod(squared_hinge)

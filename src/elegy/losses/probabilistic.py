"""Losses between distributions or counts, and the hinge losses of max-margin classifiers."""

from __future__ import annotations

import jax.numpy as jnp

from elegy.losses.loss import LossFunctionWrapper
from elegy.shapes import matching_targets, per_sample_mean

EPSILON = 1e-7


def kl_divergence(y_true: jnp.ndarray, y_pred: jnp.ndarray) -> jnp.ndarray:
    """`sum(y_true * log(y_true / y_pred), axis=-1)`, both clipped to [1e-7, 1]."""
    y_true = jnp.clip(matching_targets(y_true, y_pred, "kl_divergence"), EPSILON, 1.0)
    y_pred = jnp.clip(y_pred, EPSILON, 1.0)
    return jnp.sum(y_true * jnp.log(y_true / y_pred), axis=-1)


def poisson(y_true: jnp.ndarray, y_pred: jnp.ndarray) -> jnp.ndarray:
    """`mean(y_pred - y_true * log(y_pred + 1e-7), axis=-1)` for predicted rates."""
    y_true = matching_targets(y_true, y_pred, "poisson")
    return per_sample_mean(y_pred - y_true * jnp.log(y_pred + EPSILON))


def _signed_targets(y_true: jnp.ndarray, y_pred: jnp.ndarray, who: str) -> jnp.ndarray:
    """Hinge losses take labels in {-1, 1}; labels in {0, 1} are mapped there, as in Keras."""
    y_true = matching_targets(y_true, y_pred, who)
    return jnp.where(y_true == 0, -1.0, y_true).astype(y_pred.dtype)


def hinge(y_true: jnp.ndarray, y_pred: jnp.ndarray) -> jnp.ndarray:
    """`mean(max(1 - y_true * y_pred, 0), axis=-1)` with labels in {-1, 1} (or {0, 1})."""
    y_true = _signed_targets(y_true, y_pred, "hinge")
    return per_sample_mean(jnp.maximum(1.0 - y_true * y_pred, 0.0))


def squared_hinge(y_true: jnp.ndarray, y_pred: jnp.ndarray) -> jnp.ndarray:
    """`mean(max(1 - y_true * y_pred, 0)**2, axis=-1)` with labels in {-1, 1} (or {0, 1})."""
    y_true = _signed_targets(y_true, y_pred, "squared_hinge")
    return per_sample_mean(jnp.square(jnp.maximum(1.0 - y_true * y_pred, 0.0)))


class KLDivergence(LossFunctionWrapper):
    """Kullback-Leibler divergence from `y_pred` to `y_true`; see `kl_divergence`."""

    def __init__(self, reduction="sum_over_batch_size", weight=1.0, name=None, on=None):
        super().__init__(kl_divergence, reduction, weight, name, on=on)


class Poisson(LossFunctionWrapper):
    """Poisson negative log-likelihood (up to a constant); see `poisson`."""

    def __init__(self, reduction="sum_over_batch_size", weight=1.0, name=None, on=None):
        super().__init__(poisson, reduction, weight, name, on=on)


class Hinge(LossFunctionWrapper):
    """Hinge loss; see `hinge`."""

    def __init__(self, reduction="sum_over_batch_size", weight=1.0, name=None, on=None):
        super().__init__(hinge, reduction, weight, name, on=on)


class SquaredHinge(LossFunctionWrapper):
    """Squared hinge loss; see `squared_hinge`."""

    def __init__(self, reduction="sum_over_batch_size", weight=1.0, name=None, on=None):
        super().__init__(squared_hinge, reduction, weight, name, on=on)

"""The `Loss` base class: a per-sample function plus reduction, weight and name.

A loss is at heart a pure function `(y_true, y_pred) -> per-sample values`; the class only
holds configuration and applies the reduction, `sample_weight`, the padding `mask` and the
loss's `weight` in the total.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax.numpy as jnp

from elegy.naming import snake_case
from elegy.weighting import element_weights, real_elements

REDUCTIONS = ("sum_over_batch_size", "sum", "none")


class Loss:
    """Base class: subclasses implement `call(y_true, y_pred)` returning per-sample values.

    Args:
        reduction: `"sum_over_batch_size"` (weighted sum divided by the number of real
            elements, Keras's default), `"sum"`, or `"none"` (per-element, weighted).
        weight: factor applied to this loss in the model's total (and in its log).
        name: log name; defaults to the class name in snake_case.
    """

    def __init__(
        self,
        reduction: str = "sum_over_batch_size",
        weight: float = 1.0,
        name: str | None = None,
    ):
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction
        self.weight = weight
        self.name = name or snake_case(type(self).__name__)

    def call(self, y_true: Any, y_pred: Any) -> jnp.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must implement call(y_true, y_pred)")

    def __call__(
        self,
        y_true: Any,
        y_pred: Any,
        sample_weight: jnp.ndarray | None = None,
        mask: jnp.ndarray | None = None,
    ) -> jnp.ndarray:
        if y_true is None:
            raise ValueError(
                f"loss {self.name!r} needs targets but y is None: pass y to fit/evaluate "
                "(or yield (x, y) batches)"
            )
        values = jnp.asarray(self.call(y_true, y_pred))
        return self.weight * reduce(values, sample_weight, mask, self.reduction)


def reduce(
    values: jnp.ndarray,
    sample_weight: jnp.ndarray | None,
    mask: jnp.ndarray | None,
    reduction: str,
) -> jnp.ndarray:
    """Apply `sample_weight`, `mask` and the reduction to per-sample loss values."""
    weighted = values * element_weights(values, sample_weight, mask)
    if reduction == "none":
        return weighted
    total = weighted.sum()
    if reduction == "sum":
        return total
    return total / jnp.maximum(real_elements(values, mask), 1)


class LossFunctionWrapper(Loss):
    """A plain function `(y_true, y_pred) -> per-sample values or scalar` as a Loss.

    A function that already returns a scalar is used as it is: it sees padded rows and
    ignores `sample_weight`, so prefer per-sample values.
    """

    def __init__(
        self,
        fn: Callable,
        reduction: str = "sum_over_batch_size",
        weight: float = 1.0,
        name: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(reduction, weight, name or getattr(fn, "__name__", None))
        self.fn = fn
        self.kwargs = kwargs

    def call(self, y_true, y_pred):
        return self.fn(y_true, y_pred, **self.kwargs)

    def __call__(self, y_true, y_pred, sample_weight=None, mask=None):
        values = jnp.asarray(self.fn(y_true, y_pred, **self.kwargs))
        if values.ndim == 0:
            return self.weight * values
        return self.weight * reduce(values, sample_weight, mask, self.reduction)

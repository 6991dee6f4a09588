"""The `Loss` base class: a per-sample function plus reduction, weight and name.

A loss is at heart a pure function `(y_true, y_pred) -> per-sample values`; the class only
holds configuration and applies the reduction, `sample_weight`, the padding `mask` and the
loss's `weight` in the total. A loss may also declare other inputs by name (`x`,
`states`), so a penalty on the inputs or on the parameters is a loss like any other.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp

from elegy.inject import call_with_context
from elegy.naming import callable_name, snake_case
from elegy.weighting import combine_masks, element_weights, real_elements

REDUCTIONS = ("sum_over_batch_size", "sum", "none")


class Loss:
    """Base class: subclasses implement `call(y_true, y_pred)` returning per-sample values.

    `call` may instead declare any of `y_true`, `y_pred`, `x` and `states`. A `call` that
    returns a scalar is used as it is (no reduction, no `sample_weight`).

    Args:
        reduction: `"sum_over_batch_size"` (weighted sum divided by the number of real
            elements, Keras's default), `"sum"`, or `"none"` (per-element, weighted).
        weight: factor applied to this loss in the model's total (and in its log).
        name: log name; defaults to the class name in snake_case.
        on: for a model whose output (and target) is a dict, tuple or list, the key or
            index of the part this loss applies to (a tuple of them for nested parts).
    """

    def __init__(
        self,
        reduction: str = "sum_over_batch_size",
        weight: float = 1.0,
        name: str | None = None,
        on: Any = None,
    ):
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction
        self.weight = weight
        self.name = name or snake_case(type(self).__name__)
        self.on = on

    def call(self, y_true: Any, y_pred: Any) -> jnp.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must implement call(y_true, y_pred)")

    def element_mask(self, y_true: Any, y_pred: Any) -> jnp.ndarray | None:
        """Elements to leave out of the loss and of its denominator (None: keep all)."""
        return None

    def __call__(
        self,
        y_true: Any = None,
        y_pred: Any = None,
        sample_weight: jnp.ndarray | None = None,
        mask: jnp.ndarray | None = None,
        **context: Any,
    ) -> jnp.ndarray:
        values = jnp.asarray(call_with_context(self.call, y_true, y_pred, context, f"loss {self.name!r}"))
        if values.ndim == 0:
            return self.weight * values
        mask = combine_masks(mask, self.element_mask(y_true, y_pred))
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
    """A plain function `(y_true, y_pred, **kwargs) -> per-sample values` as a Loss.

    Extra keyword arguments configure the function (`from_logits=True`). A function that
    returns a scalar is used as it is: it sees padded rows and ignores `sample_weight`,
    so prefer per-sample values.
    """

    def __init__(
        self,
        fn: Callable,
        reduction: str = "sum_over_batch_size",
        weight: float = 1.0,
        name: str | None = None,
        on: Any = None,
        **kwargs: Any,
    ):
        if name is None and type(self) is LossFunctionWrapper:
            name = callable_name(fn)
        super().__init__(reduction, weight, name, on)
        self.fn = fn
        self.kwargs = kwargs
        self.call = functools.partial(fn, **kwargs) if kwargs else fn

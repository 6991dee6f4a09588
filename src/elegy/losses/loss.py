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
from elegy.weighting import combine_masks, element_weights, sums

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

    Examples:
        A cubed absolute error; the default reduction averages its per-sample values,
        here `(1**3 + 2**3) / 2 = 4.5`, and `weight` scales the result.

        >>> import jax.numpy as jnp
        >>> class CubedError(Loss):
        ...     def call(self, y_true, y_pred):
        ...         return jnp.abs(y_pred - y_true) ** 3
        >>> y_true, y_pred = jnp.array([0.0, 0.0]), jnp.array([1.0, 2.0])
        >>> loss, doubled = CubedError(), CubedError(weight=2.0)
        >>> loss.name, float(loss(y_true, y_pred)), float(doubled(y_true, y_pred))
        ('cubed_error', 4.5, 9.0)
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
        if mask is not None:  # (in a step: a loss called on its own may broadcast its weights)
            check_per_row(values, int(jnp.shape(mask)[0]), f"loss {self.name!r}")
        mask = combine_masks(mask, self.element_mask(y_true, y_pred))
        return self.weight * reduce(values, sample_weight, mask, self.reduction)


def check_per_row(values: jnp.ndarray, rows: int, what: str) -> None:
    """Per-sample values start with the batch axis: otherwise weighting them by row (the
    mask, `sample_weight`) would fail in a broadcast that names neither the loss nor why.

    Examples:
        >>> import jax.numpy as jnp
        >>> check_per_row(jnp.zeros((8, 3)), 8, "loss 'mine'")  # one row of values per sample
        >>> check_per_row(jnp.zeros(3), 8, "loss 'mine'")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: loss 'mine' returned values of shape (3,), but the batch has 8 rows: ...
    """
    if values.ndim == 0 or values.shape[0] != rows:
        raise ValueError(
            f"{what} returned values of shape {tuple(values.shape)}, but the batch has {rows} rows: "
            f"return one value per row, shape ({rows},) (or ({rows}, ...)), or a scalar"
        )


def reduce(
    values: jnp.ndarray,
    sample_weight: jnp.ndarray | None,
    mask: jnp.ndarray | None,
    reduction: str,
) -> jnp.ndarray:
    """Apply `sample_weight`, `mask` and the reduction to per-sample loss values.

    Examples:
        `"sum"` adds the weighted values (`1 * 1 + 0 * 2 + 2 * 3 = 7`); the default
        reduction divides by the number of real (unmasked) elements instead.

        >>> import jax.numpy as jnp
        >>> values = jnp.array([1.0, 2.0, 3.0])
        >>> float(reduce(values, jnp.array([1.0, 0.0, 2.0]), None, "sum"))
        7.0
        >>> float(reduce(values, None, jnp.array([1.0, 1.0, 0.0]), "sum_over_batch_size"))  # (1 + 2) / 2
        1.5
    """
    weighted = values * element_weights(values, sample_weight, mask)
    if reduction == "none":
        return weighted
    if reduction == "sum":
        return weighted.sum()
    if mask is None:
        return weighted.sum() / jnp.maximum(values.size, 1)
    total, real = sums(weighted, element_weights(values, None, mask))
    return total / jnp.maximum(real, 1)


class LossFunctionWrapper(Loss):
    """A plain function `(y_true, y_pred, **kwargs) -> per-sample values` as a Loss.

    Extra keyword arguments configure the function (`from_logits=True`). A function that
    returns a scalar is used as it is: it sees padded rows and ignores `sample_weight`,
    so prefer per-sample values.

    Examples:
        The loss is named after the function; here the rows' largest errors, 3 and 1,
        are averaged.

        >>> import jax.numpy as jnp
        >>> def max_error(y_true, y_pred):
        ...     return jnp.max(jnp.abs(y_pred - y_true), axis=-1)
        >>> loss = LossFunctionWrapper(max_error)
        >>> loss.name, float(loss(jnp.zeros((2, 2)), jnp.array([[1.0, -3.0], [1.0, 0.5]])))
        ('max_error', 2.0)
    """

    call: Callable[..., Any]  # the configured function, set per instance in __init__

    def __init__(
        self,
        fn: Callable[..., Any],
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


class FixedFunctionLoss(LossFunctionWrapper):
    """A `LossFunctionWrapper` whose function is the class's own `function`: the built-in
    losses that take only the common arguments (`reduction`, `weight`, `name`, `on`).

    Examples:
        >>> import jax.numpy as jnp
        >>> class AbsoluteError(FixedFunctionLoss):
        ...     function = staticmethod(lambda y_true, y_pred: jnp.abs(y_pred - y_true))
        >>> loss = AbsoluteError(weight=2.0)
        >>> loss.name, float(loss(jnp.zeros(2), jnp.array([1.0, 3.0])))
        ('absolute_error', 4.0)
    """

    function: Callable[..., Any]

    def __init__(
        self,
        reduction: str = "sum_over_batch_size",
        weight: float = 1.0,
        name: str | None = None,
        on: Any = None,
    ) -> None:
        super().__init__(type(self).function, reduction, weight, name, on=on)

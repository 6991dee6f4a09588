"""Weighted means and sums: the accumulators behind most metrics and every loss log.

`Mean` and `Sum` reduce values (`update(state, values, sample_weight, mask)`), not
targets and predictions, so they are not `Metric`s: a model's `metrics=[...]` takes a
`Metric`, a name or a function `(y_true, y_pred)` (which `MeanMetricWrapper` averages).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax.numpy as jnp

from elegy.data.structure import batch_rows
from elegy.inject import call_with_context
from elegy.metrics.metric import Metric
from elegy.naming import callable_name, snake_case
from elegy.weighting import combine_masks, element_weights, sums

MeanState = dict[str, jnp.ndarray]


def _zero() -> jnp.ndarray:
    return jnp.zeros((), jnp.float32)


class Accumulator:
    """Base of the running reductions over values: `init() -> state`,
    `update(state, values, sample_weight=None, mask=None) -> state`, `compute(state)`.
    Like a metric it holds only its configuration (a `name`); the state is a pytree."""

    def __init__(self, name: str | None = None):
        self.name = name or snake_case(type(self).__name__)

    def init(self) -> Any:
        raise NotImplementedError

    def update(
        self,
        state: Any,
        values: jnp.ndarray,
        sample_weight: jnp.ndarray | None = None,
        mask: jnp.ndarray | None = None,
    ) -> Any:
        raise NotImplementedError

    def compute(self, state: Any) -> jnp.ndarray:
        raise NotImplementedError


class Mean(Accumulator):
    """Running weighted mean `sum(w * v * mask) / sum(w * mask)` over everything seen.

    Because numerator and denominator accumulate separately, the value after the last batch
    of an epoch is the exact mean over all samples, whatever the batch sizes were.

    Examples:
        >>> import jax.numpy as jnp
        >>> m = Mean()
        >>> s = m.update(m.init(), jnp.array([1.0, 2.0]))
        >>> s = m.update(s, jnp.array([6.0]))
        >>> float(m.compute(s))
        3.0
    """

    def init(self) -> MeanState:
        return {"total": _zero(), "count": _zero()}

    def update(
        self,
        state: MeanState,
        values: jnp.ndarray,
        sample_weight: jnp.ndarray | None = None,
        mask: jnp.ndarray | None = None,
    ) -> MeanState:
        values = jnp.asarray(values, jnp.float32)
        weights = element_weights(values, sample_weight, mask)
        total, count = sums(weights * values, weights)
        return {"total": state["total"] + total, "count": state["count"] + count}

    def compute(self, state: MeanState) -> jnp.ndarray:
        return state["total"] / jnp.maximum(state["count"], 1e-12)


class Sum(Accumulator):
    """Running weighted sum `sum(w * v * mask)` over everything seen.

    Examples:
        Weights multiply the values: `1 * 1 + 3 * 2 = 7`, and a later batch adds 0.5.

        >>> import jax.numpy as jnp
        >>> m = Sum()
        >>> state = m.update(m.init(), jnp.array([1.0, 2.0]), sample_weight=jnp.array([1.0, 3.0]))
        >>> float(m.compute(m.update(state, jnp.array([0.5]))))
        7.5
    """

    def init(self) -> jnp.ndarray:
        return _zero()

    def update(
        self,
        state: jnp.ndarray,
        values: jnp.ndarray,
        sample_weight: jnp.ndarray | None = None,
        mask: jnp.ndarray | None = None,
    ) -> jnp.ndarray:
        values = jnp.asarray(values, jnp.float32)
        return state + jnp.sum(element_weights(values, sample_weight, mask) * values)

    def compute(self, state: jnp.ndarray) -> jnp.ndarray:
        return state


class MeanMetricWrapper(Metric):
    """A function `(y_true, y_pred) -> per-sample values` as a metric averaged over samples.

    A function that returns a scalar for the batch is counted as that value for every row
    of the batch, so its epoch value is the row-weighted mean of batch values.

    Examples:
        The fraction of predictions within 1 of the target: 2 of these 4.

        >>> import jax.numpy as jnp
        >>> def within_one(y_true, y_pred):
        ...     return (jnp.abs(y_pred - y_true) <= 1.0).astype(jnp.float32)
        >>> m = MeanMetricWrapper(within_one)
        >>> state = m.update(m.init(), jnp.zeros(4), jnp.array([0.5, 2.0, -1.0, 3.0]))
        >>> m.name, float(m.compute(state))
        ('within_one', 0.5)
    """

    def __init__(self, fn: Callable[..., Any], name: str | None = None, on: Any = None, **kwargs: Any):
        if name is None and type(self) is MeanMetricWrapper:
            name = callable_name(fn)
        super().__init__(name, on=on)
        self.fn = fn
        self.kwargs = kwargs
        self._mean = Mean()

    def init(self) -> MeanState:
        return self._mean.init()

    def update(
        self,
        state: MeanState,
        y_true: Any,
        y_pred: Any,
        sample_weight: jnp.ndarray | None = None,
        mask: jnp.ndarray | None = None,
    ) -> MeanState:
        fn = (lambda y_true, y_pred: self.fn(y_true, y_pred, **self.kwargs)) if self.kwargs else self.fn
        values = jnp.asarray(call_with_context(fn, y_true, y_pred, {}, f"metric {self.name!r}"), jnp.float32)
        if values.ndim == 0:  # one number for the batch: it has no per-row weights
            values, sample_weight = jnp.broadcast_to(values, (batch_rows(y_pred),)), None
        return self._mean.update(state, values, sample_weight, mask)

    def compute(self, state: MeanState) -> jnp.ndarray:
        return self._mean.compute(state)


class LossMean(MeanMetricWrapper):
    """A loss averaged over samples as a metric, leaving out the elements the loss ignores
    (`ignore_class`), exactly as the loss itself does.

    Examples:
        Batches of 2 and 1 samples with absolute errors 1, 3 and 5: the value is the mean
        over samples, `(1 + 3 + 5) / 3 = 3`, not the mean of the batch means (3.5).

        >>> import jax.numpy as jnp
        >>> from elegy.losses import MeanAbsoluteError
        >>> m = LossMean(MeanAbsoluteError())
        >>> state = m.update(m.init(), jnp.array([[0.0], [0.0]]), jnp.array([[1.0], [3.0]]))
        >>> state = m.update(state, jnp.array([[0.0]]), jnp.array([[5.0]]))
        >>> m.name, float(m.compute(state))
        ('mean_absolute_error', 3.0)
    """

    def __init__(self, loss: Any, name: str | None = None):
        super().__init__(loss.call, name=name or loss.name, on=loss.on)
        self.loss = loss

    def update(
        self,
        state: MeanState,
        y_true: Any,
        y_pred: Any,
        sample_weight: jnp.ndarray | None = None,
        mask: jnp.ndarray | None = None,
    ) -> MeanState:
        mask = combine_masks(mask, self.loss.element_mask(y_true, y_pred))
        return super().update(state, y_true, y_pred, sample_weight, mask)

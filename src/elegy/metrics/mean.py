"""Weighted means: the accumulator behind most metrics and every loss log."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax.numpy as jnp

from elegy.metrics.metric import Metric
from elegy.weighting import batch_rows, element_weights

MeanState = dict[str, jnp.ndarray]


class Mean:
    """Running weighted mean `sum(w * v * mask) / sum(w * mask)` over everything seen.

    Because numerator and denominator accumulate separately, the value after the last batch
    of an epoch is the exact mean over all samples, whatever the batch sizes were.

    Example:
        >>> import jax.numpy as jnp
        >>> m = Mean()
        >>> s = m.update(m.init(), jnp.array([1.0, 2.0]))
        >>> s = m.update(s, jnp.array([6.0]))
        >>> float(m.compute(s))
        3.0
    """

    def init(self) -> MeanState:
        return {"total": jnp.zeros((), jnp.float32), "count": jnp.zeros((), jnp.float32)}

    def update(
        self,
        state: MeanState,
        values: jnp.ndarray,
        sample_weight: jnp.ndarray | None = None,
        mask: jnp.ndarray | None = None,
    ) -> MeanState:
        values = jnp.asarray(values, jnp.float32)
        weights = element_weights(values, sample_weight, mask)
        return {
            "total": state["total"] + jnp.sum(weights * values),
            "count": state["count"] + jnp.sum(weights),
        }

    def compute(self, state: MeanState) -> jnp.ndarray:
        return state["total"] / jnp.maximum(state["count"], 1e-12)


class MeanMetricWrapper(Metric):
    """A function `(y_true, y_pred) -> per-sample values` as a metric averaged over samples.

    A function that returns a scalar for the batch is counted as that value for every real
    row of the batch, so its epoch value is the sample-weighted mean of batch values.
    """

    def __init__(self, fn: Callable, name: str | None = None, **kwargs: Any):
        super().__init__(name or getattr(fn, "__name__", None))
        self.fn = fn
        self.kwargs = kwargs
        self._mean = Mean()

    def init(self) -> MeanState:
        return self._mean.init()

    def update(self, state, y_true, y_pred, sample_weight=None, mask=None):
        if y_true is None:
            raise ValueError(f"metric {self.name!r} needs targets but y is None: pass y to fit/evaluate")
        values = jnp.asarray(self.fn(y_true, y_pred, **self.kwargs), jnp.float32)
        if values.ndim == 0:
            values = jnp.broadcast_to(values, (batch_rows(y_pred),))
            sample_weight = None
        return self._mean.update(state, values, sample_weight, mask)

    def compute(self, state: MeanState) -> jnp.ndarray:
        return self._mean.compute(state)

"""Regression metrics."""

from __future__ import annotations

from elegy.losses.regression import mean_squared_error
from elegy.metrics.mean import MeanMetricWrapper


class MeanSquaredError(MeanMetricWrapper):
    """Mean squared error averaged over samples (weighted), as a metric."""

    def __init__(self, name: str | None = None):
        super().__init__(mean_squared_error, name or "mean_squared_error")

"""Regression metrics: the regression losses, averaged with weights over the epoch."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from elegy.losses import regression as fns
from elegy.metrics.mean import MeanMetricWrapper


class MeanSquaredError(MeanMetricWrapper):
    """Mean squared error over all samples seen."""

    def __init__(self, name: str | None = None, on: Any = None):
        super().__init__(fns.mean_squared_error, name, on=on)


class MeanAbsoluteError(MeanMetricWrapper):
    """Mean absolute error over all samples seen."""

    def __init__(self, name: str | None = None, on: Any = None):
        super().__init__(fns.mean_absolute_error, name, on=on)


class MeanAbsolutePercentageError(MeanMetricWrapper):
    """Mean absolute percentage error over all samples seen."""

    def __init__(self, name: str | None = None, on: Any = None):
        super().__init__(fns.mean_absolute_percentage_error, name, on=on)


class MeanSquaredLogarithmicError(MeanMetricWrapper):
    """Mean squared logarithmic error over all samples seen."""

    def __init__(self, name: str | None = None, on: Any = None):
        super().__init__(fns.mean_squared_logarithmic_error, name, on=on)


class RootMeanSquaredError(MeanMetricWrapper):
    """Square root of the mean squared error over all samples seen (not a mean of roots)."""

    def __init__(self, name: str | None = None, on: Any = None):
        super().__init__(fns.mean_squared_error, name, on=on)

    def compute(self, state):
        return jnp.sqrt(super().compute(state))

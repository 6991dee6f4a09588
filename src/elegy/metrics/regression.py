"""Regression metrics: the regression losses, averaged with weights over the epoch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax.numpy as jnp

from elegy.losses import regression as fns
from elegy.metrics.mean import MeanMetricWrapper

if TYPE_CHECKING:
    from elegy.metrics.mean import MeanState


class MeanSquaredError(MeanMetricWrapper):
    """Mean squared error over all samples seen.

    Examples:
        Squared errors 1 and 4 in one batch and 0 in the next: `(1 + 4 + 0) / 3`.

        >>> import jax.numpy as jnp
        >>> m = MeanSquaredError()
        >>> state = m.update(m.init(), jnp.array([[1.0], [2.0]]), jnp.array([[0.0], [4.0]]))
        >>> state = m.update(state, jnp.array([[3.0]]), jnp.array([[3.0]]))
        >>> round(float(m.compute(state)), 4)
        1.6667
    """

    def __init__(self, name: str | None = None, on: Any = None):
        super().__init__(fns.mean_squared_error, name, on=on)


class MeanAbsoluteError(MeanMetricWrapper):
    """Mean absolute error over all samples seen.

    Examples:
        Absolute errors 1 and 2 in one batch and 6 in the next: `(1 + 2 + 6) / 3`.

        >>> import jax.numpy as jnp
        >>> m = MeanAbsoluteError()
        >>> state = m.update(m.init(), jnp.array([[1.0], [2.0]]), jnp.array([[0.0], [4.0]]))
        >>> state = m.update(state, jnp.array([[0.0]]), jnp.array([[-6.0]]))
        >>> float(m.compute(state))
        3.0
    """

    def __init__(self, name: str | None = None, on: Any = None):
        super().__init__(fns.mean_absolute_error, name, on=on)


class MeanAbsolutePercentageError(MeanMetricWrapper):
    """Mean absolute percentage error over all samples seen.

    Examples:
        Off by 10% and 30%: 20% on average.

        >>> import jax.numpy as jnp
        >>> m = MeanAbsolutePercentageError()
        >>> state = m.update(m.init(), jnp.array([[10.0], [10.0]]), jnp.array([[11.0], [7.0]]))
        >>> round(float(m.compute(state)), 4)
        20.0
    """

    def __init__(self, name: str | None = None, on: Any = None):
        super().__init__(fns.mean_absolute_percentage_error, name, on=on)


class MeanSquaredLogarithmicError(MeanMetricWrapper):
    """Mean squared logarithmic error over all samples seen.

    Examples:
        Predicting 3 for a target of 1 is off by `log(4) - log(2) = log(2)` in log space.

        >>> import jax.numpy as jnp
        >>> import numpy as np
        >>> m = MeanSquaredLogarithmicError()
        >>> state = m.update(m.init(), jnp.array([[1.0]]), jnp.array([[3.0]]))
        >>> bool(np.isclose(float(m.compute(state)), np.log(2.0) ** 2))
        True
    """

    def __init__(self, name: str | None = None, on: Any = None):
        super().__init__(fns.mean_squared_logarithmic_error, name, on=on)


class RootMeanSquaredError(MeanMetricWrapper):
    """Square root of the mean squared error over all samples seen (not a mean of roots).

    Examples:
        Errors 0, 0, 0 and 4: the mean squared error is `16 / 4 = 4`, so the value is 2
        (the mean absolute error would be 1).

        >>> import jax.numpy as jnp
        >>> m = RootMeanSquaredError()
        >>> state = m.update(m.init(), jnp.zeros((4, 1)), jnp.array([[0.0], [0.0], [0.0], [4.0]]))
        >>> round(float(m.compute(state)), 4)
        2.0
    """

    def __init__(self, name: str | None = None, on: Any = None):
        super().__init__(fns.mean_squared_error, name, on=on)

    def compute(self, state: MeanState) -> jnp.ndarray:
        return jnp.sqrt(super().compute(state))

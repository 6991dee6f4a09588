"""The `Metric` interface: a pair of pure functions over a small state pytree.

Like optax's `GradientTransformation(init, update)`, a metric holds only configuration;
its running state lives in `States.metrics_states`, so it is updated inside the compiled
step, accumulates on the device for a whole epoch, and is reset by replacing the state.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from elegy.naming import snake_case


class Metric:
    """Base class: `init() -> state`, `update(state, ...) -> state`, `compute(state)`.

    Examples:
        The largest absolute error seen so far (this sketch ignores `sample_weight` and
        `mask`, which the built-in metrics honour).

        >>> import jax.numpy as jnp
        >>> class MaxError(Metric):
        ...     def init(self):
        ...         return jnp.zeros(())
        ...     def update(self, state, y_true, y_pred, sample_weight=None, mask=None):
        ...         return jnp.maximum(state, jnp.max(jnp.abs(y_pred - y_true)))
        ...     def compute(self, state):
        ...         return state
        >>> m = MaxError()
        >>> state = m.update(m.init(), jnp.array([1.0, 2.0]), jnp.array([1.5, 2.0]))
        >>> state = m.update(state, jnp.array([0.0]), jnp.array([-2.0]))
        >>> m.name, float(m.compute(state))
        ('max_error', 2.0)
    """

    def __init__(self, name: str | None = None, on: Any = None):
        """`name` is the log name (default: the class name in snake case); `on` picks the
        part of a dict/tuple output (and target) the metric applies to, as for losses."""
        self.name = name or snake_case(type(self).__name__)
        self.on = on

    def init(self) -> Any:
        raise NotImplementedError

    def update(
        self,
        state: Any,
        y_true: Any,
        y_pred: Any,
        sample_weight: jnp.ndarray | None = None,
        mask: jnp.ndarray | None = None,
    ) -> Any:
        raise NotImplementedError

    def compute(self, state: Any) -> jnp.ndarray:
        raise NotImplementedError

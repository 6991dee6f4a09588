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
    """Base class: `init() -> state`, `update(state, ...) -> state`, `compute(state)`."""

    def __init__(self, name: str | None = None):
        self.name = name or snake_case(type(self).__name__)

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

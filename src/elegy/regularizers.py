"""Weight penalties on `net_params`, added to the total loss and logged like any loss.

A regularizer is a `Loss` whose `call` declares `states`, so it goes in the same list as
the data losses and needs no machinery of its own:

    loss=[elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
          elegy.regularizers.L2(1e-4)]

logs `l2_regularization_loss` next to the data term.

Examples:
    Called by hand on a `States`, a regularizer reads only `net_params`: here
    `0.1 * (1**2 + 2**2 + 3**2) = 1.4`, summed over both arrays.

    >>> import jax.numpy as jnp
    >>> import elegy
    >>> states = elegy.States(net_params={"w": jnp.array([1.0, -2.0]), "b": jnp.array([3.0])})
    >>> penalty = elegy.regularizers.L2(0.1)
    >>> penalty.name, round(float(penalty(states=states)), 4)
    ('l2_regularization', 1.4)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from elegy.losses.loss import Loss
from elegy.states import States


def _sum_over_leaves(fn: Callable[[jax.Array], jax.Array], params: Any) -> jnp.ndarray:
    leaves = [leaf for leaf in jax.tree_util.tree_leaves(params) if jnp.issubdtype(leaf.dtype, jnp.floating)]
    return sum((jnp.sum(fn(leaf)) for leaf in leaves), jnp.zeros((), jnp.float32))


class L1L2(Loss):
    """`l1 * sum(|w|) + l2 * sum(w**2)` over every floating-point array in `net_params`.

    As in Keras, `l2` multiplies the plain sum of squares (no 1/2).

    Examples:
        `0.1 * (1 + 2) + 0.01 * (1 + 4) = 0.35`; the integer array is left out.

        >>> import jax.numpy as jnp
        >>> from elegy.states import States
        >>> states = States(net_params={"w": jnp.array([1.0, -2.0]), "count": jnp.array([7])})
        >>> round(float(L1L2(l1=0.1, l2=0.01)(states=states)), 4)
        0.35
    """

    def __init__(self, l1: float = 0.0, l2: float = 0.0, name: str | None = None):
        for argument, value in (("l1", l1), ("l2", l2)):
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{argument} must be a non-negative number, got {value!r}")
        super().__init__(name=name or "l1_l2_regularization")
        self.l1, self.l2 = float(l1), float(l2)

    def call(self, states: States) -> jnp.ndarray:  # type: ignore[override]  # (declares what it uses)
        penalty = jnp.zeros((), jnp.float32)
        if self.l1:
            penalty += self.l1 * _sum_over_leaves(jnp.abs, states.net_params)
        if self.l2:
            penalty += self.l2 * _sum_over_leaves(jnp.square, states.net_params)
        return penalty


class L1(L1L2):
    """`l1 * sum(|w|)` over `net_params`.

    Examples:
        >>> import jax.numpy as jnp
        >>> from elegy.states import States
        >>> states = States(net_params={"w": jnp.array([1.0, -2.0])})
        >>> round(float(L1(0.1)(states=states)), 4)  # 0.1 * (1 + 2)
        0.3
    """

    def __init__(self, l1: float = 0.01, name: str | None = None):
        super().__init__(l1=l1, name=name or "l1_regularization")


class L2(L1L2):
    """`l2 * sum(w**2)` over `net_params`.

    Examples:
        >>> import jax.numpy as jnp
        >>> from elegy.states import States
        >>> states = States(net_params={"w": jnp.array([1.0, -2.0])})
        >>> round(float(L2(0.1)(states=states)), 4)  # 0.1 * (1 + 4)
        0.5
    """

    def __init__(self, l2: float = 0.01, name: str | None = None):
        super().__init__(l2=l2, name=name or "l2_regularization")


__all__ = ["L1", "L1L2", "L2"]

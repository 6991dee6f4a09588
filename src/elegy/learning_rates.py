"""The learning rate inside an optax `inject_hyperparams` optimizer state.

Such a state holds its hyperparameters as arrays, so the learning rate can be read
inside a compiled step (the default `train_step` logs it, and a schedule's value really
moves) and written between steps (`LearningRateScheduler`, `ReduceLROnPlateau`) without
compiling the step again.
"""

from __future__ import annotations

from typing import Any

import jax

NOT_INJECTED = (
    "needs an optimizer built with optax.inject_hyperparams and a constant learning rate, "
    "e.g. optax.inject_hyperparams(optax.adam)(learning_rate=1e-3); the model's optimizer "
    "state holds no learning_rate hyperparameter"
)


def _has_learning_rate(node: Any) -> bool:
    return hasattr(node, "hyperparams") and "learning_rate" in node.hyperparams


def injected_learning_rate(optimizer_states: Any) -> Any:
    """The first injected learning rate in `optimizer_states` (an array, or a tracer in a
    step), or None when the optimizer has none.

    Examples:
        >>> import jax.numpy as jnp, optax
        >>> state = optax.inject_hyperparams(optax.sgd)(learning_rate=0.5).init(jnp.zeros(2))
        >>> float(injected_learning_rate(state)), injected_learning_rate(optax.sgd(0.5).init(jnp.zeros(2)))
        (0.5, None)
    """
    for node in jax.tree_util.tree_leaves(optimizer_states, is_leaf=_has_learning_rate):
        if _has_learning_rate(node):
            return node.hyperparams["learning_rate"]
    return None


def get_learning_rate(optimizer_states: Any) -> float:
    """The injected learning rate as a float; a ValueError when there is none."""
    value = injected_learning_rate(optimizer_states)
    if value is None:
        raise ValueError(NOT_INJECTED)
    return float(value)


def set_learning_rate(optimizer_states: Any, value: float) -> Any:
    """A copy of the optimizer state with every injected learning rate set to `value`."""

    def replace(node: Any) -> Any:
        if not _has_learning_rate(node):
            return node
        old = node.hyperparams["learning_rate"]
        new = old * 0 + value  # same dtype and weak type: the compiled step is reused
        return node._replace(hyperparams={**node.hyperparams, "learning_rate": new})

    get_learning_rate(optimizer_states)  # raises the clear error when there is none
    return jax.tree_util.tree_map(replace, optimizer_states, is_leaf=_has_learning_rate)

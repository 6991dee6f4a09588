"""The results of the four steps, and the check that a step returned the right shape.

Steps may return these named tuples or plain tuples of the same length; anything else is
an error naming the method and what it should return.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from elegy.states import States


class PredStep(NamedTuple):
    """What `pred_step` returns: the predictions and the updated States.

    Examples:
        >>> import elegy, numpy as np
        >>> class Doubler(elegy.Model):
        ...     def pred_step(self, x, states):
        ...         return elegy.PredStep(y_pred=2 * x, states=states)
        >>> model = Doubler()
        >>> result = model.call_step("pred_step", x=np.arange(3.0), states=model.states)
        >>> type(result).__name__, result.y_pred.tolist()
        ('PredStep', [0.0, 2.0, 4.0])
    """

    y_pred: Any
    states: States


class TestStep(NamedTuple):
    """What `test_step` returns: the scalar loss, the logs and the updated States.

    A plain tuple of the same three values is accepted too: `call_step` turns it into a
    `TestStep`.

    Examples:
        >>> import elegy, jax.numpy as jnp
        >>> class AbsoluteError(elegy.Model):
        ...     def test_step(self, x, y_true, states):
        ...         loss = jnp.mean(jnp.abs(x - y_true))
        ...         return loss, {"mae": loss}, states  # a plain tuple
        >>> model = AbsoluteError()
        >>> result = model.call_step(
        ...     "test_step", x=jnp.array([1.0, 2.0]), y_true=jnp.array([0.0, 4.0]), states=model.states
        ... )
        >>> type(result).__name__, float(result.loss), float(result.logs["mae"])
        ('TestStep', 1.5, 1.5)
    """

    loss: Any
    logs: Mapping[str, Any]
    states: States


class GradStep(NamedTuple):
    """What `grad_step` returns: `TestStep`'s loss, logs and States, plus the gradients.

    `grads` has the structure of `states.net_params` (None while initializing).

    Examples:
        The default `grad_step` differentiates a one-parameter `test_step`,
        `mean((w * x - y) ** 2)`, whose gradient at `w = 0` is `mean(-2 * x * y) = -10`:

        >>> import elegy, jax.numpy as jnp
        >>> class Scale(elegy.Model):
        ...     def test_step(self, x, y_true, states):
        ...         loss = jnp.mean((states.net_params * x - y_true) ** 2)
        ...         return loss, {"loss": loss}, states
        >>> model = Scale()
        >>> states = model.states.update(net_params=jnp.array(0.0))  # w = 0
        >>> batch = dict(x=jnp.array([1.0, 2.0]), y_true=jnp.array([2.0, 4.0]), sample_weight=None,
        ...              class_weight=None, initializing=False, training=True)
        >>> result = model.call_step("grad_step", states=states, **batch)
        >>> type(result).__name__, float(result.loss), float(result.grads)
        ('GradStep', 10.0, -10.0)
    """

    loss: Any
    logs: Mapping[str, Any]
    states: States
    grads: Any


class TrainStep(NamedTuple):
    """What `train_step` returns: the logs and the States after the update.

    Examples:
        A `train_step` that only counts the steps it ran, in a States field of its own
        (initialization is not a training step, so it starts the count at 0):

        >>> import elegy, numpy as np
        >>> class CountSteps(elegy.Model):
        ...     def train_step(self, states, initializing):
        ...         count = 0 if initializing else states.count + 1
        ...         return elegy.TrainStep(logs={"count": count}, states=states.update(count=count))
        >>> model = CountSteps()
        >>> x, y = np.zeros((2, 1), np.float32), np.zeros(2, np.float32)
        >>> model.train_on_batch(x, y), model.train_on_batch(x, y)
        ({'count': 1}, {'count': 2})
    """

    logs: Mapping[str, Any]
    states: States


TestStep.__test__ = False  # type: ignore[attr-defined]  # a result type, not a pytest test class


STEP_RESULTS: dict[str, type[NamedTuple]] = {
    "pred_step": PredStep,
    "test_step": TestStep,
    "grad_step": GradStep,
    "train_step": TrainStep,
}


def check_step_output(method: str, result: Any, kind: type[NamedTuple]) -> Any:
    """`result` as a `kind` named tuple; a TypeError naming `method` if it is not one."""
    fields = kind._fields
    expected = f"({', '.join(fields)}), as a tuple or elegy.{kind.__name__}"
    if not isinstance(result, tuple) or len(result) != len(fields):
        got = f"a tuple of length {len(result)}" if isinstance(result, tuple) else type(result).__name__
        raise TypeError(f"{method} must return {expected}; got {got}")
    result = kind(*result)
    if not isinstance(result.states, States):
        raise TypeError(
            f"{method} must return {expected}; its 'states' is a "
            f"{type(result.states).__name__}, expected elegy.States (use states.update(...))"
        )
    logs = getattr(result, "logs", {})
    if not isinstance(logs, Mapping):
        raise TypeError(
            f"{method} must return {expected}; its 'logs' is a {type(logs).__name__}, "
            "expected a dict of log names to scalars"
        )
    return result

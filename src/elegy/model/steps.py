"""The results of the four steps, and the check that a step returned the right shape.

Steps may return these named tuples or plain tuples of the same length; anything else is
an error naming the method and what it should return.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from elegy.states import States


class PredStep(NamedTuple):
    y_pred: Any
    states: States


class TestStep(NamedTuple):
    loss: Any
    logs: Mapping[str, Any]
    states: States


class GradStep(NamedTuple):
    loss: Any
    logs: Mapping[str, Any]
    states: States
    grads: Any


class TrainStep(NamedTuple):
    logs: Mapping[str, Any]
    states: States


TestStep.__test__ = False  # a result type, not a pytest test class


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

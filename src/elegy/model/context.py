"""The step being run: what a step may ask about its batch without it being passed down.

A compiled entry point opens a `running_step` around the chain of steps it calls. Inside,
`batch_mask()` gives the mask of real rows of the batch (a step that overrides `test_step`
and calls `super().test_step(...)` without `mask` still gets it right), and the wrapper
records the order in which the steps produced their logs. It is a context variable, as
`elegy.add_loss` uses, so nothing of a traced step is kept on the model.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from typing import Any


@dataclasses.dataclass
class RunningStep:
    """What is known about the step being run: its batch mask and the log names seen."""

    mask: Any
    log_names: list[str] = dataclasses.field(default_factory=list)


_CURRENT: contextvars.ContextVar[RunningStep | None] = contextvars.ContextVar("elegy_step", default=None)


@contextlib.contextmanager
def running_step(mask: Any) -> Iterator[RunningStep]:
    """Mark the block as one step over a batch whose real rows are `mask`."""
    step = RunningStep(mask)
    token = _CURRENT.set(step)
    try:
        yield step
    finally:
        _CURRENT.reset(token)


def current_step() -> RunningStep | None:
    """The step being run, or None outside one."""
    return _CURRENT.get()


def batch_mask() -> Any:
    """The mask of real rows of the batch the current step runs on.

    Examples:
        >>> import numpy as np
        >>> from elegy.model.context import batch_mask, running_step
        >>> with running_step(np.array([True, False])):
        ...     batch_mask().tolist()
        [True, False]
        >>> batch_mask()  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        RuntimeError: batch_mask() was called outside a step: ...
    """
    step = _CURRENT.get()
    if step is None:
        raise RuntimeError(
            "batch_mask() was called outside a step: only the steps that fit, evaluate and "
            "predict run may ask for it"
        )
    return step.mask


def note_logs(names: Iterable[str]) -> None:
    """Record that a step produced logs `names` (in this order); outside a step, nothing."""
    step = _CURRENT.get()
    if step is not None:
        step.log_names.extend(names)


def log_order(seen: Iterable[str], logs: Mapping[str, Any]) -> tuple[str, ...]:
    """The names of `logs` in the order the innermost step produced them (`seen`), those
    never seen after. Pytree transformations (jit, grad) return dicts with sorted keys,
    so the order is taken while tracing and kept for display.

    Examples:
        >>> log_order(["loss", "accuracy", "loss"], {"accuracy": 1, "loss": 2, "lr": 3})
        ('loss', 'accuracy', 'lr')
    """
    order = dict.fromkeys(name for name in seen if name in logs)
    return (*order, *(name for name in logs if name not in order))

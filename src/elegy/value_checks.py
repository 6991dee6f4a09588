"""Checks on the values of the first batch, which only the compiled step can see.

Some mistakes are in the data's values, not its shapes: sparse labels outside
`[0, classes)` make `take_along_axis` read nothing, and the loss is NaN with no word about
why. Inside a compiled step the labels are tracers, so a loss cannot raise; instead it
reports the condition here, and the model's initialization (one compiled run on the first
batch) returns every reported condition and raises for those that failed, before any
training step runs and before the model keeps any States. A label traced inside an inner
transformation (a `vmap` or `scan` over time steps) is not checked: its values cannot
leave that transformation as the step's output. The steps that follow trace
the same reports with nobody collecting them, so XLA removes them: no cost per step.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jax_core

from elegy.hooks import bound

# message template ("{example}" is replaced by an offending value) -> (failed, example)
Checks = dict[str, tuple[Any, Any]]

_ACTIVE: contextvars.ContextVar[_Collector | None] = contextvars.ContextVar(
    "elegy_value_checks", default=None
)


@dataclasses.dataclass
class _Collector:
    trace: Any  # the step's own trace: reports from inside a vmap, scan or cond are left out
    checks: Checks = dataclasses.field(default_factory=dict)


def _current_trace() -> Any:
    return jax_core.get_opaque_trace_state()  # type: ignore[no-untyped-call]  # (unannotated in JAX)


def checking() -> contextlib.AbstractContextManager[_Collector]:
    """Collect the conditions reported while the block traces a step (`.checks`)."""
    return bound(_ACTIVE, _Collector(_current_trace()))


def report(message: str, failed: Any, example: Any) -> None:
    """Report that `failed` (a traced boolean) would make `message` true of the batch;
    `example` (traced) is one offending value, for the message. A no-op when nobody
    collects, as in every step after initialization."""
    collector = _ACTIVE.get()
    if collector is None or _current_trace() != collector.trace:
        return  # (a value of an inner transformation cannot leave it as the step's output)
    checks = collector.checks
    if message in checks:  # the same condition from two places (a loss and a metric)
        before, first_example = checks[message]
        failed, example = before | failed, jnp.where(before, first_example, example)
    checks[message] = (jnp.asarray(failed), jnp.asarray(example))


def raise_failed(checks: Mapping[str, tuple[Any, Any]]) -> None:
    """Raise a ValueError listing every failed check (the values are fetched once).

        Examples:
            >>> import numpy as np

    from elegy.hooks import bound
            >>> raise_failed({"labels in [0, 3), got {example}": (np.True_, np.int32(7))})
            Traceback (most recent call last):
            ...
            ValueError: in the first batch, labels in [0, 3), got 7
            >>> raise_failed({"labels in [0, 3), got {example}": (np.False_, np.int32(0))})
    """
    fetched = jax.device_get(dict(checks))
    failed = [message.format(example=example) for message, (bad, example) in fetched.items() if np.any(bad)]
    if failed:
        raise ValueError("in the first batch, " + "; ".join(failed))

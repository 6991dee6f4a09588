"""`add_loss` and `add_metric`: auxiliary terms reported from inside a Haiku module.

A forward function can report a value that is not its output, such as the KL term of a
VAE or an activation penalty:

    def forward(x):
        mean, log_var = encoder(x)
        elegy.add_loss("kl", -0.5 * jnp.mean(1 + log_var - mean**2 - jnp.exp(log_var)))
        ...

The default `test_step` collects these values while it runs `pred_step`, adds the losses
to the total and logs both kinds as running means. Collection uses a context variable
(the same technique Haiku uses for `hk.next_rng_key`), which is set only while a step
runs, so the values are tracers of the step being compiled and nothing leaks between
steps. Called anywhere else, the functions raise.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Iterator
from typing import Any, TypeVar

import jax.numpy as jnp


@dataclasses.dataclass
class Collected:
    """The auxiliary values reported during one forward pass, summed per name."""

    losses: dict[str, Any] = dataclasses.field(default_factory=dict)
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)


T = TypeVar("T")

_ACTIVE: contextvars.ContextVar[Collected | None] = contextvars.ContextVar("elegy_collected", default=None)


def collecting() -> contextlib.AbstractContextManager[Collected]:
    """Collect `add_loss`/`add_metric` calls made inside the block (innermost block wins)."""
    return bound(_ACTIVE, Collected())


@contextlib.contextmanager
def bound(variable: contextvars.ContextVar[T | None], value: T) -> Iterator[T]:
    """`variable` set to `value` inside the block (and yielded), as it was after it."""
    token = variable.set(value)
    try:
        yield value
    finally:
        variable.reset(token)


def _report(kind: str, name: str, value: Any) -> None:
    collected = _ACTIVE.get()
    if collected is None:
        raise RuntimeError(
            f"elegy.add_{kind}({name!r}, ...) was called outside a step: call it inside the "
            "forward function (or a step) that Elegy runs during fit, evaluate or predict"
        )
    if not isinstance(name, str) or not name:
        raise TypeError(f"add_{kind}: name must be a non-empty string, got {name!r}")
    value = jnp.asarray(value)
    if value.ndim != 0:
        raise ValueError(
            f"add_{kind}({name!r}, ...) expects a scalar, got shape {value.shape}; reduce it "
            "first (e.g. jnp.mean)"
        )
    store = collected.losses if kind == "loss" else collected.metrics
    store[name] = store[name] + value if name in store else value


def add_loss(name: str, value: Any) -> None:
    """Add the scalar `value` to the model's total loss and log it as `<name>_loss`.

    Calls with the same name in one forward pass are summed (a shared layer called twice
    adds its penalty twice). The value is one number for the batch, so padded rows of a
    partial batch take part in it.

    Examples:
        A forward function that returns its input (so the `mse` term is 0) and adds a
        penalty of `0.5 * mean(x ** 2)`, which is `0.5 * 14 / 4 = 1.75` for `x = [0, 1, 2, 3]`:

        >>> import elegy, jax.numpy as jnp, numpy as np
        >>> def forward(x):
        ...     elegy.add_loss("activity", 0.5 * jnp.mean(x**2))
        ...     return x
        >>> model = elegy.Model(forward, loss="mse")
        >>> x = np.arange(4, dtype=np.float32).reshape(4, 1)
        >>> logs = model.evaluate(x, x, verbose=0)
        >>> {name: round(value, 4) for name, value in logs.items()}
        {'loss': 1.75, 'mse_loss': 0.0, 'activity_loss': 1.75}
    """
    _report("loss", name, value)


def add_metric(name: str, value: Any) -> None:
    """Log the scalar `value` under `name`, averaged over the epoch's samples.

    Unlike `add_loss`, the value does not change the loss or the gradients.

    Examples:
        The mean of each batch of 2 rows, averaged over the epoch, is the mean of all rows:

        >>> import elegy, jax.numpy as jnp, numpy as np
        >>> def forward(x):
        ...     elegy.add_metric("input_mean", jnp.mean(x))
        ...     return x
        >>> model = elegy.Model(forward, loss="mse")
        >>> x = np.array([[1.0], [2.0], [3.0], [6.0]], np.float32)
        >>> logs = model.evaluate(x, x, batch_size=2, verbose=0)
        >>> round(logs["input_mean"], 4), float(x.mean()), round(logs["loss"], 4)
        (3.0, 3.0, 0.0)
    """
    _report("metric", name, value)

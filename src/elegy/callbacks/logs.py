"""Logs handed to callbacks: host floats, fetched from the device only when read.

A step's logs are device scalars. Reading them forces the host to wait for the step, so
the loops wrap them in `Logs`, which fetches all values in one transfer the first time any
value is read; a callback that ignores batch logs therefore costs no synchronisation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from typing import Any

import jax
import numpy as np


class Logs(MutableMapping[str, Any]):
    """A mapping of log names to floats (or arrays, for array-valued logs).

    A callback may add or replace entries, as Keras callbacks do (`logs["lr"] = ...` in
    `on_epoch_end`): the callbacks after it in the list, `History` and the progress bar
    see them. The step's own values stay untouched on the device until read.

    Examples:
        Device scalars go in; Python floats come out, all fetched at the first read:

        >>> import jax.numpy as jnp
        >>> from elegy.callbacks import Logs
        >>> logs = Logs({"loss": jnp.float32(0.25), "accuracy": jnp.float32(0.75)})
        >>> list(logs), logs["loss"], type(logs["accuracy"]).__name__
        (['loss', 'accuracy'], 0.25, 'float')
        >>> dict(logs.with_prefix("val_"))
        {'val_loss': 0.25, 'val_accuracy': 0.75}
        >>> logs["lr"] = 1e-3  # added by a callback, after the step's own
        >>> list(logs), logs["lr"]
        (['loss', 'accuracy', 'lr'], 0.001)
    """

    __slots__ = ("_device", "_host", "_order", "_source")

    def __init__(
        self,
        values: Mapping[str, Any] | None = None,
        order: Sequence[str] | None = None,
        source: Callable[[], Mapping[str, Any]] | None = None,
    ):
        self._device: dict[str, Any] = dict(values or {})
        self._host: dict[str, Any] | None = None
        self._order = order
        self._source = source  # fetches the values; by default jax.device_get(values)

    def _fetch(self) -> dict[str, Any]:
        if self._host is None:
            fetched = dict(self._source()) if self._source is not None else jax.device_get(self._device)
            added = {k: v for k, v in self._device.items() if k not in fetched}  # (set by a callback)
            if added:
                fetched.update(jax.device_get(added))
            self._host = {k: _to_python(v) for k, v in fetched.items() if k in self._device}
        return self._host

    def __getitem__(self, name: str) -> Any:
        return self._fetch()[name]

    def __setitem__(self, name: str, value: Any) -> None:
        if name not in self._device and self._order is not None and len(self._order) == len(self._device):
            self._order = (*self._order, name)
        self._device[name] = value
        if self._host is not None:
            self._host[name] = _to_python(jax.device_get(value))

    def __delitem__(self, name: str) -> None:
        del self._device[name]
        if self._host is not None:
            self._host.pop(name, None)
        if self._order is not None and name in self._order:
            self._order = tuple(entry for entry in self._order if entry != name)

    def __iter__(self) -> Iterator[str]:
        """In `order` when given (the order the step produced its logs), else as stored."""
        if self._order is None or len(self._order) != len(self._device):
            return iter(self._device)
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._device)

    def __repr__(self) -> str:
        return f"Logs({self._fetch()!r})"

    def with_prefix(self, prefix: str) -> Logs:
        return Logs({prefix + k: v for k, v in self._device.items()})

    def merged(self, other: Mapping[str, Any]) -> Logs:
        values = dict(self._device)
        values.update(other._device if isinstance(other, Logs) else other)
        return Logs(values)


def _to_python(value: Any) -> Any:
    array = np.asarray(value)
    return array.item() if array.ndim == 0 else array


def scalar_logs(logs: Mapping[str, Any] | None) -> Iterator[tuple[str, float]]:
    """(name, float) for every scalar number in `logs` (Python, numpy or jax); array-valued
    and non-numeric entries are skipped. What the progress bar and TensorBoard display."""
    for name, value in (logs or {}).items():
        if np.ndim(value) == 0 and np.issubdtype(np.asarray(value).dtype, np.number):
            yield name, float(value)

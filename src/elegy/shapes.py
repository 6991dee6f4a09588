"""Shape checks shared by losses and metrics: a mismatch is an error, never a broadcast.

These run while tracing, on static shapes, so they cost nothing in the compiled step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np

from elegy import value_checks


def class_indices(y_true: Any, y_pred: Any, who: str) -> jnp.ndarray:
    """Integer labels of shape `y_pred.shape[:-1]` from `(batch,)` or `(batch, 1)` labels."""
    y_true, y_pred = jnp.asarray(y_true), jnp.asarray(y_pred)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1:] == (1,):
        y_true = y_true[..., 0]
    if y_true.shape != y_pred.shape[:-1]:
        raise ValueError(
            f"{who}: y_true of shape {y_true.shape} must hold one class index per row of "
            f"y_pred, whose shape is {y_pred.shape} (expected y_true shape "
            f"{y_pred.shape[:-1]})"
        )
    return cast(jax.Array, y_true.astype(jnp.int32))


def check_label_range(labels: Any, classes: int, ignore_class: int | None, who: str) -> None:
    """Raise if concrete labels fall outside `[0, classes)`. Traced labels' values are
    unknown until the compiled step runs: they are reported to `elegy.value_checks`, which
    model initialization turns into this error on the first batch."""
    message = f"{who}: labels must be class indices in [0, {classes}), got {{example}}"
    try:
        values = np.asarray(labels)
    except jax.errors.TracerArrayConversionError:
        traced = jnp.asarray(labels).reshape(-1)
        outside = _outside(traced, classes, ignore_class)
        value_checks.report(message, outside.any(), traced[jnp.argmax(outside)])
        return
    bad = _outside(values, classes, ignore_class)
    if bad.any():
        raise ValueError(message.format(example=sorted(set(values[bad].tolist()))[:5]))


def _outside(labels: Any, classes: int, ignore_class: int | None) -> Any:
    """Where `labels` (numpy or jax) are no class index and not the ignored class."""
    outside = (labels < 0) | (labels >= classes)
    return outside if ignore_class is None else outside & (labels != ignore_class)


def matching_targets(y_true: Any, y_pred: Any, who: str) -> jnp.ndarray:
    """`y_true` with the shape and dtype of `y_pred`; `(batch,)` fits `(batch, 1)`."""
    y_true, y_pred = jnp.asarray(y_true), jnp.asarray(y_pred)
    if y_true.ndim + 1 == y_pred.ndim and y_pred.shape[-1:] == (1,):
        y_true = y_true[..., None]
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"{who}: y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}; they must match"
        )
    return cast(jax.Array, y_true.astype(y_pred.dtype))


def select(on: Any, y_true: Any, y_pred: Any) -> tuple[Any, Any]:
    """The part of a structured output that `on` names, and the same part of the target.

    `on` is a dict key or sequence index, or a tuple of them for nested outputs. The
    target is indexed too when it is itself a dict, tuple or list; an array target is
    used whole (one target for one selected output).
    """
    if on is None:
        return y_true, y_pred
    for key in on if isinstance(on, tuple) else (on,):
        y_pred = _part(y_pred, key, on, "y_pred")
        if isinstance(y_true, (Mapping, tuple, list)):
            y_true = _part(y_true, key, on, "y_true")
    return y_true, y_pred


def _part(value: Any, key: Any, on: Any, argument: str) -> Any:
    try:
        return value[key]
    except (KeyError, IndexError, TypeError):
        available = list(value) if isinstance(value, Mapping) else f"a {type(value).__name__}"
        if isinstance(value, (tuple, list)):
            available = f"indices 0..{len(value) - 1}"
        raise ValueError(f"on={on!r}: {argument} has no part {key!r} (it has {available})") from None


def per_sample_mean(values: jnp.ndarray) -> jnp.ndarray:
    """Mean over the last axis of `(batch, ..., d)` values; `(batch,)` values are already
    one per sample (a model with one output column squeezed away)."""
    return values if values.ndim <= 1 else jnp.mean(values, axis=-1)

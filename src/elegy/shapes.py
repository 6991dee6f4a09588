"""Shape checks shared by losses and metrics: a mismatch is an error, never a broadcast.

These run while tracing, on static shapes, so they cost nothing in the compiled step.
"""

from __future__ import annotations

import jax.numpy as jnp


def class_indices(y_true, y_pred, who: str) -> jnp.ndarray:
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
    return y_true.astype(jnp.int32)


def matching_targets(y_true, y_pred, who: str) -> jnp.ndarray:
    """`y_true` with the shape and dtype of `y_pred`; `(batch,)` fits `(batch, 1)`."""
    y_true, y_pred = jnp.asarray(y_true), jnp.asarray(y_pred)
    if y_true.ndim + 1 == y_pred.ndim and y_pred.shape[-1:] == (1,):
        y_true = y_true[..., None]
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"{who}: y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}; they must match"
        )
    return y_true.astype(y_pred.dtype)

"""What the default steps need, and the errors that say what is missing."""

from __future__ import annotations

from typing import Any

import jax
import optax

from elegy.data.structure import as_array_tree


def checked_optimizer(optimizer: Any) -> optax.GradientTransformation | None:
    if optimizer is not None and not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
        raise TypeError(
            "optimizer must be an optax GradientTransformation (with init and update), "
            f"got {type(optimizer).__name__}"
        )
    return optimizer


NO_LOSS = (
    "no loss: pass loss=... to Model (e.g. elegy.losses.SparseCategoricalCrossentropy"
    "(from_logits=True)) or override test_step"
)
NO_OPTIMIZER = (
    "no optimizer: pass optimizer=... (an optax GradientTransformation) to Model or override train_step"
)


def shapes_of(x: Any) -> Any:
    """`x` as a tree of `jax.ShapeDtypeStruct` (checked like any input when it holds arrays)."""
    if all(isinstance(leaf, jax.ShapeDtypeStruct) for leaf in jax.tree_util.tree_leaves(x)):
        return x
    return jax.tree_util.tree_map(
        lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype),  # type: ignore[no-untyped-call]
        as_array_tree(x, "x"),
    )


NO_MODULE = (
    "the model cannot be initialized: module is None; pass module=... (a Haiku forward "
    "function or module) or override pred_step"
)

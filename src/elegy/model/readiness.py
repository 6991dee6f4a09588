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


CHAIN = ("train_step", "grad_step", "test_step", "pred_step")


def reaches_default(model: Any, defaults: type, entry: str, target: str) -> bool:
    """True when every step from `entry` down to `target` is the `defaults` class's own.

    Only then do we know for sure, before tracing, that the default `target` will run.
    """
    start, stop = CHAIN.index(entry), CHAIN.index(target)
    if stop < start:
        return False
    return all(getattr(type(model), name) is getattr(defaults, name) for name in CHAIN[start : stop + 1])


def check_ready(model: Any, defaults: type, entry: str, what: str) -> None:
    """Raise the error that says what `what` (fit, evaluate, ...) lacks to run `entry`,
    when the default steps it would reach need it: an optimizer, a loss, a module."""
    if (
        what in ("fit", "train_on_batch")
        and model.optimizer is None
        and reaches_default(model, defaults, entry, "train_step")
    ):
        raise ValueError(f"{what}: " + NO_OPTIMIZER)
    if (
        not model._objectives.has_loss
        and entry != "pred_step"
        and reaches_default(model, defaults, entry, "test_step")
    ):
        raise ValueError(f"{what}: " + NO_LOSS)
    if model._pure_module is None and reaches_default(model, defaults, entry, "pred_step"):
        raise ValueError(f"{what}: " + NO_MODULE)

"""Naming what made a step compile again.

A compiled step is reused as long as its inputs keep their shapes, dtypes and structure.
When something changes (a batch of another size, a float64 array, a States field that
became weakly typed), JAX silently compiles the step again, which can cost more than the
training itself. The loops record each step's input signature when JAX traces it (never
per step, so it costs nothing at run time) and, when `fit` traces a step again, warn
with the inputs that changed, from the first epoch on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax

_SHOWN = 5


class RetraceWarning(UserWarning):
    """A compiled step was compiled again because its inputs changed.

    `fit` warns, from its first batch, naming the inputs whose shape, dtype or structure
    changed. Turn it into an error (`warnings.simplefilter("error", RetraceWarning)`)
    to make a test fail on needless compilations.

    Examples:
        A generator whose second batch is larger than its first makes the training step
        compile again:

        >>> import elegy, numpy as np, warnings
        >>> class Rows(elegy.Model):
        ...     def train_step(self, x, states):
        ...         return {"rows": x.shape[0] + 0.0}, states
        >>> def batches():
        ...     yield np.ones((2, 1), np.float32)
        ...     yield np.ones((4, 1), np.float32)
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     history = Rows().fit(batches(), epochs=2, steps_per_epoch=1, verbose=0)
        >>> [type(warning.message).__name__ for warning in caught]
        ['RetraceWarning']
        >>> "['x']: float32[2,1] -> float32[4,1]" in str(caught[0].message)
        True
    """


def signature(arguments: Mapping[str, Any]) -> dict[str, str]:
    """Each leaf's path and abstract value (`float32[32,4]`, `~float32[]` if weakly typed)."""
    flat, _ = jax.tree_util.tree_flatten_with_path(dict(arguments))
    return {jax.tree_util.keystr(path): _describe(leaf) for path, leaf in flat}


def changes(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """Human-readable differences between two signatures, changed leaves first."""
    common = [path for path in after if path in before]
    changed = [f"{path}: {before[path]} -> {after[path]}" for path in common if before[path] != after[path]]
    added = [f"{path}: new, {after[path]}" for path in after if path not in before]
    removed = [f"{path}: gone, was {before[path]}" for path in before if path not in after]
    return changed + added + removed


def message(step: str, differences: list[str]) -> str:
    shown = "; ".join(differences[:_SHOWN]) + ("; ..." if len(differences) > _SHOWN else "")
    return (
        f"{step} was compiled again because its inputs changed ({shown}). "
        "Each new input signature costs a compilation: keep batch shapes and dtypes constant "
        "(the last partial batch is padded for you) and keep States fields' types stable."
    )


def _describe(leaf: Any) -> str:
    aval = getattr(leaf, "aval", None)  # a tracer's abstract value
    if aval is not None:
        return str(aval)
    return f"{type(leaf).__name__} {leaf!r:.40}"

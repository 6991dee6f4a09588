"""How States cross the boundary of a compiled step: as a flat list of leaves.

Two costs of passing States to `jax.jit` as they are, both paid on every step:

- States are a pytree node defined in Python. jit's dispatch flattens its arguments and
  rebuilds its outputs on every call, calling back into Python for each such node; a
  flat list of arrays (with the structure as a static argument) it handles in C++. For
  the benchmark's MLP that is about 60 us of a 600 us evaluation step.
- jit gives every output a buffer of its own, so a step that returns its input States with
  only the metrics and the rng changed (evaluate, predict) copies the params and the
  optimizer state on every call: about 3 MB a step for that MLP with Adam, a third of the
  time of an evaluation step. Such steps return `None` in place of each unchanged leaf,
  and the caller puts the input leaf back. Training steps return every leaf: they donate
  their input, which XLA then updates in place (a donated leaf put back would be deleted).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax


def over_leaves(step: Callable[..., tuple[Any, Any]], unchanged_as_none: bool) -> Callable[..., Any]:
    """`step(states, *rest) -> (outputs, states)` as `(treedef, leaves, *rest) -> (outputs,
    new leaves)`; with `unchanged_as_none`, `None` stands for each leaf that is the input's
    own (the identical tracer while JAX traces). A step that restructures its States
    returns them whole."""

    def run(treedef: Any, leaves: list[Any], *rest: Any) -> tuple[Any, Any]:
        outputs, updated = step(treedef.unflatten(leaves), *rest)
        new, new_treedef = jax.tree_util.tree_flatten(updated)
        if new_treedef != treedef:
            return outputs, updated
        if unchanged_as_none:
            new = [None if n is o else n for n, o in zip(new, leaves, strict=True)]
        return outputs, new

    return run


def with_states(compiled: Callable[..., Any]) -> Callable[..., tuple[Any, Any]]:
    """`compiled` (jitted `over_leaves`, the treedef static) called as `(states, *rest) ->
    (outputs, states)` again. The jitted function is kept as `.jitted`."""

    def call(states: Any, *rest: Any) -> tuple[Any, Any]:
        leaves, treedef = jax.tree_util.tree_flatten(states)
        outputs, new = compiled(treedef, leaves, *rest)
        if type(new) is not list:  # restructured: returned whole
            return outputs, new
        return outputs, treedef.unflatten([o if n is None else n for n, o in zip(new, leaves, strict=True)])

    call.jitted = compiled  # type: ignore[attr-defined]
    return call

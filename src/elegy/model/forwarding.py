"""How States cross the boundary of a compiled step: as a flat list of leaves.

Three costs of passing States to `jax.jit` as they are, all paid on every step:

- States are a pytree node defined in Python. jit's dispatch flattens its arguments and
  rebuilds its outputs on every call, calling back into Python for each such node; a
  flat list of arrays (with the structure as a static argument) it handles in C++. For
  the benchmark's MLP that is about 60 us of a 600 us evaluation step.
- jit gives every output a buffer of its own, so a step that returns its input States with
  only the metrics and the rng changed (evaluate, predict) copies the params and the
  optimizer state on every call: about 3 MB a step for that MLP with Adam, a third of the
  time of an evaluation step. Such steps return only the leaves that changed, by
  position, and the caller keeps the input's own for the rest. Training steps return
  every leaf, written in place over retired buffers they donate (`elegy.model.buffers`).
- Rebuilding States from the leaves a step returned, only for the next step to flatten
  them again (about 20 us a step for that MLP, more with more leaves). The States a step
  returns keep its leaves until something reads them (`States.from_leaves`), so a loop
  that only passes them on to the next step never walks the tree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from elegy.model.buffers import RetiredBuffers
from elegy.states import States


def over_leaves(step: Callable[..., tuple[Any, Any]], changed_only: bool) -> Callable[..., Any]:
    """`step(states, *rest) -> (outputs, states)` as `(treedef, leaves, *rest) -> (outputs,
    new leaves)`; with `changed_only`, the new leaves are a dict `{position: leaf}` of
    those that are not the input's own (the identical tracer while JAX traces). A
    step that restructures its States returns them whole."""

    def run(treedef: Any, leaves: list[Any], *rest: Any) -> tuple[Any, Any]:
        outputs, updated = step(treedef.unflatten(leaves), *rest)
        new, new_treedef = jax.tree_util.tree_flatten(updated)
        if new_treedef != treedef:
            return outputs, updated
        if changed_only:
            return outputs, {i: n for i, (n, o) in enumerate(zip(new, leaves, strict=True)) if n is not o}
        return outputs, new

    return run


def with_states(
    compiled: Callable[..., Any], changed_only: bool, buffers: RetiredBuffers | None = None
) -> Callable[..., tuple[Any, Any]]:
    """`compiled` (jitted `over_leaves`, the treedef static, with the same
    `changed_only`) called as `(states, *rest) -> (outputs, states)` again. The
    jitted function is kept as `.jitted`. With `buffers`, `compiled` takes the buffers to
    donate after the leaves (`(treedef, leaves, spare, *rest)`), taken from `buffers`.

    The States it returns stay the flat list of leaves until something reads them
    (`States.from_leaves`): fed to the next step unread, they cross no tree walk at all.
    """

    def call(states: States, *rest: Any) -> tuple[Any, Any]:
        treedef, leaves = states.leaves()
        if buffers is None:
            outputs, new = compiled(treedef, leaves, *rest)
        else:
            outputs, new = compiled(treedef, leaves, buffers.take(treedef, leaves), *rest)
        if isinstance(new, States):  # restructured: returned whole
            return outputs, new
        if changed_only:  # only the changed leaves came back: Python work per change
            changed, new = new, list(leaves)
            for position, leaf in changed.items():
                new[position] = leaf
        return outputs, States.from_leaves(treedef, new)

    call.jitted = compiled  # type: ignore[attr-defined]
    return call

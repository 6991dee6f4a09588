"""Where a training step writes its new States: buffers nothing outside the loop can reach.

A training step that donates its input States (lets XLA write the new ones over them)
is fast, but the arrays it was given are deleted, and two promises break with them:

- a user who kept `model.states` (or `model.states.net_params`, or anything holding
  their arrays) across a step holds deleted arrays;
- a step that fails while it runs (an exception in a `jax.debug.callback`, a NaN caught
  by `jax_debug_nans`, an out-of-memory error, Ctrl-C) has already destroyed its input:
  nothing of the weights is left.

So a training step never donates the States it reads. It donates *retired* buffers
instead: those of the States before them, which the loop alone holds once the step that
read them has returned. XLA writes the new States there, in place, and the input stays
intact until the next step has returned in turn. The cost is one more copy of the States
in memory while training (about the memory a step without donation needs at its peak);
the speed is that of a donating step, less the dispatch of one more argument per leaf.

States the user may hold (`ModelCore` marks them when `model.states` is read or
assigned) are never retired: the next step that needs buffers gets fresh copies instead,
one device copy of the States, once.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


class RetiredBuffers:
    """The leaves of the last States only the loop holds, kept for the next step to donate.

    The model calls `expose()` whenever its current States leave its hands (`model.states`
    read or assigned); a training step calls `take` for the buffers it donates, and the
    model calls `returned` when it stores the new States the step returned, which retires
    the States the step read unless they were exposed. (Retiring only then means that an
    interruption between the two, Ctrl-C included, leaves the model's current States
    unretired and intact.)
    """

    def __init__(self) -> None:
        self._treedef: Any = None
        self._leaves: list[Any] | None = None
        self._exposed = False

    def expose(self) -> None:
        """The model's current States may now be held outside the loop: never retire them."""
        self._exposed = True

    def take(self, treedef: Any, leaves: list[Any]) -> list[Any]:
        """Buffers for a step reading `leaves` to write its new States into: the retired
        ones if they have the same structure, else fresh copies of `leaves`. Whatever is
        returned is given to the step to donate, so it is forgotten here."""
        retired, same = self._leaves, self._treedef is not None and self._treedef == treedef
        self._treedef = self._leaves = None
        if retired is not None and same:
            return retired
        copies: list[Any] = fresh_copies(leaves)
        return copies

    def returned(self, treedef: Any, leaves: list[Any]) -> None:
        """A step that read `leaves` (of States in the structure `treedef`) returned new
        States, which nothing outside the loop holds yet: keep the old leaves for the next
        step to write over, unless they were exposed."""
        if not self._exposed:
            self._treedef, self._leaves = treedef, leaves
        self._exposed = False

    def clear(self) -> None:
        """Give the memory back (at the end of `fit`)."""
        self._treedef = self._leaves = None
        self._exposed = False


@jax.jit
def fresh_copies(leaves: list[Any]) -> list[Any]:
    """Device copies of `leaves` in buffers of their own, in one call."""
    return [jnp.copy(leaf) for leaf in leaves]

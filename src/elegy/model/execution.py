"""Executions: what one call of a compiled step runs, one batch or several fused.

With `steps_per_execution=N`, N consecutive batches are stacked on a new leading axis,
sent to the device at once, and a `lax.scan` runs the step over them inside one compiled
call; the per-step outputs (logs, predictions) come back stacked. The last group of an
epoch is filled up with copies of its last batch, flagged as not real: the scan skips them
(a `lax.cond` that leaves the States as they were), so the results equal step-by-step
ones, the filler costs no compute, and every group has one shape (one compilation).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from elegy.data.batches import Batch, is_stacked


class Execution(NamedTuple):
    """The input of one compiled call: a batch, or `size` stacked batches of which the
    first `count` are real (`real` flags them for the scan)."""

    batches: Batch
    real: np.ndarray | None
    count: int

    def to_device(self) -> Execution:
        """The arrays on the device (prefetching); `count` stays a Python int."""
        return self._replace(batches=jax.device_put(self.batches), real=jax.device_put(self.real))

    def first(self) -> Batch:
        """The first batch alone (what initialization looks at)."""
        if self.real is None:
            return self.batches
        return jax.tree_util.tree_map(lambda leaf: leaf[0], self.batches)


def executions(batches: Iterable[Batch], size: int) -> Iterator[Execution]:
    """`batches` one per execution (`size` 1) or stacked `size` at a time."""
    if size == 1:
        for batch in batches:
            yield Execution(batch, None, 1)
        return
    group: list[Batch] = []
    for batch in batches:
        if is_stacked(batch):  # stacked by its source already (a whole group of real batches)
            yield Execution(batch, np.ones(size, bool), size)
            continue
        group.append(batch)
        if len(group) == size:
            yield _stacked(group, size)
            group = []
    if group:
        yield _stacked(group, size)


def _stacked(group: list[Batch], size: int) -> Execution:
    filled = group + [group[-1]] * (size - len(group))
    stacked = jax.tree_util.tree_map(lambda *leaves: np.stack(leaves), *filled)
    return Execution(stacked, np.arange(size) < len(group), len(group))


def fused(run: Callable[[Any, Batch, Any], tuple[Any, Any]]) -> Callable:
    """`run(states, batch, class_weight) -> (outputs, states)` scanned over stacked batches.

    Returns `(states, batches, real, class_weight) -> (stacked outputs, states)`.
    """

    def over_batches(states: Any, batches: Batch, real: Any, class_weight: Any):
        def step(carried: Any, inputs: tuple[Batch, Any]):
            batch, is_real = inputs
            traced: list[Any] = []  # the step's outputs, abstract, once `compute` is traced

            def compute(carried: Any) -> tuple[Any, Any]:
                outputs, updated = run(carried, batch, class_weight)
                traced.append(jax.eval_shape(lambda: outputs))
                return updated, outputs

            def skip(carried: Any) -> tuple[Any, Any]:
                # A filler batch is not computed and changes nothing (the padding of the
                # last group costs no step). Leaves returned as they came are forwarded
                # from input to output by cond and scan alike (see `forwarding`).
                outputs = traced[0] if traced else jax.eval_shape(compute, carried)[1]
                return carried, jax.tree_util.tree_map(lambda o: jnp.zeros(o.shape, o.dtype), outputs)

            # (cond traces its true branch first: the step is traced once)
            return jax.lax.cond(is_real, compute, skip, carried)

        states, outputs = jax.lax.scan(step, states, (batches, real))
        return outputs, states

    return over_batches


def step_outputs(outputs: Any, execution: Execution) -> list[Any]:
    """The outputs of each real step of an execution (device arrays, not fetched)."""
    if execution.real is None:
        return [outputs]
    return [jax.tree_util.tree_map(lambda leaf, i=i: leaf[i], outputs) for i in range(execution.count)]

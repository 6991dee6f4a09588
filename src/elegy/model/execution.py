"""Executions: what one call of a compiled step runs, one batch or several fused.

With `steps_per_execution=N`, N consecutive batches are stacked on a new leading axis,
sent to the device at once, and a `lax.scan` runs the step over them inside one compiled
call; the per-step outputs (logs, predictions) come back stacked. The batches left at the
end of an epoch, fewer than N, run one by one through the single-step program: one more
compilation, but no group of another size (a compilation per size) and no filler steps.

Filler steps were tried and dropped: to complete the last group with batches that change
nothing, the scan must skip them with a `lax.cond`, and a `cond` inside a loop costs on
a GPU in every step of every group, not only in the last one (jax issues 5986 and 38145
report `cond` in a `scan` as slow on GPUs, and copies of the whole carry). On an H200,
32 fused training steps ran at 0.44x the speed of a hand-written scan with the `cond` and
0.50x without it for the benchmark's MLP, 0.31x and 0.44x for its CNN.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

import jax
import numpy as np

from elegy.data.batches import Batch, is_stacked


class Execution(NamedTuple):
    """The input of one compiled call: one batch (`count` 1), or `count` batches stacked on
    a new leading axis (`fused`)."""

    batches: Batch
    count: int

    @property
    def fused(self) -> bool:
        return self.count > 1

    def to_device(self) -> Execution:
        """The arrays on the device (prefetching); `count` stays a Python int."""
        return self._replace(batches=jax.device_put(self.batches))

    def first(self) -> Batch:
        """The first batch alone (what initialization looks at)."""
        if not self.fused:
            return self.batches
        return jax.tree_util.tree_map(lambda leaf: leaf[0], self.batches)


def executions(batches: Iterable[Batch], size: int) -> Iterator[Execution]:
    """`batches` one per execution (`size` 1) or stacked `size` at a time, the batches that
    do not fill a last group one by one."""
    if size == 1:
        for batch in batches:
            yield Execution(batch, 1)
        return
    group: list[Batch] = []
    for batch in batches:
        if is_stacked(batch):  # stacked by its source already (a whole group)
            yield Execution(batch, size)
            continue
        group.append(batch)
        if len(group) == size:
            yield Execution(jax.tree_util.tree_map(lambda *leaves: np.stack(leaves), *group), size)
            group = []
    for batch in group:
        yield Execution(batch, 1)


def fused(run: Callable[[Any, Batch, Any], tuple[Any, Any]]) -> Callable:
    """`run(states, batch, class_weight) -> (outputs, states)` scanned over stacked batches.

    Returns `(states, batches, class_weight) -> (stacked outputs, states)`.
    """

    def over_batches(states: Any, batches: Batch, class_weight: Any):
        def step(carried: Any, batch: Batch) -> tuple[Any, Any]:
            outputs, updated = run(carried, batch, class_weight)
            return updated, outputs

        states, outputs = jax.lax.scan(step, states, batches)
        return outputs, states

    return over_batches


def step_outputs(outputs: Any, execution: Execution) -> list[Any]:
    """The outputs of each step of an execution (device arrays, not fetched)."""
    if not execution.fused:
        return [outputs]
    return [jax.tree_util.tree_map(lambda leaf, i=i: leaf[i], outputs) for i in range(execution.count)]

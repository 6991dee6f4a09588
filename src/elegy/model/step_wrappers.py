"""Wrappers that turn one step into another program: over stacked batches (`scanned`,
a `lax.scan`), over batches of data on the device (`gathering`, `looped`, a
`fori_loop`), and guarded against a non-finite update (`guarded`).

A step here is `(states, batch, class_weight[, halted]) -> (outputs, states)`, the
body of an entry point (`elegy.model.entry_points`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from elegy.data.batches import Batch
from elegy.data.resident import gathered
from elegy.states import States

Step = Callable[..., tuple[Any, States]]  # (States, Batch, class_weight[, halted]) -> (outputs, States)


def scanned(run: Step) -> Callable[[States, Batch, Any], tuple[Any, States]]:
    """`run(states, batch, class_weight) -> (outputs, states)` as a `lax.scan` over batches
    stacked on a leading axis: `(states, batches, class_weight) -> (stacked outputs, states)`.

    Every step of a group runs unconditionally (see `elegy.model.execution` for why a
    group is never completed with filler steps).
    """

    def over_batches(states: States, batches: Batch, class_weight: Any) -> tuple[Any, States]:
        def step(carried: States, batch: Batch) -> tuple[States, Any]:
            outputs, updated = run(carried, batch, class_weight)
            return updated, outputs

        states, outputs = jax.lax.scan(step, states, batches)
        return outputs, states

    return over_batches


def gathering(step: Step) -> Step:
    """`step(states, batch, *rest)` on the batch at `position` of data on the device:
    `(states, data, index, mask, position, *rest)` (see `elegy.data.resident`).

    (Not through a jitted inner step, as `looped` is: the outputs of a nested jit are new
    values even where the step returned its input, so an evaluation step would return,
    and copy, every leaf of its States.)"""

    def on_rows(
        states: States, data: Any, index: Any, mask: Any, position: Any, *rest: Any
    ) -> tuple[Any, States]:
        return step(states, gathered(data, index[position], mask[position]), *rest)

    return on_rows


def looped(step: Step, capacity: int, training: bool) -> Step:
    """`count` steps (a run-time argument, at most `capacity`) over the batches from
    `position` of data on the device, in one `fori_loop`: every group size is this one
    program, so a tuner may pick any without compiling or changing a bit. The outputs of
    the steps come back stacked on a leading axis of `capacity` rows, the first `count`
    filled; a training step's `halted` flag is carried along (see `guarded`).

    The stacked outputs need the shapes of one step's before the loop runs: the step is
    jitted inside, so finding them (`eval_shape`) and the loop's body share one trace of
    the user's steps."""
    inner = jax.jit(step)

    def over_rows(
        states: States,
        data: Any,
        index: Any,
        mask: Any,
        position: Any,
        count: Any,
        class_weight: Any,
        *flag: Any,
    ) -> tuple[Any, States]:
        def batch(i: Any) -> Batch:
            return gathered(data, index[position + i], mask[position + i])

        def outputs_of(result: Any) -> Any:
            return result[0] if training else result  # a training step's (logs, halted)

        shapes = outputs_of(jax.eval_shape(inner, states, batch(0), class_weight, *flag)[0])
        stacked = jax.tree_util.tree_map(
            lambda shape: jnp.zeros((capacity, *shape.shape), shape.dtype), shapes
        )

        def one(i: Any, carried: tuple[States, tuple[Any, ...], Any]) -> tuple[States, tuple[Any, ...], Any]:
            carried_states, carried_flag, outputs = carried
            result, updated = inner(carried_states, batch(i), class_weight, *carried_flag)
            new_flag = (result[1],) if training else ()
            outputs = jax.tree_util.tree_map(
                lambda rows, row: rows.at[i].set(row), outputs, outputs_of(result)
            )
            return updated, new_flag, outputs

        states, flag, stacked = jax.lax.fori_loop(0, count, one, (states, flag, stacked))
        return ((stacked, *flag) if training else stacked), states

    return over_rows


def guarded(run: Step) -> Callable[..., tuple[Any, States]]:
    """A training step that never lets a non-finite update through, as
    `(states, batch, class_weight, halted) -> ((logs, halted), states)`.

    A step whose loss (every floating-point log, if it logs no `loss`) or new net params
    are not all finite halts training: it and every later step (while `halted` is carried
    on) keep the States they were given, except the metric accumulators, which take the
    step in, so the logs say NaN. The flag stays on the device; the loop reads it when it
    reads the epoch's logs anyway, so a run without NaNs waits for nothing.
    """

    def step(states: States, batch: Batch, class_weight: Any, halted: Any) -> tuple[Any, States]:
        logs, updated = run(states, batch, class_weight)
        halted = jnp.logical_or(halted, jnp.logical_not(_finite(logs, updated)))
        return (logs, halted), _unless_halted(halted, updated, states)

    return step


def scanned_guarded(step: Callable[..., tuple[Any, States]]) -> Callable[..., tuple[Any, States]]:
    """`scanned` for a `guarded` step: the flag is carried from step to step with the
    States; returns `((stacked logs, halted), states)`."""

    def over_batches(states: States, batches: Batch, class_weight: Any, halted: Any) -> tuple[Any, States]:
        def one(carried: tuple[States, Any], batch: Batch) -> tuple[tuple[States, Any], Any]:
            (logs, flag), updated = step(carried[0], batch, class_weight, carried[1])
            return (updated, flag), logs

        (states, halted), logs = jax.lax.scan(one, (states, halted), batches)
        return (logs, halted), states

    return over_batches


def _finite(logs: Any, states: States) -> Any:
    """Whether a training step's loss (or every floating log) and new params are finite."""
    watched = [logs["loss"]] if "loss" in logs else list(logs.values())
    watched += jax.tree_util.tree_leaves(states.get("net_params"))
    checks = [jnp.all(jnp.isfinite(v)) for v in watched if jnp.issubdtype(jnp.result_type(v), jnp.inexact)]
    return jnp.all(jnp.stack(checks)) if checks else jnp.asarray(True)


def _unless_halted(halted: Any, updated: States, given: States) -> States:
    """`updated` if not `halted`, else `given` with `updated`'s metric accumulators."""
    fields = {}
    for name, value in updated.items():
        old = given.get(name)
        same = name != "metrics_states" and name in given
        if same and jax.tree_util.tree_structure(old) == jax.tree_util.tree_structure(value):  # type: ignore[operator]
            value = jax.tree_util.tree_map(lambda o, n: jnp.where(halted, o, n), old, value)
        fields[name] = value
    return States(fields)

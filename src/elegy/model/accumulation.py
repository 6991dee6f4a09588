"""Exact gradient accumulation: K batches make one optimizer update, kept in `States.accumulated`.

    gradients <- gradients + n_b * g_b,  rows <- rows + n_b         after every batch b
    update with gradients / rows, then start again from zero        after the K-th batch
                                                                     and after an epoch's last

`g_b` is the gradient of batch b's loss, a mean over its `n_b` real rows (the padded rows
of a partial batch are masked out, `elegy.weighting`). `gradients / rows` is then the
gradient of the mean loss over every real row of the group: what one batch holding them
all gives, to float rounding. `optax.MultiSteps` instead averages the K gradients with
equal weights, so a partial batch of 3 rows counts as much as a full one of 64.

The optimizer runs once per update, so its step count (and a schedule on it) advances
once per K batches. Everything else of a step happens on every batch: its logs, the
running metrics, and the network's state (BatchNorm statistics are those of each batch,
not of the group). A group left partial when an epoch ends is applied then (`fit` calls
`flushed`); `train_on_batch` keeps accumulating across calls. The sums are States, so
`BackupAndRestore` resumes inside a group and `save` keeps them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from elegy.arguments import check_int
from elegy.states import States

FIELD = "accumulated"

Update = Callable[[Any, States], States]  # (gradients, states) -> states after one optimizer step


def checked_steps(steps: Any) -> int:
    """`gradient_accumulation_steps`: an integer >= 1 (1: every batch updates)."""
    return check_int(steps, "gradient_accumulation_steps", 1)


def empty(params: Any) -> dict[str, Any]:
    """Sums with nothing in them yet, shaped like `params` (fixed dtypes, so the step
    that fills them compiles once)."""
    return {
        "gradients": jax.tree_util.tree_map(jnp.zeros_like, params),
        "rows": jnp.zeros((), jnp.float32),
        "batches": jnp.zeros((), jnp.int32),
    }


def real_rows(mask: Any, x: Any) -> Any:
    """How many real rows the batch has: its mask's count, or all of them without one."""
    if mask is not None:
        return jnp.sum(jnp.asarray(mask, jnp.float32))
    leaves = jax.tree_util.tree_leaves(x)
    return jnp.asarray(leaves[0].shape[0] if leaves else 1, jnp.float32)


def accumulated(
    states: States, gradients: Any, rows: Any, steps: int, update: Update, finite: Any = True
) -> States:
    """`states` after one batch: its gradient added to the sums, and on the `steps`-th
    batch of the group the update with their mean (by `update`), the sums emptied.

    A batch whose gradients are not `finite` (under float16 loss scaling) counts as one of
    the group but adds nothing to the sums; a group with no rows in them updates nothing.
    """
    pending = states.get(FIELD)
    if pending is None:
        raise ValueError(
            "gradient accumulation: states.accumulated is missing; the States were not "
            "initialized by a model with gradient_accumulation_steps > 1"
        )
    pending = {
        "gradients": jax.tree_util.tree_map(
            lambda total, g: jnp.where(finite, total + rows * g.astype(total.dtype), total),
            pending["gradients"],
            gradients,
        ),
        "rows": pending["rows"] + jnp.where(finite, rows, 0.0),
        "batches": pending["batches"] + 1,
    }
    result: States = jax.lax.cond(
        pending["batches"] >= steps,
        lambda s: _applied(s, pending, update),
        lambda s: s.update(**{FIELD: pending}),
        states,
    )
    return result


def flushed(states: States, update: Update, halted: Any = False) -> States:
    """`states` with a partial group applied (nothing happens when the sums are empty, or
    when training was `halted` by a non-finite step)."""
    pending = states.get(FIELD)
    if pending is None:
        return states
    ready = jnp.logical_and(pending["batches"] > 0, jnp.logical_not(halted))
    result: States = jax.lax.cond(ready, lambda s: _applied(s, pending, update), lambda s: s, states)
    return result


def _applied(states: States, pending: dict[str, Any], update: Update) -> States:
    """`states` updated with the mean of the sums (when they hold any rows), emptied."""
    emptied = {FIELD: jax.tree_util.tree_map(jnp.zeros_like, pending)}

    def updating(s: States) -> States:
        rows = pending["rows"]
        mean = jax.tree_util.tree_map(lambda total: total / rows.astype(total.dtype), pending["gradients"])
        return update(mean, s).update(**emptied)

    result: States = jax.lax.cond(pending["rows"] > 0, updating, lambda s: s.update(**emptied), states)
    return result

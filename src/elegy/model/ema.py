"""An exponential moving average of the params, kept in `States.ema_params`.

    ema_params <- decay * ema_params + (1 - decay) * net_params     after every update

It starts equal to the initial params and has no bias correction: the choice Keras's
`use_ema` makes (optax's `ema(debias=True)` divides by `1 - decay**t` instead; with an
average initialised to the params rather than to zeros there is no bias towards zero to
correct). Evaluation and prediction read the average in place of the params when the
model asks for it (`Model(ema_decay=..., evaluate_with_ema=True)`): the States a step
sees have the two swapped, and are swapped back before they are kept, so a custom
`pred_step` that reads `states.net_params` predicts with the average as well.

Applied by the entry points around whatever `train_step` the model has, inside the
compiled step: one fused multiply-add over the params per update.
"""

from __future__ import annotations

from typing import Any

import jax

from elegy.arguments import check_fraction
from elegy.states import States

FIELD = "ema_params"


def checked_decay(decay: Any) -> float | None:
    """`ema_decay`: None (no average) or a float strictly between 0 and 1."""
    if decay is None:
        return None
    return check_fraction(decay, "ema_decay")


def started(states: States) -> States:
    """The States of a newly initialized model, with an average equal to its params."""
    params = states.get("net_params")
    if params is None:
        return states
    return states.update(**{FIELD: jax.tree_util.tree_map(lambda p: p, params)})


def averaged(states: States, decay: float) -> States:
    """`states` after a training step, with the average moved towards the new params."""
    average, params = states.get(FIELD), states.get("net_params")
    if average is None or params is None:
        return states
    moved = jax.tree_util.tree_map(lambda a, p: decay * a + (1 - decay) * p.astype(a.dtype), average, params)
    return states.update(**{FIELD: moved})


def swapped(states: States) -> States:
    """`states` with the average and the params exchanged (its own inverse)."""
    average = states.get(FIELD)
    if average is None:
        return states
    return states.update(**{FIELD: states.get("net_params"), "net_params": average})

"""The model summary: one row per Haiku module, as Keras users and Haiku users read it.

The rows come from `hk.experimental.eval_summary`, which traces the network abstractly
(`jax.eval_shape`: no FLOPs, no memory for activations) and records every module method
call with its output shape and the module's parameters and state. The totals come from
the model's own States when it is built, so they are the numbers that get trained and
saved; before that, from an abstract initialization. Nothing here changes the States.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Iterable
from typing import Any

import haiku as hk
import jax
import numpy as np

from elegy import hooks
from elegy.module import PureModule

HEADERS = ("Module", "Output", "Params", "Param bytes", "States")


@dataclasses.dataclass(frozen=True)
class Row:
    """One module: its depth in the call tree, output, and what it owns (children included)."""

    name: str
    depth: int
    output: str
    params: int
    param_bytes: int
    states: int


def summary_table(module: PureModule, x: Any, depth: int, net_params: Any, net_states: Any) -> str:
    """The table for `module` applied to `x`, nested up to `depth`.

    The trace runs in training mode, as initialization does: some modules create their
    state only then (BatchNorm's averages). It is abstract, so nothing is updated.

    `net_params`/`net_states` (possibly None) are the model's own; when None, an abstract
    initialization supplies the totals.
    """
    # The network runs here outside any step: values it reports with `elegy.add_loss` or
    # `add_metric` are collected and dropped, as predict does.
    with hooks.collecting():
        invocations = _invocations(module, x)
        if net_params is None:
            key = jax.random.PRNGKey(0)
            net_params, net_states = jax.eval_shape(lambda x: module.init(key, x, True), x)
    rows = [row for row in _rows(invocations) if row.depth <= depth]
    return _render(rows, net_params, net_states, depth)


def _invocations(module: PureModule, x: Any) -> list[hk.experimental.MethodInvocation]:
    if module.forward is not None:
        # Our own transform: fix the flag as a Python bool, so `if training:` works.
        traced = functools.partial(module.forward, **module.flag(True))
        return list(hk.experimental.eval_summary(traced)(x))
    return list(hk.experimental.eval_summary(module.transformed)(x, **module.flag(True)))


def _rows(invocations: Iterable[hk.experimental.MethodInvocation]) -> list[Row]:
    """The first call of each module (a module called twice owns its parameters once)."""
    rows: dict[str, Row] = {}
    for call in invocations:
        details = call.module_details
        owner: hk.Module = details.module
        name = owner.module_name
        if name in rows:
            continue
        rows[name] = Row(
            name=name,
            depth=len(call.call_stack),
            output=", ".join(str(leaf) for leaf in jax.tree_util.tree_leaves(call.output_spec)) or "-",
            params=_count(details.params),
            param_bytes=_bytes(details.params),
            states=_count(details.state),
        )
    return list(rows.values())


def _count(tree: Any) -> int:
    return sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(tree))


def _bytes(tree: Any) -> int:
    leaves = jax.tree_util.tree_leaves(tree)
    return sum(math.prod(leaf.shape) * np.dtype(leaf.dtype).itemsize for leaf in leaves)


def _cells(row: Row) -> tuple[str, ...]:
    indented = "  " * (row.depth - 1) + row.name
    return (indented, row.output, f"{row.params:,}", human_bytes(row.param_bytes), f"{row.states:,}")


def _render(rows: list[Row], net_params: Any, net_states: Any, depth: int) -> str:
    table = [HEADERS, *map(_cells, rows)]
    widths = [max(len(cells[column]) for cells in table) for column in range(len(HEADERS))]

    def line(cells: tuple[str, ...]) -> str:
        # Names and outputs read left to right; numbers line up on their last digit.
        pairs = enumerate(zip(cells, widths, strict=True))
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in pairs).rstrip()

    rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
    params_bytes, states_bytes = _bytes(net_params), _bytes(net_states)
    totals = [
        f"Total params: {_count(net_params):,} ({human_bytes(params_bytes)})",
        f"Total states (non-trainable): {_count(net_states):,} ({human_bytes(states_bytes)})",
        f"Total bytes: {human_bytes(params_bytes + states_bytes)}",
        f"(modules nested up to depth {depth}; each row counts its submodules too)",
    ]
    return "\n".join([rule, line(HEADERS), rule, *map(line, table[1:]), rule, *totals])


def human_bytes(count: int) -> str:
    """`1536` -> `'1.5 KiB'`: binary units, as memory is sized."""
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    value, unit = float(count), 0
    while value >= 1024 and unit < len(units) - 1:
        value, unit = value / 1024, unit + 1
    return f"{count} B" if unit == 0 else f"{value:.1f} {units[unit]}"

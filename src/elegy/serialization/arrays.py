"""States on disk: every array through Orbax, read back into a structure the reader supplies.

Each field of States (`net_params`, `optimizer_states`, ...) is its own Orbax checkpoint,
`states/<field>`, so a model that has not built a field yet (a predict-only model has no
optimizer state) can still read the others. The manifest records every leaf's path, shape
and dtype: a reader compares them with its own States before Orbax runs, and reports the
paths that differ instead of failing deep inside a restore. Nothing here unpickles: the
structure to restore into always comes from the reader.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from elegy.serialization.store import SavedVersion

STATES_FOLDER = "states"
_LOAD_NETWORK_ONLY = (
    "\nThe network's own fields match; only the optimizer or metric state differs. To load the "
    "network alone, build the model with model.init(x) (no optimizer or metric state yet) and "
    "call load_weights before fit."
)
_SHOWN_MISMATCHES = 8


def leaf_specs(tree: Any) -> list[dict[str, Any]]:
    """Path, shape and dtype of every leaf, in flattening order (JSON-ready)."""
    return [
        {"path": jax.tree_util.keystr(path), "shape": list(np.shape(leaf)), "dtype": _dtype_name(leaf)}
        for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]
    ]


def abstract(tree: Any) -> Any:
    """Shapes and dtypes only, with no device or sharding: valid in any process."""
    # jax leaves ShapeDtypeStruct's constructor unannotated
    return jax.tree_util.tree_map(
        lambda leaf: jax.ShapeDtypeStruct(np.shape(leaf), _dtype(leaf)),  # type: ignore[no-untyped-call]
        tree,
    )


def write_states(folder: Path, states: Mapping[str, Any]) -> dict[str, Any]:
    """Write each field of `states` that holds arrays; return the manifest's record of them."""
    ocp, checkpointer = _orbax(), _checkpointer()
    fields = {}
    for name, value in states.items():
        leaves = leaf_specs(value)
        fields[name] = leaves
        if leaves:
            checkpointer.save(folder / STATES_FOLDER / name, args=ocp.args.StandardSave({"value": value}))
    return {"states": fields}


def read_states(version: SavedVersion, template: Mapping[str, Any], what: str) -> dict[str, Any]:
    """The saved value of every field of `template`, restored into the template's structure.

    A template field that is None (not built yet) is skipped. Raises a ValueError listing
    the first paths whose presence, shape or dtype differ, before anything is read.
    """
    saved: dict[str, list[dict[str, Any]]] = version.manifest["states"]
    wanted = {name: value for name, value in template.items() if value is not None}
    problems = [f"{_path(name, '')}: not in the save" for name in wanted if name not in saved]
    for name, value in sorted(wanted.items(), key=_network_first):
        if name in saved:
            problems += _mismatches(name, saved[name], leaf_specs(value))
    if problems:
        network_matches = not any(problem.startswith("['net_") for problem in problems)
        hint = _LOAD_NETWORK_ONLY if network_matches and what == "load_weights" else ""
        raise ValueError(f"{what}: the saved States do not match this model's {_listing(problems)}{hint}")
    ocp, checkpointer = _orbax(), _checkpointer()
    restored = {}
    for name, value in wanted.items():
        if not saved[name]:  # nothing stored: no arrays, only structure, which is the template's
            restored[name] = value
            continue
        target = {"value": jax.tree_util.tree_map(_target, value)}
        folder = version.directory / STATES_FOLDER / name
        arrays = checkpointer.restore(folder, args=ocp.args.StandardRestore(target))["value"]
        restored[name] = jax.tree_util.tree_map(_committed_like, arrays, value)
    return restored


def _committed_like(restored: Any, template: Any) -> Any:
    """`restored` committed to its device only where the template's leaf was.

    Orbax returns arrays committed to a device; the arrays a model makes on one device are
    not. jit treats the two as different input signatures, so a resumed `fit` compiled its
    steps again (three times). Laid-out leaves (a distribution's) stay committed.
    """
    if getattr(template, "committed", False) or jnp.issubdtype(restored.dtype, jax.dtypes.extended):
        return restored
    return jax.device_put(np.asarray(restored))


def read_plain(version: SavedVersion, field: str) -> Any:
    """A field saved from plain dicts, lists and tuples of arrays, read without a template
    (Orbax rebuilds such containers from its own metadata; tuples come back as lists)."""
    if not version.manifest["states"].get(field):
        return {}
    return _checkpointer().restore(version.directory / STATES_FOLDER / field)["value"]


def _mismatches(field: str, saved: list[dict[str, Any]], wanted: list[dict[str, Any]]) -> list[str]:
    saved_by_path = {leaf["path"]: leaf for leaf in saved}
    wanted_by_path = {leaf["path"]: leaf for leaf in wanted}
    problems = []
    for path, leaf in wanted_by_path.items():
        other = saved_by_path.get(path)
        where = _path(field, path)
        if other is None:
            problems.append(f"{where}: in this model, not in the save")
        elif (other["shape"], other["dtype"]) != (leaf["shape"], leaf["dtype"]):
            problems.append(f"{where}: saved {_describe(other)}, this model has {_describe(leaf)}")
    only_saved = [path for path in saved_by_path if path not in wanted_by_path]
    return problems + [f"{_path(field, path)}: in the save, not in this model" for path in only_saved]


def _network_first(field: tuple[str, Any]) -> tuple[bool, str]:
    """Differences in the network's own fields are the telling ones: list them first."""
    return (not field[0].startswith("net_"), field[0])


def _listing(problems: list[str]) -> str:
    shown = "".join(f"\n  {problem}" for problem in problems[:_SHOWN_MISMATCHES])
    hidden = len(problems) - _SHOWN_MISMATCHES
    return f"({len(problems)} difference(s)):{shown}" + (f"\n  ... and {hidden} more" if hidden > 0 else "")


def _path(field: str, path: str) -> str:
    return f"[{field!r}]{path}"


def _describe(leaf: dict[str, Any]) -> str:
    return f"{leaf['dtype']}{leaf['shape']}"


def _target(leaf: Any) -> Any:
    """What Orbax restores into: the leaf's own sharding when it has one (a live model,
    distributed or not), else this process's default device. Never the saving process's
    layout: a save from 4 devices loads where there is one."""
    sharding = getattr(leaf, "sharding", None) or jax.sharding.SingleDeviceSharding(jax.devices()[0])
    return jax.ShapeDtypeStruct(np.shape(leaf), _dtype(leaf), sharding=sharding)  # type: ignore[no-untyped-call]


def _dtype(leaf: Any) -> np.dtype:
    return np.dtype(getattr(leaf, "dtype", None) or np.result_type(leaf))


def _dtype_name(leaf: Any) -> str:
    return _dtype(leaf).name


def _checkpointer() -> Any:
    """A synchronous Orbax checkpointer: it returns when the files are written."""
    ocp = _orbax()
    return ocp.Checkpointer(ocp.StandardCheckpointHandler())


def _orbax() -> Any:
    """Orbax, imported on first use: it takes a second to import and only saving needs it."""
    import orbax.checkpoint as ocp

    return ocp

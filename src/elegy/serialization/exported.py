"""Serving: the prediction function as StableHLO, readable with jax and numpy alone.

`model.export(path)` writes three files into the folder `path`:

    predict.jaxexport   `jax.export.Exported.serialize()` of `f(weights, x) -> y_pred`,
                        `weights` a list of arrays, `x` shaped as `predict` takes it with
                        a symbolic batch dimension
    weights.npz         those arrays as `numpy.savez` writes a list: arr_0, arr_1, ...
    manifest.json       the format, and a sha256 of each of the two files

A serving process needs neither Elegy, Haiku nor the training code, and nothing is
unpickled:

    exp = jax.export.deserialize(open(p + "/predict.jaxexport", "rb").read())
    w = np.load(p + "/weights.npz", allow_pickle=False)
    y = exp.call([w[f"arr_{i}"] for i in range(len(w.files))], x)

`elegy.load_exported(path)` does the same after checking the hashes. The function is the
model's own `pred_step` on the evaluation stream, as `predict` runs it, traced with
the batch size as a symbol: one program for every batch size.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from elegy.data.batches import Batch
from elegy.serialization.store import InvalidSaveError, check_files, file_sha256, fsync_tree
from elegy.states import States

PROGRAM, WEIGHTS, MANIFEST = "predict.jaxexport", "weights.npz", "manifest.json"
FORMAT, FORMAT_VERSION = "elegy-export", 1
BATCH_SYMBOL = "batch"
# What predicting reads of the States; optimizer moments and metric accumulators stay out
# (and the moving average, once swapped in for the params where the model evaluates with it).
_NOT_EXPORTED = ("optimizer_states", "metrics_states")


def export_model(model: Any, path: str | os.PathLike[str], platforms: Sequence[str] | None = None) -> Path:
    """Write the export of the built `model` to the folder `path` (see the module's
    docstring); returns that folder. A previous export there is replaced as a whole; a
    folder holding anything else is an error, never overwritten.

    Examples:
        >>> import os, tempfile
        >>> import elegy, haiku as hk, numpy as np
        >>> from elegy.serialization import export_model
        >>> model = elegy.Model(lambda x: hk.Linear(2)(x))
        >>> x = np.ones((4, 3), np.float32)
        >>> _ = model.init(x)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     served = export_model(model, os.path.join(folder, "served"))
        ...     files = sorted(os.listdir(served))
        >>> files
        ['manifest.json', 'predict.jaxexport', 'weights.npz']
    """
    if model.input_spec is None or not model.built:
        raise ValueError(
            "export: the model has not been built; call fit, predict or init(x) first, so that "
            "its params and its input shapes are known"
        )
    target = Path(path).absolute()
    _check_target(target)
    states = _serving_states(model)
    weights, treedef = jax.tree_util.tree_flatten(states)
    weights = [np.asarray(w) for w in jax.device_get(weights)]
    predict = _prediction_function(model, treedef)
    exported = jax.export.export(jax.jit(predict), platforms=None if platforms is None else tuple(platforms))(
        [_spec(w.shape, w.dtype) for w in weights], _symbolic_batch(model.input_spec)
    )

    staging = target.with_name(f".tmp-{target.name}-{uuid.uuid4().hex}")
    staging.mkdir(parents=True)
    try:
        (staging / PROGRAM).write_bytes(exported.serialize())
        np.savez(staging / WEIGHTS, *weights)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "platforms": list(exported.platforms),
            "files": {name: file_sha256(staging / name) for name in (PROGRAM, WEIGHTS)},
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1))
        fsync_tree(staging)
        _swap_in(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def load_exported(path: str | os.PathLike[str]) -> Callable[[Any], Any]:
    """The prediction function of the export at `path`, as `f(x) -> y_pred` (numpy),
    after checking every file against the manifest's hashes: a changed or damaged file
    is an `InvalidSaveError` naming it.

    Examples:
        The same predictions for a batch size the model never saw:

        >>> import os, tempfile
        >>> import elegy, haiku as hk, numpy as np
        >>> model = elegy.Model(lambda x: hk.Linear(2)(x))
        >>> _ = model.init(np.ones((4, 3), np.float32))
        >>> x = np.arange(15, dtype=np.float32).reshape(5, 3)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     serve = elegy.load_exported(model.export(os.path.join(folder, "served")))
        >>> np.allclose(serve(x), model.predict(x, verbose=0), atol=1e-6)
        True
    """
    folder = Path(path)
    manifest = _read_manifest(folder)
    check_files(folder, manifest["files"])
    exported = jax.export.deserialize(bytearray((folder / PROGRAM).read_bytes()))
    with np.load(folder / WEIGHTS, allow_pickle=False) as stored:
        weights = [stored[f"arr_{i}"] for i in range(len(stored.files))]

    def predict(x: Any) -> Any:
        return jax.device_get(exported.call(weights, x))  # type: ignore[no-untyped-call]

    return predict


def _serving_states(model: Any) -> States:
    """The States a prediction reads: without optimizer and metric states, and with the
    EMA weights in place of the params when the model keeps them."""
    from elegy.model import ema  # (the model package imports this one)

    states: States = model.states
    if model.ema_decay is not None and model.evaluate_with_ema:
        states = ema.swapped(states)
    left_out = (*_NOT_EXPORTED, ema.FIELD)
    return States({name: value for name, value in states.items() if name not in left_out})


def _prediction_function(model: Any, treedef: Any) -> Callable[[list[Any], Any], Any]:
    from elegy.model.entry_points import CompiledSteps  # (the model package imports this one)

    steps = CompiledSteps(_Serving(model))  # type: ignore[arg-type]  # its own: the model's trace records stay as they are

    def predict(weights: list[Any], x: Any) -> Any:
        rows = jax.tree_util.tree_leaves(x)[0].shape[0]
        batch = Batch(x, None, None, jnp.ones((rows,), bool))  # type: ignore[arg-type]
        y_pred, _ = steps.body("pred", treedef.unflatten(weights), batch, None)
        return y_pred

    return predict


class _Serving:
    """The model as the exported program runs it: on one device, compiled, its steps
    its own."""

    run_eagerly, distribution, _buffers = False, None, None
    ema_decay, evaluate_with_ema = None, False  # (the exported weights are already the average)

    def __init__(self, model: Any):
        self.call_step = model.call_step


def _symbolic_batch(spec: Any) -> Any:
    (batch,) = jax.export.symbolic_shape(BATCH_SYMBOL)
    return jax.tree_util.tree_map(lambda leaf: _spec((batch, *leaf.shape[1:]), leaf.dtype), spec)


def _spec(shape: Any, dtype: Any) -> Any:
    return jax.ShapeDtypeStruct(shape, dtype)  # type: ignore[no-untyped-call]


def _check_target(target: Path) -> None:
    if target.exists() and not target.is_dir():
        raise ValueError(f"export: path {target} is a file; expected a folder (new, or a previous export)")
    if target.is_dir() and any(target.iterdir()) and not (target / MANIFEST).is_file():
        raise ValueError(
            f"export: path {target} is a folder that holds other files; export into a new "
            "folder (or one a previous export wrote), so that nothing else is replaced"
        )
    if (target / MANIFEST).is_file():
        _read_manifest(target)  # a folder with some other manifest is not replaced either


def _swap_in(staging: Path, target: Path) -> None:
    """`staging` becomes `target`; a previous export there is removed only afterwards."""
    if not target.exists():
        os.rename(staging, target)
        return
    retired = target.with_name(f".tmp-{target.name}-old-{uuid.uuid4().hex}")
    os.rename(target, retired)
    os.rename(staging, target)
    shutil.rmtree(retired, ignore_errors=True)


def _read_manifest(folder: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError:
        raise InvalidSaveError(f"{folder}: no {MANIFEST}; not an Elegy export") from None
    except ValueError as error:
        raise InvalidSaveError(
            f"{folder / MANIFEST}: not valid JSON ({error}); the export is damaged"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InvalidSaveError(f"{folder}: {MANIFEST} is not an Elegy export's manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise InvalidSaveError(
            f"{folder}: export format version {manifest.get('format_version')!r}; this Elegy "
            f"reads version {FORMAT_VERSION}"
        )
    if set(manifest.get("files") or ()) != {PROGRAM, WEIGHTS}:
        raise InvalidSaveError(f"{folder}: {MANIFEST} does not list {PROGRAM} and {WEIGHTS}")
    return manifest

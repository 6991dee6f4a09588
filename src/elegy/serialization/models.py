"""`model.save` / `elegy.load` (the whole model) and `save_weights` / `load_weights` (States).

A full save holds two things: the States as arrays (Orbax, read without executing
anything) and the model definition (the Python object, without its arrays) pickled with
cloudpickle. Unpickling runs code, so only `elegy.load` reads that file, and only
`load_weights` is safe on a save from an untrusted source.
"""

from __future__ import annotations

import copy
import functools
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import jax

from elegy.distributed import is_primary_process
from elegy.serialization.arrays import abstract, read_states, write_states
from elegy.serialization.store import InvalidSaveError, SavedVersion, read_consistently, write_version
from elegy.states import States, snapshot
from elegy.version import __version__

DEFINITION = "model.pkl"
MODEL, WEIGHTS = "model", "weights"


@runtime_checkable
class SavableModel(Protocol):
    """What saving and loading use of a model, and nothing more: `elegy.ModelBase` is one.

    * `states`: read to save; assigned (checked and placed by the model) to load.
    * `built`: whether the States have a structure to load into.
    * `history`: left out of a pickled definition (it refers back to the model).

    A full save pickles a shallow copy of the model whose `states` are only shapes and
    dtypes; the model's own pickling (`__getstate__`) leaves out what belongs to the
    process (compiled functions, devices).
    """

    states: States
    history: Any

    @property
    def built(self) -> bool: ...


def save_model(model: SavableModel, path: str | os.PathLike[str]) -> Path:
    """Write `model` (definition and States) as the new current version at `path`.

    `model.save(path)` calls it. Returns the folder of the version written.

    Examples:
        >>> import os, tempfile
        >>> import elegy, haiku as hk, numpy as np
        >>> from elegy.serialization import save_model
        >>> model = elegy.Model(lambda x: hk.Linear(2)(x))
        >>> _ = model.init(np.ones((1, 3), np.float32))
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     version = save_model(model, folder)
        ...     files = sorted(os.listdir(folder)), sorted(os.listdir(version))
        ...     restored = elegy.load(folder)
        >>> files
        (['LATEST', 'v000001'], ['manifest.json', 'model.pkl', 'states'])
        >>> np.array_equal(restored.states.net_params["linear"]["w"], model.states.net_params["linear"]["w"])
        True
    """
    return capture(model)(path)


def save_weights(model: SavableModel, path: str | os.PathLike[str]) -> Path:
    """Write only the States of `model` as the new current version at `path`.

    `model.save_weights(path)` calls it. There is no model definition to unpickle, so
    reading the save back with `load_weights` never runs code. Returns the folder of the
    version written.

    Examples:
        Saving again to the same path writes a new version and then removes the old one:

        >>> import os, tempfile
        >>> import elegy, haiku as hk, numpy as np
        >>> from elegy.serialization import save_weights
        >>> model = elegy.Model(lambda x: hk.Linear(2)(x))
        >>> _ = model.init(np.ones((1, 3), np.float32))
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     first = save_weights(model, folder)
        ...     second = save_weights(model, folder)
        ...     files = sorted(os.listdir(folder)), sorted(os.listdir(second))
        >>> first.name, files
        ('v000001', (['LATEST', 'v000002'], ['manifest.json', 'states']))
    """
    return capture(model, weights_only=True)(path)


def capture(model: SavableModel, weights_only: bool = False) -> Callable[[str | os.PathLike[str]], Path]:
    """Take the model as it is now; return a function that writes that to a path, later.

    States are immutable, so holding them is a snapshot: checkpoint callbacks write the
    capture on a worker thread while training replaces `model.states`.
    """
    states = snapshot(model.states)  # training goes on, reusing the model's own buffers
    definition = None if weights_only else _definition(model, abstract(states))
    # One process: pickled on the writing thread, off the training one. Several: here, in
    # every process, so that a model that cannot be pickled fails in all of them before
    # the save's first barrier (rather than in process 0 alone, leaving the others waiting).
    pickled = _pickled(definition) if definition is not None and jax.process_count() > 1 else None

    def write(folder: Path) -> dict[str, Any]:
        recorded = write_states(folder, states)
        if definition is not None and is_primary_process():
            (folder / DEFINITION).write_bytes(pickled or _pickled(definition))
        return {**recorded, "elegy_version": __version__}

    kind = WEIGHTS if weights_only else MODEL
    return lambda path: write_version(path, kind, write)


def load(path: str | os.PathLike[str]) -> Any:
    """Rebuild a model saved with `model.save(path)`: its definition and its States.

    The result predicts exactly as the saved model did and continues training as it
    would have (same optimizer state, rng and epoch counter).

    Warning:
        The model definition is a pickle, and unpickling runs code: load only saves that
        come from a source you trust. `model.load_weights(path)` reads the arrays alone
        and never unpickles. The module that defines the network (the forward function's
        module) must be importable where the save is loaded, as cloudpickle stores
        importable functions by reference.

    Examples:
        >>> import elegy, haiku as hk, numpy as np, tempfile
        >>> model = elegy.Model(lambda x: hk.Linear(2)(x))
        >>> y = model.predict(np.ones((3, 4), np.float32), verbose=0)
        >>> folder = tempfile.mkdtemp()
        >>> _ = model.save(folder)
        >>> bool((elegy.load(folder).predict(np.ones((3, 4), np.float32), verbose=0) == y).all())
        True
    """
    return read_consistently(path, functools.partial(_load_version, path=path))


def _load_version(version: SavedVersion, path: str | os.PathLike[str]) -> SavableModel:
    if version.kind != MODEL:
        raise InvalidSaveError(
            f"path: {str(path)!r} holds only weights (written by save_weights); build the model "
            "and call model.load_weights(path) instead"
        )
    model = _unpickle_definition(version.directory / DEFINITION)
    template = model.states  # the abstract States stored with the definition
    restored = read_states(version, template, what="load")
    model.states = template.update(**restored)
    return model


def load_weights(model: SavableModel, path: str | os.PathLike[str]) -> None:
    """Replace the States of `model` with those saved at `path`, after checking they fit.

    `model.load_weights(path)` calls it. The model must be built (`init`, or any call that
    saw data); saves by `save_weights` and by `save` are both read.

    Examples:
        Parameters overwritten after a save come back from it:

        >>> import tempfile
        >>> import elegy, haiku as hk, jax, numpy as np
        >>> from elegy.serialization import load_weights, save_weights
        >>> model = elegy.Model(lambda x: hk.Linear(2)(x))
        >>> _ = model.init(np.ones((1, 3), np.float32))
        >>> saved = np.asarray(model.states.net_params["linear"]["w"])
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     _ = save_weights(model, folder)
        ...     zeros = jax.tree_util.tree_map(np.zeros_like, model.states.net_params)
        ...     model.states = model.states.update(net_params=zeros)
        ...     load_weights(model, folder)
        >>> np.array_equal(model.states.net_params["linear"]["w"], saved), float(np.abs(saved).sum()) > 0
        (True, True)
    """
    if not model.built:
        raise ValueError(
            "load_weights: the model is not initialized yet, so there is no structure to load "
            "into; call model.init(x, y) (or predict/fit) first, or use elegy.load(path) for a "
            "full save"
        )
    current = model.states
    version, restored = read_consistently(
        path, lambda version: (version, read_states(version, current, what="load_weights"))
    )
    skipped = [n for n, leaves in version.manifest["states"].items() if leaves and current.get(n) is None]
    if skipped:
        warnings.warn(
            f"load_weights: the saved {', '.join(skipped)} were not loaded because this model has "
            "not built them yet; call model.init(x, y) before load_weights to load them too",
            stacklevel=3,
        )
    model.states = current.update(**restored)


def _definition(model: SavableModel, abstract_states: States) -> SavableModel:
    """The model without its arrays: the States are replaced by their shapes and dtypes,
    and the History (which refers back to the model) is left out. A shallow copy, taken
    in microseconds: pickling it (tens of milliseconds) can wait for the writing thread."""
    definition = copy.copy(model)  # copy goes through __getstate__: no compiled functions
    definition.states = abstract_states
    definition.history = None
    return definition


def _pickled(definition: SavableModel) -> bytes:
    import cloudpickle

    try:
        pickled: bytes = cloudpickle.dumps(definition)
        return pickled
    except Exception as error:
        raise TypeError(
            f"save: the model definition cannot be pickled ({error}); something the model holds "
            "(a lock, an open file, a generator) cannot be stored. save_weights (or "
            "ModelCheckpoint(save_weights_only=True)) stores the States alone"
        ) from error


def _unpickle_definition(file: Path) -> SavableModel:
    import pickle

    model = pickle.loads(file.read_bytes())
    if not isinstance(model, SavableModel):
        raise InvalidSaveError(f"{file}: holds a {type(model).__name__}, not an Elegy model")
    return model

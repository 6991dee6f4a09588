"""`ModelBase`: the public face of a model, its loops and saving as methods.

What a model is made of lives in modules of their own: its States and their
initialization (`elegy.model.core`), the loops (`elegy.model.loops`, here as methods),
the compiled entry points (`elegy.model.entry_points`) and the execution plan
(`elegy.model.execution`). A subclass provides the four steps.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from elegy import serialization
from elegy.model import loops
from elegy.model.core import ModelCore


class ModelBase(ModelCore):
    """A model: its States, the loops over them and saving, around four overridable steps.

    Subclasses provide `pred_step`, `test_step`, `grad_step` and `train_step`
    (`elegy.Model` gives defaults for all four).

    Examples:
        A model with no Haiku module and no optimizer: `predict` needs only `pred_step`,
        which creates its parameters on the first batch and reads them afterwards.

        >>> import elegy, numpy as np
        >>> class Affine(elegy.ModelBase):
        ...     def pred_step(self, x, states, initializing):
        ...         params = {"a": 2.0, "b": 1.0} if initializing else states.net_params
        ...         return params["a"] * x + params["b"], states.update(net_params=params)
        >>> model = Affine()
        >>> model.predict(np.arange(3, dtype=np.float32), batch_size=2, verbose=0).tolist()
        [1.0, 3.0, 5.0]
        >>> model.built, float(model.states.net_params["a"])
        (True, 2.0)
    """

    # The loops, as methods: each is a function of the model (see `elegy.model.loops`).
    fit = loops.fit
    evaluate = loops.evaluate
    predict = loops.predict
    train_on_batch = loops.train_on_batch
    test_on_batch = loops.test_on_batch
    predict_on_batch = loops.predict_on_batch

    # ------------------------------------------------------------------ saving
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save the whole model to the directory `path`; `elegy.load(path)` restores it.

        The States go to Orbax array files, the model definition to a cloudpickle file.
        Saving is atomic: until it returns, `path` still holds the previous save, intact.
        Returns the folder of the version written.
        """
        return serialization.save_model(self, path)

    def save_weights(self, path: str | os.PathLike[str]) -> Path:
        """Save only the States (params, net and optimizer states, metrics, rng, epoch).

        Reading them back with `load_weights` never runs code from the files.
        """
        return serialization.save_weights(self, path)

    def load_weights(self, path: str | os.PathLike[str]) -> None:
        """Replace the States with those saved at `path` by `save_weights` or `save`.

        The model must be built (`init`, or any call that saw data). Every saved leaf must
        match this model's in path, shape and dtype; otherwise a ValueError lists the first
        differences and the States are left unchanged. Fields this model has not built yet
        (the optimizer state of a predict-only model) are skipped with a warning.
        """
        serialization.load_weights(self, path)

    def export(self, path: str | os.PathLike[str], platforms: Sequence[str] | None = None) -> Path:
        """Write the prediction function for serving to the folder `path`: StableHLO with a
        symbolic batch dimension and its weights as a plain `.npz`, read back with jax and
        numpy alone (no Elegy, Haiku or pickle; see `elegy.serialization.exported` and
        docs/saving.md) or with `elegy.load_exported(path)`. `platforms` (e.g.
        `("cpu", "cuda")`) defaults to the current backend. Returns the folder.
        """
        return serialization.export_model(self, path, platforms)

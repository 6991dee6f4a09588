"""Saving and loading models and their States (see `docs/saving.md`).

`model.save(path)` and `elegy.load(path)` move a whole model; `model.save_weights(path)` and
`model.load_weights(path)` move only its States and never run code from the save.
"""

from elegy.serialization.exported import export_model, load_exported
from elegy.serialization.models import load, load_weights, save_model, save_weights
from elegy.serialization.store import InvalidSaveError

__all__ = [
    "InvalidSaveError",
    "export_model",
    "load",
    "load_exported",
    "load_weights",
    "save_model",
    "save_weights",
]

"""Elegy: a Keras-like training framework for JAX whose networks are Haiku modules."""

from elegy import callbacks, compilation_cache, data, distributed, losses, metrics, regularizers, utils
from elegy.hooks import add_loss, add_metric
from elegy.model import GradStep, Model, ModelBase, PredStep, TestStep, TrainStep
from elegy.model.retrace import RetraceWarning
from elegy.serialization import load, load_exported
from elegy.states import RNGSeq, States
from elegy.version import __version__ as __version__

compilation_cache.enable_by_default()

__all__ = [
    "GradStep",
    "Model",
    "ModelBase",
    "PredStep",
    "RNGSeq",
    "RetraceWarning",
    "States",
    "TestStep",
    "TrainStep",
    "add_loss",
    "add_metric",
    "callbacks",
    "data",
    "distributed",
    "load",
    "load_exported",
    "losses",
    "metrics",
    "regularizers",
    "utils",
]

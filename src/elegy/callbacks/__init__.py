"""Callbacks: hooks into the loops of fit, evaluate and predict."""

from elegy.callbacks.backup import BackupAndRestore
from elegy.callbacks.callback import Callback, CallbackList
from elegy.callbacks.checkpoint import ModelCheckpoint
from elegy.callbacks.history import History
from elegy.callbacks.learning_rate import LearningRateScheduler, ReduceLROnPlateau
from elegy.callbacks.logs import Logs
from elegy.callbacks.progbar import ProgbarLogger
from elegy.callbacks.standard import CSVLogger, EarlyStopping, LambdaCallback, TerminateOnNaN
from elegy.callbacks.tensorboard import TensorBoard

__all__ = [
    "BackupAndRestore",
    "CSVLogger",
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "History",
    "LambdaCallback",
    "LearningRateScheduler",
    "Logs",
    "ModelCheckpoint",
    "ProgbarLogger",
    "ReduceLROnPlateau",
    "TensorBoard",
    "TerminateOnNaN",
]

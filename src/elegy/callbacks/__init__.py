"""Callbacks: hooks into the loops of fit, evaluate and predict.

Pass a list of them as `callbacks=[...]`; `fit` adds a `History` (which it returns) and,
with `verbose`, a `ProgbarLogger`.

Examples:
    >>> import elegy, haiku as hk, numpy as np, optax
    >>> x = np.linspace(-1, 1, 8, dtype=np.float32).reshape(8, 1)
    >>> model = elegy.Model(lambda v: hk.Linear(1)(v), loss="mse", optimizer=optax.sgd(0.1))
    >>> losses = []
    >>> keep = elegy.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: losses.append(logs["loss"]))
    >>> history = model.fit(x, 2 * x, epochs=2, verbose=0, callbacks=[keep, elegy.callbacks.TerminateOnNaN()])
    >>> history.epoch, losses == history.history["loss"]
    ([0, 1], True)
"""

from elegy.callbacks.backup import BackupAndRestore
from elegy.callbacks.callback import Callback, CallbackList, ResumePoint
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
    "ResumePoint",
    "TensorBoard",
    "TerminateOnNaN",
]

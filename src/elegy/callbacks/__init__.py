"""Callbacks: hooks into the loops of fit, evaluate and predict."""

from elegy.callbacks.callback import Callback, CallbackList
from elegy.callbacks.history import History
from elegy.callbacks.logs import Logs
from elegy.callbacks.progbar import ProgbarLogger

__all__ = ["Callback", "CallbackList", "History", "Logs", "ProgbarLogger"]

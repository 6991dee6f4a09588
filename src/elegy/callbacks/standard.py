"""Small standard callbacks: EarlyStopping, TerminateOnNaN, CSVLogger, LambdaCallback."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable, Mapping
from typing import Any, TextIO, cast

import numpy as np

from elegy.arguments import check_verbose
from elegy.callbacks.callback import Callback
from elegy.callbacks.monitoring import monitored, resolve_mode
from elegy.states import snapshot


class EarlyStopping(Callback):
    """Stop `fit` when `monitor` has stopped improving, as Keras's EarlyStopping does.

    An epoch improves on the best value so far when it is better by more than
    `min_delta`. After `patience` epochs without improvement (counted from
    `start_from_epoch`) training stops; with `baseline`, improvements that do not beat it
    do not reset the count. `mode` is `"min"`, `"max"` or `"auto"` (max for accuracy-like
    names). With `restore_best_weights`, stopping puts back the network parameters and
    state (`net_params`, `net_states`) of the best epoch. `verbose=1` prints Keras's
    messages: the epoch it stopped after, and the epoch whose weights it restores.

    Examples:
        The epoch hook on a made-up validation curve, as `fit` would call it: epochs 2 and
        3 do not beat epoch 1's 0.4, so with `patience=2` training stops after epoch 3.

        >>> import types
        >>> from elegy.callbacks import EarlyStopping
        >>> model = types.SimpleNamespace(stop_training=False)  # stands in for the model fit trains
        >>> stopping = EarlyStopping(monitor="val_loss", patience=2)
        >>> stopping.set_model(model)
        >>> stopping.on_train_begin()
        >>> for epoch, val_loss in enumerate([0.5, 0.4, 0.45, 0.42, 0.3]):
        ...     stopping.on_epoch_end(epoch, {"val_loss": val_loss})
        ...     if model.stop_training:
        ...         break
        >>> stopping.stopped_epoch, stopping.best_epoch, stopping.best
        (3, 1, 0.4)
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
        verbose: int = 0,
    ):
        super().__init__()
        mode = resolve_mode(mode, monitor)
        self.verbose = check_verbose(verbose)
        self.monitor, self.patience, self.baseline = monitor, patience, baseline
        self.min_delta = abs(min_delta) if mode == "max" else -abs(min_delta)
        self.better = np.greater if mode == "max" else np.less
        self.restore_best_weights, self.start_from_epoch = restore_best_weights, start_from_epoch

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        self.wait, self.stopped_epoch, self.best_epoch = 0, 0, 0
        self.best = math.inf if self.better is np.less else -math.inf
        self.best_weights: tuple[Any, ...] | None = None

    def _improves(self, value: float, reference: float) -> bool:
        return bool(self.better(value - self.min_delta, reference))

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        current = monitored(logs, self.monitor, "EarlyStopping", self.params.get("validation", False))
        if current is None:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self._weights()
        if epoch < self.start_from_epoch:
            return
        self.wait += 1
        if self._improves(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self._weights()
            # As in Keras, only an improvement that also beats the baseline restarts the count.
            if self.baseline is None or self._improves(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.restore_best_weights and self.best_weights is not None:
                if self.verbose:
                    print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
                net_params, net_states = self.best_weights
                self.model.states = self.model.states.update(net_params=net_params, net_states=net_states)

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        if self.stopped_epoch > 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")

    def _weights(self) -> Any:
        states = self.model.states
        return snapshot((states.net_params, states.net_states))  # outlives the next step

    def get_state(self) -> dict[str, Any]:
        counters = {"wait": self.wait, "stopped_epoch": self.stopped_epoch, "best_epoch": self.best_epoch}
        return {**counters, "best": float(self.best), "best_weights": self.best_weights}

    def set_state(self, state: dict[str, Any]) -> None:
        self.wait, self.stopped_epoch = state["wait"], state["stopped_epoch"]
        self.best_epoch, self.best = state["best_epoch"], state["best"]
        weights = state.get("best_weights")
        self.best_weights = None if weights is None else tuple(weights)


class TerminateOnNaN(Callback):
    """Stop `fit` after an epoch whose loss is NaN or infinite.

    The built-in `loss` log is a running mean over the epoch, so one bad batch makes the
    epoch's value NaN: checking once per epoch, on logs that are fetched anyway, catches it
    without making every batch wait for the device. The NaN epoch ends normally (its
    `on_epoch_end` callbacks run), then training stops.

    Examples:
        >>> import types
        >>> from elegy.callbacks import TerminateOnNaN
        >>> model = types.SimpleNamespace(stop_training=False)  # stands in for the model fit trains
        >>> terminate = TerminateOnNaN()
        >>> terminate.set_model(model)
        >>> terminate.on_epoch_end(0, {"loss": 0.5})
        >>> model.stop_training
        False
        >>> terminate.on_epoch_end(1, {"loss": float("nan")})
        >>> model.stop_training
        True
    """

    def __init__(self, monitor: str = "loss"):
        super().__init__()
        self.monitor = monitor

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is not None and not np.all(np.isfinite(value)):
            self.model.stop_training = True


class CSVLogger(Callback):
    """Append one row per epoch (`epoch` and every log, columns sorted) to a CSV file.

    The file is written anew by each `fit` unless `append=True`, and flushed after every
    row.

    Examples:
        The hooks called as `fit` calls them, then the file read back:

        >>> import csv, os, tempfile
        >>> from elegy.callbacks import CSVLogger
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = os.path.join(folder, "training.csv")
        ...     logger = CSVLogger(path)
        ...     logger.on_train_begin()
        ...     for epoch, loss in enumerate([0.5, 0.25]):
        ...         logger.on_epoch_end(epoch, {"val_loss": loss + 0.25, "loss": loss})
        ...     logger.on_train_end()
        ...     with open(path, newline="") as file:
        ...         rows = list(csv.reader(file))
        >>> rows
        [['epoch', 'loss', 'val_loss'], ['0', '0.5', '0.75'], ['1', '0.25', '0.5']]
    """

    def __init__(self, filename: str | os.PathLike[str], separator: str = ",", append: bool = False):
        super().__init__()
        self.filename, self.separator, self.append = os.fspath(filename), separator, append
        self._file: TextIO | None = None
        self._writer: csv.DictWriter[str] | None = None
        self._resume_at: int | None = None  # set by set_state: where a resumed run continues
        self._resumed_keys: list[str] = []

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        self._resume_at = None
        self._file, self._writer = None, None

    def _open(self, keys: list[str]) -> None:
        """Opened at the first row, so that a resumed run can first say where to continue."""
        os.makedirs(os.path.dirname(os.path.abspath(self.filename)), exist_ok=True)
        resuming = self._resume_at is not None
        keep = resuming or (
            self.append and os.path.exists(self.filename) and os.path.getsize(self.filename) > 0
        )
        self._file = open(self.filename, "a" if keep else "w", newline="")
        if resuming:  # drop rows written after the backup, by the interrupted run
            self._file.truncate(self._resume_at)
        self._keys = keys
        self._writer = csv.DictWriter(self._file, ["epoch", *self._keys], delimiter=self.separator)
        if not keep:
            self._writer.writeheader()

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        logs = dict(logs or {})
        if self._writer is None:
            self._open(self._resumed_keys if self._resume_at is not None else sorted(logs))
        # `_open` has just set both if they were None.
        writer, file = cast("csv.DictWriter[str]", self._writer), cast(TextIO, self._file)
        writer.writerow({"epoch": epoch, **{k: logs.get(k, "NA") for k in self._keys}})
        file.flush()

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        if self._file is not None:
            self._file.close()
        self._file, self._writer = None, None

    def get_state(self) -> dict[str, Any]:
        if self._file is not None:
            return {"bytes": self._file.tell(), "keys": list(self._keys)}
        if self._resume_at is not None:  # resumed, and not written to yet
            return {"bytes": self._resume_at, "keys": list(self._resumed_keys)}
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        self._resume_at, self._resumed_keys = state["bytes"], list(state["keys"])


class LambdaCallback(Callback):
    """A callback from plain functions: `LambdaCallback(on_epoch_end=lambda epoch, logs: ...)`.

    Any hook of `Callback` may be given by keyword; the others do nothing.

    Examples:
        >>> from elegy.callbacks import LambdaCallback
        >>> seen = []
        >>> callback = LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append((epoch, logs["loss"])))
        >>> callback.on_epoch_end(0, {"loss": 0.5})  # what fit calls after the first epoch
        >>> callback.on_epoch_begin(1)  # not given: does nothing
        >>> seen
        [(0, 0.5)]
        >>> LambdaCallback(on_epoch_finish=print)
        Traceback (most recent call last):
        ...
        TypeError: LambdaCallback: unknown hook 'on_epoch_finish'
    """

    def __init__(self, **hooks: Callable[..., Any]):
        super().__init__()
        for name, fn in hooks.items():
            if not name.startswith("on_") or not hasattr(Callback, name):
                raise TypeError(f"LambdaCallback: unknown hook {name!r}")
            setattr(self, name, fn)

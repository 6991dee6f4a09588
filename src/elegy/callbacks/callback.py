"""The `Callback` hook set of Keras and the `CallbackList` that dispatches it in order."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from elegy.distributed import is_primary_process

LogsT = Mapping[str, Any] | None


@dataclasses.dataclass(frozen=True)
class ResumePoint:
    """Where an interrupted `fit` continues, as a callback tells it (`Callback.resume_point`).

    Attributes:
        epoch: the epoch to continue in.
        batch: the batch of that epoch to continue at; the batches before it are drawn
            and dropped, and the epoch's running metrics are those the States hold.
        epoch_counter: the States' epoch counter when `epoch` began (it seeds shuffling);
            None: whatever the States hold.
        restore: called with the model's States once the model is initialized (at once
            if it already is, else right after `fit` builds it on its first batch, before
            any callback sees a batch); returns the States to continue from.

    Examples:
        A callback that makes `fit` skip its first epoch and the first batch of the next:

        >>> import elegy, haiku as hk, numpy as np, optax
        >>> class SkipAhead(elegy.callbacks.Callback):
        ...     def resume_point(self):
        ...         return elegy.callbacks.ResumePoint(epoch=1, batch=1)
        >>> seen = []
        >>> record = elegy.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(b))
        >>> model = elegy.Model(lambda x: hk.Linear(1)(x), loss="mse", optimizer=optax.sgd(0.1))
        >>> x = np.ones((6, 2), np.float32)
        >>> callbacks = [SkipAhead(), record]
        >>> history = model.fit(x, x[:, :1], batch_size=2, epochs=2, verbose=0, callbacks=callbacks)
        >>> history.epoch, seen
        ([1], [1, 2])
    """

    epoch: int
    batch: int = 0
    epoch_counter: int | None = None
    restore: Callable[[Any], Any] | None = None


class Callback:
    """Base class for objects that react to the events of fit, evaluate and predict.

    Every hook receives `logs`, a mapping of log names to floats. `self.model` is the
    model being trained; setting `self.model.stop_training = True` ends `fit` after the
    current epoch. `self.params` holds `epochs`, `steps` and `verbose`.

    A callback that keeps state across epochs (a best value, a patience counter) returns
    it from `get_state` and takes it back in `set_state`, so that `BackupAndRestore` can
    resume an interrupted `fit` as if nothing had happened. Values are JSON numbers,
    strings, lists and dicts, or pytrees of arrays in plain dicts, lists and tuples (which
    come back as dicts and lists). `set_state` is called after `on_train_begin`.

    Examples:
        A callback that counts the training batches of each epoch (5 rows in batches of 2
        make 3 batches):

        >>> import elegy, haiku as hk, numpy as np, optax
        >>> class CountBatches(elegy.callbacks.Callback):
        ...     def on_train_begin(self, logs=None):
        ...         self.counts = []
        ...     def on_epoch_begin(self, epoch, logs=None):
        ...         self.counts.append(0)
        ...     def on_train_batch_end(self, batch, logs=None):
        ...         self.counts[-1] += 1
        >>> model = elegy.Model(lambda x: hk.Linear(1)(x), loss="mse", optimizer=optax.sgd(0.1))
        >>> x = np.ones((5, 2), np.float32)
        >>> counter = CountBatches()
        >>> _ = model.fit(x, x[:, :1], batch_size=2, epochs=2, verbose=0, callbacks=[counter])
        >>> counter.counts, counter.model is model
        ([3, 3], True)
    """

    runs_last = False  # CallbackList moves callbacks that set this after all others
    # Callbacks that write for people (progress bar, TensorBoard): in a multi-process run
    # only process 0 runs them, so each line and each event is written once.
    first_process_only = False

    def __init__(self) -> None:
        self.model: Any = None
        self.params: dict[str, Any] = {}

    def set_model(self, model: Any) -> None:
        self.model = model

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params

    def get_state(self) -> dict[str, Any]:
        """What a resumed `fit` needs to continue this callback; stateless by default."""
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        """Take back what `get_state` returned (in an earlier, interrupted process)."""

    def resume_point(self) -> ResumePoint | None:
        """Where `fit` should continue, asked once, right after `on_train_begin`; None (the
        default) lets `fit` start at its `initial_epoch`. See `ResumePoint`."""
        return None

    def on_train_begin(self, logs: LogsT = None) -> None: ...
    def on_train_end(self, logs: LogsT = None) -> None: ...
    def on_epoch_begin(self, epoch: int, logs: LogsT = None) -> None: ...
    def on_epoch_end(self, epoch: int, logs: LogsT = None) -> None: ...
    def on_train_batch_begin(self, batch: int, logs: LogsT = None) -> None:
        self.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch: int, logs: LogsT = None) -> None:
        self.on_batch_end(batch, logs)

    def on_batch_begin(self, batch: int, logs: LogsT = None) -> None:
        """Keras's older name: called by the default `on_train_batch_begin`."""

    def on_batch_end(self, batch: int, logs: LogsT = None) -> None:
        """Keras's older name: called by the default `on_train_batch_end`."""

    def on_test_begin(self, logs: LogsT = None) -> None: ...
    def on_test_end(self, logs: LogsT = None) -> None: ...
    def on_test_batch_begin(self, batch: int, logs: LogsT = None) -> None: ...
    def on_test_batch_end(self, batch: int, logs: LogsT = None) -> None: ...
    def on_predict_begin(self, logs: LogsT = None) -> None: ...
    def on_predict_end(self, logs: LogsT = None) -> None: ...
    def on_predict_batch_begin(self, batch: int, logs: LogsT = None) -> None: ...
    def on_predict_batch_end(self, batch: int, logs: LogsT = None) -> None: ...


class CallbackList(Callback):
    """Calls each hook on every callback, in the order given, except that callbacks with
    `runs_last` (BackupAndRestore) come after all others: a backup taken at the end of an
    epoch holds what every other callback did in that epoch.

    Keyword arguments become every callback's `params`. Hooks given no `logs` pass `{}`.

    Examples:
        >>> from elegy.callbacks import CallbackList, History, LambdaCallback
        >>> history = History()
        >>> show = LambdaCallback(on_epoch_end=lambda epoch, logs: print("epoch", epoch, dict(logs)))
        >>> callbacks = CallbackList([show, history], epochs=2)
        >>> callbacks.on_epoch_end(0, {"loss": 0.5})
        epoch 0 {'loss': 0.5}
        >>> callbacks.on_epoch_end(1)
        epoch 1 {}
        >>> history.epoch, history.history, history.params
        ([0, 1], {'loss': [0.5]}, {'epochs': 2})
    """

    def __init__(self, callbacks: Iterable[Callback] | None = None, model: Any = None, **params: Any):
        super().__init__()
        callbacks = list(callbacks or [])
        for callback in callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(
                    f"callbacks must be elegy.callbacks.Callback instances, got {type(callback).__name__}"
                )
        if not is_primary_process():
            callbacks = [callback for callback in callbacks if not callback.first_process_only]
        self.callbacks: list[Callback] = sorted(callbacks, key=lambda callback: callback.runs_last)
        for callback in self.callbacks:
            if hasattr(callback, "set_callbacks"):
                callback.set_callbacks(self.callbacks)
        if model is not None:
            self.set_model(model)
        self.set_params(params)

    def set_model(self, model: Any) -> None:
        super().set_model(model)
        for callback in self.callbacks:
            callback.set_model(model)

    def set_params(self, params: dict[str, Any]) -> None:
        super().set_params(params)
        for callback in self.callbacks:
            callback.set_params(params)

    # Every hook gets `logs` (an empty dict if none), as Keras passes them, so a callback
    # may take `logs` as a required positional parameter.
    def on_train_begin(self, logs: LogsT = None) -> None:
        for callback in self.callbacks:
            callback.on_train_begin(_given(logs))

    def on_train_end(self, logs: LogsT = None) -> None:
        self._call_every("on_train_end", logs)

    def on_epoch_begin(self, epoch: int, logs: LogsT = None) -> None:
        for callback in self.callbacks:
            callback.on_epoch_begin(epoch, _given(logs))

    def on_epoch_end(self, epoch: int, logs: LogsT = None) -> None:
        for callback in self.callbacks:
            callback.on_epoch_end(epoch, _given(logs))

    def on_train_batch_begin(self, batch: int, logs: LogsT = None) -> None:
        for callback in self.callbacks:
            callback.on_train_batch_begin(batch, _given(logs))

    def on_train_batch_end(self, batch: int, logs: LogsT = None) -> None:
        for callback in self.callbacks:
            callback.on_train_batch_end(batch, _given(logs))

    def on_test_begin(self, logs: LogsT = None) -> None:
        for callback in self.callbacks:
            callback.on_test_begin(_given(logs))

    def on_test_end(self, logs: LogsT = None) -> None:
        self._call_every("on_test_end", logs)

    def on_test_batch_begin(self, batch: int, logs: LogsT = None) -> None:
        for callback in self.callbacks:
            callback.on_test_batch_begin(batch, _given(logs))

    def on_test_batch_end(self, batch: int, logs: LogsT = None) -> None:
        for callback in self.callbacks:
            callback.on_test_batch_end(batch, _given(logs))

    def on_predict_begin(self, logs: LogsT = None) -> None:
        for callback in self.callbacks:
            callback.on_predict_begin(_given(logs))

    def on_predict_end(self, logs: LogsT = None) -> None:
        self._call_every("on_predict_end", logs)

    def on_predict_batch_begin(self, batch: int, logs: LogsT = None) -> None:
        for callback in self.callbacks:
            callback.on_predict_batch_begin(batch, _given(logs))

    def on_predict_batch_end(self, batch: int, logs: LogsT = None) -> None:
        for callback in self.callbacks:
            callback.on_predict_batch_end(batch, _given(logs))

    def _call_every(self, hook: str, logs: LogsT) -> None:
        """An `on_*_end` hook: every callback gets to close its files, whatever the others
        raise. One error is raised as it is; several together, as an ExceptionGroup."""
        errors: list[Exception] = []
        for callback in self.callbacks:
            try:
                getattr(callback, hook)(_given(logs))
            except Exception as error:
                errors.append(error)
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise ExceptionGroup(f"{len(errors)} callbacks failed in {hook}", errors)

    def resume_point(self) -> ResumePoint | None:
        """Where `fit` continues: the first resume point a callback gives, or None."""
        for callback in self.callbacks:
            point = callback.resume_point()
            if point is not None:
                return point
        return None


def _given(logs: LogsT) -> Mapping[str, Any]:
    return {} if logs is None else logs

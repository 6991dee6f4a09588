"""Changing the learning rate between epochs: LearningRateScheduler and ReduceLROnPlateau.

Both work on optimizers built with `optax.inject_hyperparams`, whose state holds the
learning rate as an array: the callbacks write a new value into `States.optimizer_states`,
keeping its dtype and weak type so that the compiled step is reused, not retraced.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from elegy.arguments import check_verbose
from elegy.callbacks.callback import Callback, LogsT
from elegy.callbacks.monitoring import monitored, resolve_mode
from elegy.learning_rates import get_learning_rate, set_learning_rate


class _LearningRateCallback(Callback):
    def _get(self) -> float:
        try:
            return get_learning_rate(self.model.states.optimizer_states)
        except ValueError as error:
            raise ValueError(f"{type(self).__name__} {error}") from None

    def _set(self, value: float) -> None:
        states = self.model.states
        self.model.states = states.update(optimizer_states=set_learning_rate(states.optimizer_states, value))

    def on_train_batch_end(self, batch: int, logs: LogsT = None) -> None:
        if batch == 0:  # the rate the epoch's first step used (one fetch per epoch)
            self._epoch_rate = (logs or {}).get("learning_rate")

    def on_epoch_end(self, epoch: int, logs: LogsT = None) -> None:
        """A rate that moved during the epoch comes from a schedule, which overrides ours."""
        logged = (logs or {}).get("learning_rate")
        start = getattr(self, "_epoch_rate", None)
        if logged is not None and start is not None and not math.isclose(logged, start, rel_tol=1e-5):
            raise ValueError(
                f"{type(self).__name__}: the learning rate moved from {start} to {logged} within an "
                "epoch, so the optimizer follows a schedule that overrides the rate this callback "
                "sets. Pass a constant learning_rate to optax.inject_hyperparams"
            )


class LearningRateScheduler(_LearningRateCallback):
    """Set the learning rate at the start of each epoch to `schedule(epoch, current_lr)`.

    The optimizer must be built with `optax.inject_hyperparams` and a constant
    `learning_rate`; the default `train_step` then logs the rate it used as `learning_rate`.
    `verbose=1` prints Keras's message for each rate set.

    Examples:
        Halve the rate after the first epoch:

        >>> import elegy, haiku as hk, numpy as np, optax
        >>> model = elegy.Model(
        ...     lambda x: hk.Linear(1)(x),
        ...     loss="mse",
        ...     optimizer=optax.inject_hyperparams(optax.sgd)(learning_rate=0.1),
        ... )
        >>> halve = elegy.callbacks.LearningRateScheduler(lambda epoch, lr: lr if epoch == 0 else lr / 2)
        >>> x = np.ones((4, 2), np.float32)
        >>> history = model.fit(x, x[:, :1], epochs=3, verbose=0, callbacks=[halve])
        >>> [round(lr, 4) for lr in history.history["learning_rate"]]
        [0.1, 0.05, 0.025]
    """

    def __init__(self, schedule: Callable[[int, float], float], verbose: int = 0):
        super().__init__()
        self.schedule = schedule
        self.verbose = check_verbose(verbose)
        self._pending_epoch: int | None = None  # the epoch whose rate waits for the model to build

    def on_train_begin(self, logs: LogsT = None) -> None:
        self._applied_epoch: int | None = None

    def on_epoch_begin(self, epoch: int, logs: LogsT = None) -> None:
        if epoch == self._applied_epoch:  # resumed inside an epoch whose rate is already set
            return
        self._pending_epoch = epoch
        if self.model.states.optimizer_states is not None:
            self._apply()

    def on_train_batch_begin(self, batch: int, logs: LogsT = None) -> None:
        if getattr(self, "_pending_epoch", None) is not None:  # the model initialized on this batch
            self._apply()

    def _apply(self) -> None:
        epoch = self._pending_epoch
        assert epoch is not None  # (only called with an epoch pending)
        value = self.schedule(epoch, self._get())
        if not isinstance(value, (int, float, np.floating)) or not math.isfinite(value):
            raise ValueError(f"LearningRateScheduler: schedule returned {value!r}, expected a finite float")
        self._set(float(value))
        if self.verbose:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {float(value)}.")
        self._applied_epoch, self._pending_epoch = self._pending_epoch, None

    def get_state(self) -> dict[str, Any]:
        return {"applied_epoch": self._applied_epoch}

    def set_state(self, state: dict[str, Any]) -> None:
        self._applied_epoch = state["applied_epoch"]


class ReduceLROnPlateau(_LearningRateCallback):
    """Multiply the learning rate by `factor` when `monitor` stops improving.

    After `patience` epochs without an improvement larger than `min_delta`, the rate is
    reduced (never below `min_lr`), then `cooldown` epochs pass before counting again.
    Like `LearningRateScheduler`, it needs an `optax.inject_hyperparams` optimizer.
    `verbose=1` prints Keras's message at each reduction.

    Examples:
        The epoch hook on a made-up loss that stops improving after epoch 0, as `fit`
        would call it: with `patience=1` each of the next two epochs halves the rate.

        >>> import types
        >>> import elegy, jax.numpy as jnp, optax
        >>> optimizer = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)
        >>> states = elegy.States(optimizer_states=optimizer.init({"w": jnp.zeros(2)}))
        >>> model = types.SimpleNamespace(states=states)  # stands in for the model fit trains
        >>> reduce = elegy.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1)
        >>> reduce.set_model(model)
        >>> reduce.on_train_begin()
        >>> for epoch, loss in enumerate([1.0, 1.0, 1.0]):
        ...     reduce.on_epoch_end(epoch, {"loss": loss})
        >>> round(float(model.states.optimizer_states.hyperparams["learning_rate"]), 4)
        0.025
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
        verbose: int = 0,
    ):
        super().__init__()
        self.verbose = check_verbose(verbose)
        if not 0 < factor < 1:
            raise ValueError(f"factor must be in (0, 1), got {factor!r}")
        mode = resolve_mode(mode, monitor)
        self.monitor, self.factor, self.patience = monitor, factor, patience
        self.min_delta, self.cooldown, self.min_lr, self.mode = min_delta, cooldown, min_lr, mode

    def on_train_begin(self, logs: LogsT = None) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait, self.cooldown_left = 0, 0

    def on_epoch_end(self, epoch: int, logs: LogsT = None) -> None:
        super().on_epoch_end(epoch, logs)
        current = monitored(logs, self.monitor, "ReduceLROnPlateau", self.params.get("validation", False))
        if current is None:
            return
        improved = (
            current < self.best - self.min_delta
            if self.mode == "min"
            else current > self.best + self.min_delta
        )
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.wait = 0
        if improved:
            self.best, self.wait = current, 0
        elif self.cooldown_left == 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = self._get()
                if old > self.min_lr:
                    new = max(old * self.factor, self.min_lr)
                    self._set(new)
                    if self.verbose:
                        print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new}.")
                self.cooldown_left, self.wait = self.cooldown, 0

    def get_state(self) -> dict[str, Any]:
        return {"best": float(self.best), "wait": self.wait, "cooldown_left": self.cooldown_left}

    def set_state(self, state: dict[str, Any]) -> None:
        self.best, self.wait, self.cooldown_left = state["best"], state["wait"], state["cooldown_left"]

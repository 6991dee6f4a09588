"""BackupAndRestore: an interrupted `fit` resumes where it stopped, as if never interrupted.

A backup is one save folder (the `model.save` format, kind `backup`) holding

* the complete States: parameters, network and optimizer states, the running metric
  accumulators of an unfinished epoch, the rng and the epoch counter that seeds shuffling;
* the position: the epoch, and the batch within it where training continues;
* every other callback's `get_state()` (History included, so a resumed `fit` returns
  the History of every epoch; EarlyStopping's best value and patience count; ...);
* the group sizes `steps_per_execution="auto"` chose, which the resumed run keeps.

Re-running the same script with the same callbacks then replays nothing and skips
nothing: the resumed run computes bit for bit what the uninterrupted run would have.
Keras restarts the interrupted epoch from its beginning; this resumes inside it.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import jax
import numpy as np

from elegy.arguments import check_frequency
from elegy.callbacks.callback import Callback, LogsT, ResumePoint
from elegy.serialization.arrays import read_plain, read_states, write_states
from elegy.serialization.background import BackgroundWriter
from elegy.serialization.store import POINTER, InvalidSaveError, read_version, remove_save, write_version
from elegy.states import States, snapshot

BACKUP = "backup"
CALLBACK_ARRAYS = "callback_arrays"


class BackupAndRestore(Callback):
    """Back up the training run to `backup_dir`; resume from it when `fit` starts again.

    Args:
        backup_dir: the backup's folder, used only by this callback (and replaced by each
            backup, atomically: a crash while writing leaves the previous backup intact).
        save_freq: `"epoch"` backs up at the end of every epoch; an integer `N` also
            every `N` batches (counted across epochs), so at most `N` batches are lost.
        delete_checkpoint: delete the backup when `fit` finishes (not when it is
            interrupted), so the next `fit` starts afresh.

    The resumed `fit` must be given the same data, callbacks and model definition. The
    backup is taken after every other callback has handled the epoch (wherever this one
    sits in the list). Resuming inside an epoch skips its finished batches by drawing and
    dropping them; for arrays that is exact, and so is it for any iterable that yields the
    same batches when iterated again.

    Examples:
        >>> import elegy, haiku as hk, numpy as np, optax, tempfile
        >>> x = np.ones((8, 2), np.float32)
        >>> model = elegy.Model(lambda x: hk.Linear(1)(x), loss="mse", optimizer=optax.sgd(0.1))
        >>> backup = elegy.callbacks.BackupAndRestore(tempfile.mkdtemp(), save_freq=1)
        >>> history = model.fit(x, x[:, :1], batch_size=4, epochs=2, verbose=0, callbacks=[backup])
        >>> len(history.history["loss"])
        2
    """

    runs_last = True

    def __init__(
        self,
        backup_dir: str | os.PathLike[str],
        save_freq: str | int = "epoch",
        delete_checkpoint: bool = True,
    ):
        super().__init__()
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = check_frequency(save_freq, "save_freq")
        self.delete_checkpoint = delete_checkpoint
        self._others: list[Callback] = []
        self._writer = BackgroundWriter()
        self._pending_backup: tuple[int, int] | None = None
        self._epoch, self._batches_seen, self._completed = 0, 0, False
        self._resume: ResumePoint | None = None

    def set_callbacks(self, callbacks: list[Callback]) -> None:
        """Called by CallbackList: the callbacks whose state goes into the backup."""
        self._others = [callback for callback in callbacks if callback is not self]

    # ------------------------------------------------------------------ restore
    def on_train_begin(self, logs: LogsT = None) -> None:
        self._batches_seen, self._completed = 0, False
        self._pending_backup, self._resume = None, None
        if not os.path.exists(os.path.join(self.backup_dir, POINTER)):
            return
        version = read_version(self.backup_dir)
        if version.kind != BACKUP:
            raise InvalidSaveError(
                f"backup_dir: {self.backup_dir!r} holds a {version.kind} save, not a backup; give "
                "BackupAndRestore a folder of its own"
            )
        self._check_same_data(version.manifest["data"])
        self._restore_callbacks(version)
        # The interrupted run's group sizes (steps_per_execution="auto"): resumed, the
        # run goes on with them instead of measuring again.
        self.model._adopt_group_choices(version.manifest.get("steps_per_execution", {}))
        epoch, batch = version.manifest["position"]
        self._batches_seen = version.manifest["batches_seen"]
        self._resume = ResumePoint(
            epoch=epoch,
            batch=batch,
            epoch_counter=version.manifest["epoch_counter"],
            restore=functools.partial(_restored_states, version),
        )

    def resume_point(self) -> ResumePoint | None:
        """The position of the backup `on_train_begin` found, with its States to restore."""
        point, self._resume = self._resume, None
        return point

    def on_train_batch_begin(self, batch: int, logs: LogsT = None) -> None:
        if self._pending_backup is not None:
            self._backup(*self._pending_backup)
            self._pending_backup = None

    def _data_description(self) -> dict[str, Any]:
        return {name: self.params.get(name) for name in ("batch_size", "steps")}

    def _check_same_data(self, saved: dict[str, Any]) -> None:
        """Resuming over other batches would train on data the position does not describe."""
        current = self._data_description()
        changed = [name for name in saved if saved[name] != current[name]]
        if changed:
            described = "; ".join(f"{name} was {saved[name]}, is {current[name]}" for name in changed)
            raise ValueError(
                f"BackupAndRestore: the backup in {self.backup_dir!r} was taken over other batches "
                f"({described}); resume with the same data, batch_size and steps_per_epoch, or "
                "delete the backup to start afresh"
            )

    def _restore_callbacks(self, version: Any) -> None:
        saved: dict[str, dict[str, Any]] = version.manifest["callbacks"]
        arrays = read_plain(version, CALLBACK_ARRAYS)
        keyed = dict(self._keyed())
        missing = sorted(set(saved) - set(keyed))
        if missing:
            raise ValueError(
                f"BackupAndRestore: the backup in {self.backup_dir!r} holds the state of "
                f"{', '.join(missing)}, which this fit does not have; resume with the same callbacks "
                f"(this fit has: {', '.join(sorted(keyed)) or 'none'})"
            )
        for key, state in saved.items():
            keyed[key].set_state({**state, **arrays.get(key, {})})

    # ------------------------------------------------------------------ back up
    def on_epoch_begin(self, epoch: int, logs: LogsT = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: LogsT = None) -> None:
        self._batches_seen += 1
        if isinstance(self.save_freq, int) and self._batches_seen % self.save_freq == 0:
            # Written when the next batch begins: if the epoch ends first, the epoch's
            # own backup (with its validation and callbacks' epoch-end work) replaces it.
            self._pending_backup = (self._epoch, batch + 1)

    def on_epoch_end(self, epoch: int, logs: LogsT = None) -> None:
        self._pending_backup = None
        last = epoch + 1 >= self.params.get("epochs", epoch + 1)
        self._completed = last or bool(self.model.stop_training)
        if not (self._completed and self.delete_checkpoint):
            self._backup(epoch + 1, 0)

    def on_train_end(self, logs: LogsT = None) -> None:
        self._writer.wait()
        finished = self._completed and self.delete_checkpoint
        if finished and os.path.exists(os.path.join(self.backup_dir, POINTER)):
            remove_save(self.backup_dir)

    def _backup(self, epoch: int, batch: int) -> None:
        states = snapshot(self.model.states)  # written while training reuses the model's buffers
        json_states, array_states = {}, {}
        for key, callback in self._keyed():
            state = callback.get_state()
            if state:
                json_states[key] = {k: _jsonable(v) for k, v in state.items() if not _holds_arrays(v)}
                array_states[key] = {k: v for k, v in state.items() if _holds_arrays(v)}
        record = {
            "position": [epoch, batch],
            "epoch_counter": int(states.get("epoch", 0)),
            "batches_seen": self._batches_seen,
            "data": self._data_description(),
            "callbacks": json_states,
            "steps_per_execution": self.model._group_choices(),
        }

        def write(folder: Path) -> dict[str, Any]:
            arrays = {key: value for key, value in array_states.items() if value}
            return {**write_states(folder, {**states, CALLBACK_ARRAYS: arrays}), **record}

        self._writer.submit(lambda: write_version(self.backup_dir, BACKUP, write))

    def _keyed(self) -> list[tuple[str, Callback]]:
        """Each other callback under a stable name: its class and its rank among its kind."""
        counts: dict[str, int] = {}
        keyed = []
        for callback in self._others:
            name = type(callback).__name__
            keyed.append((f"{name}_{counts.get(name, 0)}", callback))
            counts[name] = counts.get(name, 0) + 1
        return keyed


def _restored_states(version: Any, states: States) -> States:
    """`states` with every field the backup `version` holds read back into their structure."""
    return states.update(**read_states(version, states, what="BackupAndRestore"))


def _holds_arrays(value: Any) -> bool:
    return any(isinstance(leaf, (np.ndarray, jax.Array)) for leaf in jax.tree_util.tree_leaves(value))


def _jsonable(value: Any) -> Any:
    """Numbers as Python numbers; numpy scalars and arrays are not JSON."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value

"""ModelCheckpoint: save the model during `fit`, every epoch or every N batches.

Each checkpoint is a save folder (`model.save` / `model.save_weights` format): written
atomically, so a crash never leaves a half-written checkpoint where a complete one was,
and on a worker thread, so training does not wait for the disk. The write captures the
States of the moment it was asked for; `fit` returns only after the last write is on disk.
With `max_to_keep`, a checkpoint beyond the newest N is deleted only once the newer one is
complete on disk.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from elegy.arguments import check_frequency, check_int
from elegy.callbacks.callback import Callback, LogsT
from elegy.callbacks.monitoring import monitored, resolve_mode
from elegy.distributed import is_primary_process
from elegy.naming import is_validation_name
from elegy.serialization.background import BackgroundWriter
from elegy.serialization.models import capture
from elegy.serialization.store import remove_save


class ModelCheckpoint(Callback):
    """Save the model (or only its weights) as training goes, as Keras's ModelCheckpoint.

    Args:
        filepath: the save folder; may contain `{epoch}` (1-based, as in Keras), `{batch}`
            and any log name with a format, e.g. `"ckpt/{epoch:02d}-{val_loss:.3f}"`.
            Without placeholders, each checkpoint replaces the previous one.
        monitor: the log compared by `save_best_only`.
        save_best_only: save only when `monitor` improves on the best value so far.
        save_weights_only: write `save_weights` folders (no pickled code) instead of
            full `model.save` folders.
        mode: `"min"`, `"max"` or `"auto"` (max for accuracy-like names).
        save_freq: `"epoch"`, or an integer: save every that many training batches
            (counted across epochs), with that batch's logs.
        initial_value_threshold: the value `monitor` must beat for the first save.
        max_to_keep: keep only the newest N checkpoint folders this callback wrote
            (deleting older ones after each new save is on disk); with `save_best_only`,
            every save beats the ones before it, so these are the N best. None keeps all.
            The list survives a `BackupAndRestore` resume.
        verbose: 1 prints a line for each save.

    Examples:
        >>> import elegy, haiku as hk, numpy as np, optax, tempfile, os
        >>> model = elegy.Model(lambda x: hk.Linear(1)(x), loss="mse", optimizer=optax.sgd(0.1))
        >>> x = np.ones((8, 2), np.float32)
        >>> folder = tempfile.mkdtemp()
        >>> path = os.path.join(folder, "epoch{epoch}")
        >>> _ = model.fit(x, x[:, :1], epochs=2, verbose=0, callbacks=[elegy.callbacks.ModelCheckpoint(path)])
        >>> sorted(os.listdir(folder))
        ['epoch1', 'epoch2']

        Only the newest two of four:

        >>> newest = elegy.callbacks.ModelCheckpoint(os.path.join(folder, "keep{epoch}"), max_to_keep=2)
        >>> _ = model.fit(x, x[:, :1], epochs=4, verbose=0, callbacks=[newest])
        >>> sorted(name for name in os.listdir(folder) if name.startswith("keep"))
        ['keep3', 'keep4']
    """

    def __init__(
        self,
        filepath: str | os.PathLike[str],
        monitor: str = "val_loss",
        verbose: int = 0,
        save_best_only: bool = False,
        save_weights_only: bool = False,
        mode: str = "auto",
        save_freq: str | int = "epoch",
        initial_value_threshold: float | None = None,
        max_to_keep: int | None = None,
    ):
        super().__init__()
        self.max_to_keep = check_int(max_to_keep, "max_to_keep", allow_none=True)
        self.save_freq = check_frequency(save_freq, "save_freq")
        self.filepath = os.fspath(filepath)
        self.monitor, self.verbose = monitor, verbose
        self.save_best_only, self.save_weights_only = save_best_only, save_weights_only
        self.better = np.greater if resolve_mode(mode, monitor) == "max" else np.less
        unset = -math.inf if self.better is np.greater else math.inf
        self.best: float = unset if initial_value_threshold is None else initial_value_threshold
        self._writer = BackgroundWriter()
        self._batches_seen = 0
        self._epoch = 0
        self._kept: list[str] = []  # the checkpoints written, oldest first (with max_to_keep)

    def on_train_begin(self, logs: LogsT = None) -> None:
        self._batches_seen = 0
        if self.save_best_only and self.save_freq != "epoch" and is_validation_name(self.monitor):
            raise ValueError(
                f"ModelCheckpoint: save_best_only with save_freq={self.save_freq} compares batch logs, "
                f"which hold no validation values such as {self.monitor!r}; monitor a training log "
                "(e.g. monitor='loss') or use save_freq='epoch'"
            )

    def on_epoch_begin(self, epoch: int, logs: LogsT = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: LogsT = None) -> None:
        self._batches_seen += 1
        if isinstance(self.save_freq, int) and self._batches_seen % self.save_freq == 0:
            self._save(self._epoch, logs, batch=batch)

    def on_epoch_end(self, epoch: int, logs: LogsT = None) -> None:
        if self.save_freq == "epoch":
            self._save(epoch, logs)

    def on_train_end(self, logs: LogsT = None) -> None:
        self._writer.wait()  # fit returns with every checkpoint on disk, or raises

    def get_state(self) -> dict[str, Any]:
        # A backup must not record a best value whose checkpoint is not on disk yet.
        self._writer.wait()
        return {"best": float(self.best), "batches_seen": self._batches_seen, "kept": list(self._kept)}

    def set_state(self, state: dict[str, Any]) -> None:
        self.best, self._batches_seen = state["best"], state["batches_seen"]
        self._kept = list(state.get("kept", []))  # (backups written before max_to_keep)

    def _save(self, epoch: int, logs: Any, batch: int | None = None) -> None:
        if self.save_best_only and not self._improved(epoch, logs):
            return
        path = self._path(epoch, logs, batch)
        if self.verbose:
            print(f"\nEpoch {epoch + 1}: saving model to {path}")
        write = capture(self.model, self.save_weights_only)  # the States of this moment
        self._writer.submit(functools.partial(written_then_pruned, write, path, self._retired(path)))

    def _retired(self, path: str) -> list[str]:
        """Record `path` as the newest checkpoint; the ones `max_to_keep` leaves out."""
        if self.max_to_keep is None:
            return []
        self._kept = [kept for kept in self._kept if kept != path] + [path]
        retired, self._kept = self._kept[: -self.max_to_keep], self._kept[-self.max_to_keep :]
        return retired

    def _improved(self, epoch: int, logs: Any) -> bool:
        current = monitored(logs, self.monitor, "ModelCheckpoint", self.params.get("validation", False))
        if current is None or not self.better(current, self.best):
            if self.verbose and current is not None:
                print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {self.best:.5f}")
            return False
        if self.verbose:
            print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to {current:.5f}")
        self.best = float(current)
        return True

    def _path(self, epoch: int, logs: Any, batch: int | None) -> str:
        values = dict(logs or {})
        try:
            return self.filepath.format(epoch=epoch + 1, batch=batch, **values)
        except KeyError as missing:
            raise KeyError(
                f"ModelCheckpoint filepath {self.filepath!r} names {missing}, which is not in the "
                f"logs: {sorted(values)} (nor epoch or batch)"
            ) from None
        except (TypeError, ValueError) as error:  # e.g. {batch:03d} when saving per epoch
            raise ValueError(
                f"ModelCheckpoint filepath {self.filepath!r} cannot be formatted ({error}); "
                "{batch} has a value only with an integer save_freq"
            ) from None


def written_then_pruned(write: Callable[[str], Any], path: str, retired: list[str]) -> None:
    """Write the checkpoint, then (process 0, once it is complete on disk) delete the
    retired ones: a crash in between leaves one checkpoint too many, never one too few."""
    write(path)
    if is_primary_process():
        for old in retired:
            if os.path.isdir(old):
                remove_save(old)

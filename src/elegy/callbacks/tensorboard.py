"""`TensorBoard`: scalar curves (and optionally histograms) that TensorBoard opens.

Written with tensorboardX, so TensorFlow is not needed. Training and validation values go
to the run subfolders `train/` and `validation/` under the same tag (`epoch_loss`,
`epoch_accuracy`, ...), so TensorBoard draws both curves in one chart, as it does for
Keras.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import jax
import numpy as np

from elegy.arguments import check_frequency, check_int
from elegy.callbacks.callback import Callback
from elegy.callbacks.hparams import checked_hparams, model_hparams, session_end, session_start
from elegy.callbacks.logs import scalar_logs
from elegy.naming import VALIDATION_PREFIX, is_validation_name

if TYPE_CHECKING:
    from tensorboardX import SummaryWriter

TRAIN, VALIDATION = "train", "validation"
SESSION = ""  # the HParams session: `logdir` itself
# Batch points get a run of their own: their steps count batches, not epochs, and a resumed
# run marks, per run, the first step it writes again (TensorBoard's purge_step).
TRAIN_BATCHES = "train/batch"


class TensorBoard(Callback):
    """Write every scalar log to TensorBoard event files under `logdir`.

    Args:
        logdir: the directory TensorBoard is pointed at (`tensorboard --logdir runs`).
        update_freq: `"epoch"` writes one point per epoch (at step = epoch index); an
            integer `N` also writes `batch_<name>` every `N` batches (at step = the global
            batch count), in the run `train/batch`. Batch logs are fetched from the device
            only at those batches.
        histogram_freq: every that many epochs, a histogram of each parameter in
            `net_params` (0: never).
        write_hparams: write the model's configuration (module, losses, metrics,
            optimizer, seed) and fit's settings as a text summary, shown in TensorBoard's
            Text tab, and as the run's hyperparameters for the HParams dashboard.
        hparams: hyperparameters of your own (names to numbers, strings or booleans) for
            TensorBoard's HParams dashboard, which lists the run with them and its final
            metrics (`elegy.callbacks.hparams`); with `write_hparams`, added to the
            model's. Point TensorBoard at the folder above several runs' `logdir`s to
            compare them.
        write_summary: write `model.summary()` (the table of Haiku modules) as text after
            the first epoch, when the model has a Haiku module.
        profile_batch: a batch number `N` (counted from 1 across epochs) or a range
            `(first, last)` of batches to trace with `jax.profiler`; the trace goes to
            `logdir/train/plugins/profile`, where TensorBoard's Profile tab (the
            `tensorboard-plugin-profile` package) finds it. 0: no profiling.
        log_dir: Keras's spelling of `logdir`.

    Event files are closed at the end of every epoch (so everything written is on disk;
    the next epoch opens new ones) and when `fit` ends, also when it ends with an
    exception. A run resumed by `BackupAndRestore` continues the same
    curves: its writers open with `purge_step`, so points the interrupted run wrote after
    its last backup are dropped by TensorBoard instead of appearing twice.

    Examples:
        Two epochs' logs, given as `fit` gives them, read back with the `tensorboard`
        package's own reader: validation logs go to a run of their own, under the same tag.

        >>> import os, tempfile
        >>> from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        >>> from elegy.callbacks import TensorBoard
        >>> with tempfile.TemporaryDirectory() as logdir:
        ...     board = TensorBoard(logdir)
        ...     board.on_train_begin()
        ...     for epoch, loss in enumerate([0.5, 0.25]):
        ...         board.on_epoch_begin(epoch)
        ...         board.on_epoch_end(epoch, {"loss": loss, "val_loss": loss + 0.25})
        ...     board.on_train_end()
        ...     runs = sorted(os.listdir(logdir))
        ...     events = EventAccumulator(os.path.join(logdir, "validation")).Reload()
        >>> runs, [(point.step, point.value) for point in events.Scalars("epoch_loss")]
        (['train', 'validation'], [(0, 0.75), (1, 0.5)])
    """

    first_process_only = True

    def __init__(
        self,
        logdir: str = "runs",
        update_freq: int | str = "epoch",
        histogram_freq: int = 0,
        write_hparams: bool = False,
        write_summary: bool = True,
        profile_batch: int | tuple[int, int] = 0,
        log_dir: str | None = None,
        hparams: Mapping[str, Any] | None = None,
    ):
        super().__init__()
        self._profile_range = profile_range(profile_batch)
        logdir = log_dir if log_dir is not None else logdir
        update_freq = check_frequency(update_freq, "update_freq")
        histogram_freq = check_int(histogram_freq, "histogram_freq", 0)
        self.logdir = os.fspath(logdir)
        self.update_freq = update_freq
        self.histogram_freq = histogram_freq
        self.write_hparams = write_hparams
        self.hparams = None if hparams is None else checked_hparams(hparams)
        self.write_summary = write_summary
        self._writers: dict[str, SummaryWriter] = {}
        self._global_batch = 0
        self._next_epoch = 0  # the first epoch not finished yet
        self._purge_steps: dict[str, int] = {}
        self._files_opened = 0
        self._profiling = False
        self._epoch_start = 0.0
        self._epoch_batches = 0

    def _writer(self, run: str) -> SummaryWriter:
        """The open writer of `run`; a new event file after each epoch's close.

        File names sort in writing order (TensorBoard reads a run's files in name order).
        tensorboardX starts them with the time in whole seconds; the suffix goes on with the
        time in nanoseconds, so that files opened within one second still sort in order, also
        across callbacks and processes (a resumed run's first file, with its purge marker,
        must come after the interrupted run's last one), then a counter and a random part.
        """
        if run not in self._writers:
            self._files_opened += 1
            suffix = f".{time.time_ns():020d}.{self._files_opened:06d}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
            purge_step = self._purge_steps.pop(run, None)  # only the first file after a resume
            path = os.path.join(self.logdir, run)
            # Imported here, on first use: tensorboardX imports torch when it is installed,
            # seconds that `import elegy` should not pay.
            from tensorboardX import SummaryWriter

            self._writers[run] = SummaryWriter(path, filename_suffix=suffix, purge_step=purge_step)
        return self._writers[run]

    def _close_writers(self) -> None:
        """Close (not just flush) the writers: tensorboardX's flush leaves queued events
        unwritten, closing writes them all and syncs the file."""
        for writer in self._writers.values():
            writer.close()
        self._writers = {}

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        self._global_batch, self._next_epoch, self._purge_steps = 0, 0, {}
        self._profiling = False
        self._config_pending = self.write_hparams or self._is_session
        self._summary_pending = self.write_summary

    def get_state(self) -> dict[str, Any]:
        return {"global_batch": self._global_batch, "next_epoch": self._next_epoch}

    def set_state(self, state: dict[str, Any]) -> None:
        """Resume the curves: TensorBoard drops the points the interrupted run wrote after
        the backup (at steps from these on), so none appears twice."""
        self._global_batch, self._next_epoch = state["global_batch"], state["next_epoch"]
        self._purge_steps = {  # the first step each run will write next
            TRAIN: self._next_epoch,
            VALIDATION: self._next_epoch,
            TRAIN_BATCHES: self._global_batch + 1,
        }
        self._config_pending = self._summary_pending = False  # the interrupted run wrote them

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._next_epoch = epoch
        self._epoch_start, self._epoch_batches = time.perf_counter(), 0
        if self._config_pending:
            self._write_configuration()
            self._config_pending = False

    def on_train_batch_begin(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        if self._profile_range and self._global_batch + 1 == self._profile_range[0]:
            jax.profiler.start_trace(os.path.join(self.logdir, TRAIN))
            self._profiling = True

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._global_batch += 1
        # `_profiling` is only set when there is a range.
        if self._profiling and self._global_batch == cast(tuple[int, int], self._profile_range)[1]:
            self._stop_profiling()
        self._epoch_batches += 1
        # `__init__` allows only "epoch" or an int.
        if self.update_freq != "epoch" and self._global_batch % cast(int, self.update_freq) == 0:
            writer = self._writer(TRAIN_BATCHES)
            for name, value in scalar_logs(logs):
                writer.add_scalar(f"batch_{name}", value, self._global_batch)

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._next_epoch = epoch + 1
        for name, value in scalar_logs(logs):
            run, name = (
                (VALIDATION, name[len(VALIDATION_PREFIX) :]) if is_validation_name(name) else (TRAIN, name)
            )
            self._writer(run).add_scalar(f"epoch_{name}", value, epoch)
        elapsed = time.perf_counter() - self._epoch_start
        if self._epoch_batches and elapsed > 0:
            self._writer(TRAIN).add_scalar("epoch_steps_per_second", self._epoch_batches / elapsed, epoch)
        if self._summary_pending:
            self._write_model_summary()
        if self.histogram_freq and (epoch + 1) % self.histogram_freq == 0:
            self._write_histograms(epoch)
        self._close_writers()  # on disk now: a crash after this epoch loses none of it

    @property
    def _is_session(self) -> bool:
        """Whether the run is an HParams session (it has hyperparameters to show)."""
        return self.write_hparams or self.hparams is not None

    def _write_configuration(self) -> None:
        """The configuration as text, and the session's start for the HParams dashboard
        (in the folder above `train/` and `validation/`, whose curves are its metrics)."""
        hparams = dict(self.hparams or {})
        if self.write_hparams:
            self._writer(TRAIN).add_text("config", configuration_table(self.model, self.params), 0)
            hparams = {**model_hparams(self.model, self.params), **hparams}
        self._writer(SESSION).file_writer.add_summary(session_start(hparams))

    def _write_model_summary(self) -> None:
        """`model.summary()` as monospaced text (Markdown code: four spaces per line)."""
        self._summary_pending = False
        if getattr(self.model, "module", None) is None or self.model.input_spec is None:
            return  # a model without a Haiku module (steps written by hand) has no table
        table = self.model.summary(print_fn=None)
        monospaced = "\n".join("    " + line for line in table.splitlines())
        self._writer(TRAIN).add_text("model_summary", monospaced, 0)

    def _write_histograms(self, epoch: int) -> None:
        params = jax.device_get(self.model.states.net_params)
        writer = self._writer(TRAIN)
        for path, leaf in jax.tree_util.tree_leaves_with_path(params):
            # "mlp/~/linear_0" + "w" -> "mlp/linear_0/w" (Haiku's "~" is not a valid tag character)
            name = (
                jax.tree_util.keystr(path).replace("['", "").replace("']", "/").strip("/").replace("/~/", "/")
            )
            writer.add_histogram(name, np.asarray(leaf, np.float32), epoch)

    def _stop_profiling(self) -> None:
        # the traced steps run asynchronously; jax leaves these two functions unannotated
        jax.block_until_ready(self.model.states)  # type: ignore[no-untyped-call]
        jax.profiler.stop_trace()  # type: ignore[no-untyped-call]
        self._profiling = False

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        if self._profiling:  # fit ended inside the profiled range
            self._stop_profiling()
        if self._is_session:
            self._writer(SESSION).file_writer.add_summary(session_end())
        self._close_writers()


def profile_range(profile_batch: Any) -> tuple[int, int] | None:
    """`profile_batch` as an inclusive range of batch numbers (from 1), or None for 0."""
    if isinstance(profile_batch, (tuple, list)) and len(profile_batch) == 2:
        first, last = profile_batch
    else:
        first = last = profile_batch
    numbers = (first, last)
    if all(isinstance(n, int) and not isinstance(n, bool) for n in numbers):
        if first == last == 0:
            return None
        if 0 < first <= last:
            return first, last
    raise ValueError(
        f"profile_batch must be 0, a batch number >= 1 or a pair (first, last) with 1 <= first <= last, "
        f"got {profile_batch!r}"
    )


def configuration_table(model: Any, params: dict[str, Any]) -> str:
    """A Markdown table of what defines the run, for TensorBoard's Text tab."""
    rows = {
        "model": type(model).__name__,
        "module": getattr(model, "module", None),
        "loss": getattr(model, "loss", None),
        "metrics": getattr(model, "metrics", None),
        "optimizer": type(getattr(model, "optimizer", None)).__name__,
        "seed": getattr(model, "seed", None),
        **{f"fit.{key}": value for key, value in sorted(params.items())},
    }
    lines = ["| setting | value |", "|---|---|"]
    lines += [f"| {key} | {str(value).replace('|', '/')} |" for key, value in rows.items()]
    return "\n".join(lines)

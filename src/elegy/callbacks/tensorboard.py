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
from typing import Any

import jax
import numpy as np
from tensorboardX import SummaryWriter

from elegy.callbacks.callback import Callback
from elegy.callbacks.logs import scalar_logs

VALIDATION_PREFIX = "val_"


class TensorBoard(Callback):
    """Write every scalar log to TensorBoard event files under `logdir`.

    Args:
        logdir: the directory TensorBoard is pointed at (`tensorboard --logdir runs`).
        update_freq: `"epoch"` writes one point per epoch (at step = epoch index); an
            integer `N` also writes `batch_<name>` every `N` batches (at step = the global
            batch count). Batch logs are fetched from the device only at those batches.
        histogram_freq: every that many epochs, a histogram of each parameter in
            `net_params` (0: never).
        write_hparams: write the model's configuration (module, losses, metrics,
            optimizer, seed) and fit's settings as a text summary, shown in TensorBoard's
            Text tab.
        profile_batch: only 0 (no profiling) for now; use `jax.profiler` directly meanwhile.
        log_dir: Keras's spelling of `logdir`.

    Writers are flushed at the end of every epoch and closed when `fit` ends, also when
    it ends with an exception.
    """

    def __init__(
        self,
        logdir: str = "runs",
        update_freq: int | str = "epoch",
        histogram_freq: int = 0,
        write_hparams: bool = False,
        profile_batch: int = 0,
        log_dir: str | None = None,
    ):
        super().__init__()
        if profile_batch != 0:
            raise ValueError(
                f"profile_batch={profile_batch!r}: profiling is not supported yet; pass 0 and use "
                "jax.profiler.trace around fit"
            )
        logdir = log_dir if log_dir is not None else logdir
        if update_freq != "epoch" and (
            isinstance(update_freq, bool) or not isinstance(update_freq, int) or update_freq < 1
        ):
            raise ValueError(f"update_freq must be 'epoch' or a positive integer, got {update_freq!r}")
        if isinstance(histogram_freq, bool) or not isinstance(histogram_freq, int) or histogram_freq < 0:
            raise ValueError(f"histogram_freq must be an integer >= 0, got {histogram_freq!r}")
        self.logdir = os.fspath(logdir)
        self.update_freq = update_freq
        self.histogram_freq = histogram_freq
        self.write_hparams = write_hparams
        self._writers: dict[str, SummaryWriter] = {}
        self._global_batch = 0
        self._epoch_start = 0.0
        self._epoch_batches = 0

    def _writer(self, run: str) -> SummaryWriter:
        if run not in self._writers:
            # A unique suffix: two writers opened in the same second must not share a file.
            suffix = f".{os.getpid()}.{uuid.uuid4().hex[:8]}"
            self._writers[run] = SummaryWriter(os.path.join(self.logdir, run), filename_suffix=suffix)
        return self._writers[run]

    def on_train_begin(self, logs=None):
        self._global_batch = 0
        if self.write_hparams:
            self._writer("train").add_text("config", configuration_table(self.model, self.params), 0)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start, self._epoch_batches = time.perf_counter(), 0

    def on_train_batch_end(self, batch, logs=None):
        self._global_batch += 1
        self._epoch_batches += 1
        if self.update_freq != "epoch" and self._global_batch % self.update_freq == 0:
            writer = self._writer("train")
            for name, value in scalar_logs(logs):
                writer.add_scalar(f"batch_{name}", value, self._global_batch)

    def on_epoch_end(self, epoch, logs=None):
        for name, value in scalar_logs(logs):
            run, name = (
                ("validation", name[len(VALIDATION_PREFIX) :])
                if name.startswith(VALIDATION_PREFIX)
                else ("train", name)
            )
            self._writer(run).add_scalar(f"epoch_{name}", value, epoch)
        elapsed = time.perf_counter() - self._epoch_start
        if self._epoch_batches and elapsed > 0:
            self._writer("train").add_scalar("epoch_steps_per_second", self._epoch_batches / elapsed, epoch)
        if self.histogram_freq and (epoch + 1) % self.histogram_freq == 0:
            self._write_histograms(epoch)
        for writer in self._writers.values():
            writer.flush()

    def _write_histograms(self, epoch: int) -> None:
        params = jax.device_get(self.model.states.net_params)
        writer = self._writer("train")
        for path, leaf in jax.tree_util.tree_leaves_with_path(params):
            # "mlp/~/linear_0" + "w" -> "mlp/linear_0/w" (Haiku's "~" is not a valid tag character)
            name = (
                jax.tree_util.keystr(path).replace("['", "").replace("']", "/").strip("/").replace("/~/", "/")
            )
            writer.add_histogram(name, np.asarray(leaf, np.float32), epoch)

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


def configuration_table(model: Any, params: dict) -> str:
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

"""A TensorBoard walkthrough: what Elegy's TensorBoard callback writes, and where.

Part 1 trains a small Haiku MLP on scikit-learn's 8x8 digits with
`elegy.callbacks.TensorBoard` switched fully on:

* epoch scalars (`epoch_loss`, `epoch_accuracy`, `epoch_learning_rate`,
  `epoch_steps_per_second`) in the run `train/`, and the validation values under the
  same tags in `validation/`, so TensorBoard draws both curves in one chart;
* batch scalars (`batch_loss`, ...) every `--update-freq` batches in the run
  `train/batch/`, a run of its own because its steps count batches, not epochs;
* a histogram of every parameter every `--histogram-freq` epochs;
* the run's configuration (`write_hparams=True`) and the model summary as text, and the
  configuration as the run's hyperparameters for the HParams dashboard (in the run `.`,
  the logdir itself).

Part 2 shows a resumed run: `BackupAndRestore` backs the run up after every epoch, a
callback "crashes" the process in the middle, and running `fit` again continues the same
curves. The interrupted run had already written the epoch it crashed in; the resumed run
marks its first event files with a purge step, so TensorBoard drops that orphaned point
and every step appears once.

After each part the event files are read back with TensorBoard's own reader
(`EventAccumulator`), and the script prints every run folder, its tags and how many
points each holds: what you would see after `tensorboard --logdir <logdir>`.

Run it:

    python examples/tensorboard_walkthrough.py            # full run, well under a minute
    python examples/tensorboard_walkthrough.py --smoke    # a few seconds
    tensorboard --logdir runs/tensorboard_walkthrough     # then open http://localhost:6006

The digits ship with scikit-learn, so nothing is downloaded. The last line printed is
machine-readable: `result: name=value ...`.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import time
from dataclasses import dataclass

import haiku as hk
import jax
import optax
from common import ExampleParser, load_shuffled_digits, result_line
from tensorboard.backend.event_processing import event_accumulator

import elegy

VALIDATION_SPLIT = 0.2


def forward(x: jax.Array) -> jax.Array:
    return hk.nets.MLP([64, 10])(x)


def build_model(steps_per_epoch: int, seed: int) -> elegy.Model:
    # `inject_hyperparams` puts the learning rate into the optimizer's state, where the
    # default train_step finds it and logs the value the schedule really used.
    schedule = optax.exponential_decay(3e-3, transition_steps=steps_per_epoch, decay_rate=0.9)
    return elegy.Model(
        module=forward,
        loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        optimizer=optax.inject_hyperparams(optax.adam)(learning_rate=schedule),
        seed=seed,
    )


def tensorboard_callback(logdir: str, update_freq: int, histogram_freq: int) -> elegy.callbacks.TensorBoard:
    return elegy.callbacks.TensorBoard(
        logdir,
        update_freq=update_freq,  # batch points every N batches ("epoch": none)
        histogram_freq=histogram_freq,  # parameter histograms every K epochs (0: none)
        write_hparams=True,  # the model's and fit's settings: the Text tab and the HParams one
        write_summary=True,  # the table of Haiku modules, in the Text tab
    )


# ---------------------------------------------------------------------------- reading back
@dataclass
class RunContents:
    """What TensorBoard shows for one run folder: points per scalar tag, and other tags."""

    scalars: dict[str, list[int]]  # tag -> steps, in order
    histograms: dict[str, int]  # tag -> number of histograms
    texts: list[str]


def run_folders(logdir: str) -> list[str]:
    """Every folder under `logdir` that holds event files: TensorBoard's runs."""
    runs = []
    for folder, _, files in os.walk(logdir):
        if any(".tfevents." in name for name in files):
            runs.append(os.path.relpath(folder, logdir))
    return sorted(runs)


def read_run(path: str, purge_orphaned_data: bool = True) -> RunContents:
    """Read one run with TensorBoard's reader, keeping every point (no sampling).

    `purge_orphaned_data=True` is what TensorBoard itself does: points written after a
    step that a later file marks as restarted are dropped.
    """
    accumulator = event_accumulator.EventAccumulator(
        path,
        size_guidance=event_accumulator.STORE_EVERYTHING_SIZE_GUIDANCE,
        purge_orphaned_data=purge_orphaned_data,
    )
    # TensorBoard logs a warning for every purge; the caller reports the purge itself.
    logging.getLogger("tensorboard").setLevel(logging.ERROR)
    accumulator.Reload()
    tags = accumulator.Tags()
    return RunContents(
        scalars={tag: [event.step for event in accumulator.Scalars(tag)] for tag in tags["scalars"]},
        histograms={tag: len(accumulator.Histograms(tag)) for tag in tags["histograms"]},
        texts=sorted(tags["tensors"]),  # tensorboardX writes text summaries as tensors
    )


def describe(logdir: str) -> dict[str, RunContents]:
    """Print what each run under `logdir` holds; return it for the checks below."""
    contents = {}
    for run in run_folders(logdir):
        found = contents[run] = read_run(os.path.join(logdir, run))
        print(f"  run {run}/")
        for tag, steps in sorted(found.scalars.items()):
            print(f"    scalar {tag:<28} {len(steps):4d} points, steps {steps[0]}..{steps[-1]}")
        if found.histograms:
            counts = sorted(set(found.histograms.values()))
            print(f"    {len(found.histograms)} histogram tags ({counts} each), e.g. {min(found.histograms)}")
        for tag in found.texts:
            print(f"    text   {tag}")
    return contents


# ---------------------------------------------------------------------------- part 2
class CrashAfterEpoch(elegy.callbacks.Callback):
    """Stands in for a preempted machine: the process "dies" at the end of one epoch."""

    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def interrupted_and_resumed(
    model: elegy.Model, x, y, args, logdir: str, epochs: int, crash_epoch: int
) -> int:
    """Train, crash after `crash_epoch`, train again: returns the epochs fit reported."""
    backup_dir = logdir + "_backup"

    def attempt(extra_callbacks: list) -> elegy.callbacks.History:
        # A restarted script would build a new model; `reset()` gives the same starting
        # point (the States the seed determines) and keeps the compiled steps, which
        # saves compiling them again in this demo.
        model.reset()
        return model.fit(
            x,
            y,
            epochs=epochs,
            batch_size=args.batch_size,
            validation_split=VALIDATION_SPLIT,
            verbose=0,
            callbacks=[
                tensorboard_callback(logdir, args.update_freq, args.histogram_freq),
                *extra_callbacks,  # the crash comes after TensorBoard wrote the epoch
                elegy.callbacks.BackupAndRestore(backup_dir),
            ],
        )

    try:
        attempt([CrashAfterEpoch(crash_epoch)])
    except KeyboardInterrupt:
        print(f"  (the first attempt stopped at the end of epoch {crash_epoch}, as planned)")
    history = attempt([])
    return len(history.epoch)


def steps_per_epoch(rows: int, batch_size: int) -> int:
    train_rows = rows - int(rows * VALIDATION_SPLIT)
    return -(-train_rows // batch_size)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ExampleParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        full_epochs=30,
        smoke_epochs=3,
        smoke_help="a few seconds: few epochs, part of the data",
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--update-freq", type=int, default=5, help="batch points every N batches")
    parser.add_argument("--histogram-freq", type=int, default=None, help="default: 5 (full), 1 (smoke)")
    parser.add_argument("--logdir", default="runs/tensorboard_walkthrough", help="where TensorBoard logs go")
    args = parser.parse_args(argv)
    args.histogram_freq = args.histogram_freq or (1 if args.smoke else 5)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    x, y = load_shuffled_digits(args.seed, limit=640 if args.smoke else None)
    # Start from empty folders: TensorBoard would otherwise show these runs next to the
    # curves of an earlier invocation (each fit appends new event files).
    first_dir, resumed_dir = os.path.join(args.logdir, "first"), os.path.join(args.logdir, "resumed")
    for folder in (first_dir, resumed_dir, resumed_dir + "_backup"):
        shutil.rmtree(folder, ignore_errors=True)
    start = time.perf_counter()

    print(f"Part 1: one run with every TensorBoard option, in {first_dir}")
    model = build_model(steps_per_epoch(len(x), args.batch_size), args.seed)
    history = model.fit(
        x,
        y,
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_split=VALIDATION_SPLIT,
        verbose=0,
        callbacks=[tensorboard_callback(first_dir, args.update_freq, args.histogram_freq)],
    )
    first = describe(first_dir)
    batches = len(history.epoch) * steps_per_epoch(len(x), args.batch_size)
    print(
        f"  {batches} training batches: one batch point every {args.update_freq} -> "
        f"{batches // args.update_freq} points; validation accuracy {history.history['val_accuracy'][-1]:.3f}"
    )

    crash_epoch = args.epochs // 2
    print(f"\nPart 2: a run interrupted after epoch {crash_epoch} and resumed, in {resumed_dir}")
    resumed_epochs = interrupted_and_resumed(model, x, y, args, resumed_dir, args.epochs, crash_epoch)
    resumed = describe(resumed_dir)
    raw = read_run(os.path.join(resumed_dir, "train"), purge_orphaned_data=False)
    raw_steps = raw.scalars["epoch_loss"]
    shown_steps = resumed["train"].scalars["epoch_loss"]
    print(
        f"  epoch_loss in the files: {len(raw_steps)} points (epoch {crash_epoch} written twice); "
        f"as TensorBoard shows it: {len(shown_steps)} points, one per epoch"
    )
    seconds = time.perf_counter() - start

    print(f"\nOpen the logs with:  tensorboard --logdir {args.logdir}")
    values = {
        "epochs": args.epochs,
        "runs": len(first),
        "train_epoch_points": len(first["train"].scalars["epoch_loss"]),
        "validation_epoch_points": len(first["validation"].scalars["epoch_loss"]),
        "batch_points": len(first["train/batch"].scalars["batch_loss"]),
        "last_batch_step": first["train/batch"].scalars["batch_loss"][-1],
        "histogram_tags": len(first["train"].histograms),
        "histograms_per_tag": min(first["train"].histograms.values()),
        "text_tags": len(first["train"].texts),
        "resumed_fit_epochs": resumed_epochs,
        "resumed_raw_points": len(raw_steps),
        "resumed_shown_points": len(shown_steps),
        "resumed_distinct_steps": len(set(shown_steps)),
        "val_accuracy": history.history["val_accuracy"][-1],
        "seconds": seconds,
    }
    print(result_line(values, digits=4))


if __name__ == "__main__":
    main()

"""BackupAndRestore: an interrupted fit, resumed, equals the uninterrupted fit bit for bit:
parameters, optimizer state, History, callback state, CSV rows and TensorBoard curves."""

import csv
import subprocess
import sys
import textwrap
import time
import types

import jax
import numpy as np
import optax
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboardX import event_file_writer
from tests.conftest import blobs, bn_dropout_forward

import elegy
from elegy.callbacks import (
    BackupAndRestore,
    Callback,
    CSVLogger,
    EarlyStopping,
    LearningRateScheduler,
    ReduceLROnPlateau,
    TensorBoard,
)

X, Y = blobs(100)  # batch 16: 7 batches per epoch, the last one padded
VX, VY = blobs(40, seed=1)
EPOCHS = 6


def make_model(steps_per_execution="auto"):
    return elegy.Model(
        bn_dropout_forward,
        loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        optimizer=optax.inject_hyperparams(optax.adam)(learning_rate=2e-2),
        steps_per_execution=steps_per_execution,
    )


class Interrupt(Callback):
    """Raises KeyboardInterrupt before the given batch of the given epoch runs."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.at = (epoch, batch)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise KeyboardInterrupt


def stateful_callbacks(folder):
    return [
        EarlyStopping(monitor="val_loss", patience=10, restore_best_weights=True),
        ReduceLROnPlateau(monitor="loss", patience=1, factor=0.5, min_delta=10.0),  # reduces often
        LearningRateScheduler(lambda epoch, lr: lr * 0.9),  # compounds: re-applying it would show
        CSVLogger(folder / "log.csv"),
        TensorBoard(folder / "tb", update_freq=2),
    ]


def run(folder, backup=None, interrupt=None):
    model = make_model()
    callbacks = stateful_callbacks(folder) + [c for c in (interrupt, backup) if c is not None]
    history = model.fit(
        X, Y, batch_size=16, epochs=EPOCHS, validation_data=(VX, VY), verbose=0, callbacks=callbacks
    )
    return model, history, callbacks


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("uninterrupted")
    model, history, callbacks = run(folder)
    return folder, model, history, callbacks[0]


def same_leaves(a, b):
    pairs = zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True)
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in pairs)


def csv_rows(path):
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


def scalars(logdir, run):
    accumulator = EventAccumulator(str(logdir / run))
    accumulator.Reload()
    return {
        tag: [(event.step, event.value) for event in accumulator.Scalars(tag)]
        for tag in accumulator.Tags()["scalars"]
        if tag != "epoch_steps_per_second"  # a timing, not a result
    }


def assert_same_run(folder, model, history, early_stopping, uninterrupted):
    expected_folder, expected_model, expected_history, expected_stopping = uninterrupted
    assert history.history == expected_history.history
    assert history.epoch == list(range(EPOCHS))
    assert same_leaves(dict(model.states), dict(expected_model.states))
    assert early_stopping.get_state()["best"] == expected_stopping.get_state()["best"]
    assert same_leaves(early_stopping.best_weights, expected_stopping.best_weights)
    assert csv_rows(folder / "log.csv") == csv_rows(expected_folder / "log.csv")
    for run_name in ("train", "validation", "train/batch"):
        assert scalars(folder / "tb", run_name) == scalars(expected_folder / "tb", run_name)


@pytest.mark.parametrize(
    "save_freq, interrupt_at", [("epoch", (2, 3)), (3, (2, 5))], ids=["epoch_backups", "mid_epoch_backup"]
)
def test_resumed_fit_equals_the_uninterrupted_one(
    tmp_path, uninterrupted, save_freq, interrupt_at, monkeypatch
):
    # tensorboardX names event files by the second. With its clock frozen, the resumed run
    # opens its first file (with the purge marker) in the second of the interrupted run's
    # last one: the files must still sort in writing order, or a purged epoch shows again.
    frozen = types.SimpleNamespace(**{name: getattr(time, name) for name in dir(time) if name[0] != "_"})
    frozen.time = lambda: 1_767_225_600.0
    monkeypatch.setattr(event_file_writer, "time", frozen)
    backup_dir = tmp_path / "backup"
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, BackupAndRestore(backup_dir, save_freq=save_freq), Interrupt(*interrupt_at))
    assert (backup_dir / "LATEST").exists()

    model, history, callbacks = run(tmp_path, BackupAndRestore(backup_dir, save_freq=save_freq))
    assert_same_run(tmp_path, model, history, callbacks[0], uninterrupted)
    assert not backup_dir.exists()  # deleted once fit finished


@pytest.mark.parametrize(
    "save_freq, die_at", [("epoch", (3, 0)), (2, (2, 4))], ids=["after_epoch_3_of_6", "inside_epoch_3"]
)
def test_resume_in_a_new_process_after_the_first_was_killed(tmp_path, uninterrupted, save_freq, die_at):
    """The first process dies with os._exit (no cleanup, a write possibly in flight); this
    process, a new one, resumes."""
    script = textwrap.dedent(
        f"""
        import os, pathlib
        from elegy.callbacks import BackupAndRestore, Callback
        from tests.callbacks.test_backup_and_restore import run

        class Die(Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.epoch = epoch
            def on_train_batch_begin(self, batch, logs=None):
                if (self.epoch, batch) == {die_at!r}:
                    os._exit(3)

        folder = pathlib.Path({str(tmp_path)!r})
        run(folder, BackupAndRestore(folder / "backup", save_freq={save_freq!r}), Die())
        """
    )
    died = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180)
    assert died.returncode == 3, died.stderr
    model, history, callbacks = run(tmp_path, BackupAndRestore(tmp_path / "backup", save_freq=save_freq))
    assert_same_run(tmp_path, model, history, callbacks[0], uninterrupted)


def test_a_built_model_is_restored_before_the_first_epoch(tmp_path, uninterrupted):
    backup_dir = tmp_path / "backup"
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, BackupAndRestore(backup_dir), Interrupt(2, 0))
    model = make_model()
    model.init(X[:16], Y[:16])  # built: the backup is read at on_train_begin
    seen = []
    probe = elegy.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: seen.append(int(model.states.epoch))
    )
    callbacks = stateful_callbacks(tmp_path) + [probe, BackupAndRestore(backup_dir)]
    history = model.fit(
        X, Y, batch_size=16, epochs=EPOCHS, validation_data=(VX, VY), verbose=0, callbacks=callbacks
    )
    assert seen[0] == 2  # restored before the resumed epoch began
    assert_same_run(tmp_path, model, history, callbacks[0], uninterrupted)


def test_delete_checkpoint_false_keeps_the_final_backup(tmp_path):
    model = make_model()
    model.fit(
        X,
        Y,
        batch_size=16,
        epochs=2,
        verbose=0,
        callbacks=[BackupAndRestore(tmp_path / "b", delete_checkpoint=False)],
    )
    assert (tmp_path / "b" / "LATEST").exists()
    again = make_model()
    history = again.fit(
        X, Y, batch_size=16, epochs=2, verbose=0, callbacks=[BackupAndRestore(tmp_path / "b")]
    )
    assert len(history.history["loss"]) == 2  # nothing left to train: the History is the backup's
    assert same_leaves(dict(again.states), dict(model.states))


def test_early_stopping_ends_the_run_and_removes_the_backup(tmp_path):
    stopper = EarlyStopping(monitor="loss", patience=0, min_delta=100.0)  # stops after epoch 1
    history = make_model().fit(
        X, Y, batch_size=16, epochs=5, verbose=0, callbacks=[stopper, BackupAndRestore(tmp_path / "b")]
    )
    assert len(history.history["loss"]) == 2
    assert not (tmp_path / "b").exists()


def test_resuming_with_other_callbacks_is_a_clear_error(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, BackupAndRestore(tmp_path / "b"), Interrupt(1, 2))
    with pytest.raises(ValueError, match="holds the state of CSVLogger_0.*same callbacks"):
        make_model().fit(
            X, Y, batch_size=16, epochs=EPOCHS, verbose=0, callbacks=[BackupAndRestore(tmp_path / "b")]
        )


def test_a_folder_holding_a_model_save_is_refused(tmp_path):
    model = make_model()
    model.init(X[:16], Y[:16])
    model.save(tmp_path / "saved")
    with pytest.raises(ValueError, match="holds a model save, not a backup"):
        model.fit(X, Y, epochs=1, verbose=0, callbacks=[BackupAndRestore(tmp_path / "saved")])


def test_backup_runs_after_the_callbacks_listed_after_it(tmp_path):
    order = []
    backup = BackupAndRestore(tmp_path / "b")
    later = elegy.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: order.append("later"))
    original = backup.on_epoch_end
    backup.on_epoch_end = lambda epoch, logs=None: (order.append("backup"), original(epoch, logs))
    make_model().fit(X, Y, batch_size=16, epochs=2, verbose=0, callbacks=[backup, later])
    assert order == ["later", "backup", "later", "backup"]


# ---------------------------------------------------------------- found in review
def test_a_csv_survives_two_interruptions_in_a_row(tmp_path):
    def attempt(interrupt=None):
        model = make_model()
        callbacks = [CSVLogger(tmp_path / "log.csv"), *([interrupt] if interrupt else [])]
        callbacks.append(BackupAndRestore(tmp_path / "b", save_freq=2))
        return model.fit(X, Y, batch_size=16, epochs=4, verbose=0, callbacks=callbacks)

    for interrupt in (Interrupt(2, 1), Interrupt(2, 4)):
        with pytest.raises(KeyboardInterrupt):
            attempt(interrupt)
    history = attempt()
    rows = csv_rows(tmp_path / "log.csv")
    assert [int(row["epoch"]) for row in rows] == [0, 1, 2, 3]
    assert [float(row["loss"]) for row in rows] == pytest.approx(history.history["loss"], rel=1e-6)


def test_an_iterable_with_steps_per_epoch_resumes_where_its_stream_was(tmp_path):
    batches = [(X[i : i + 16], Y[i : i + 16]) for i in range(0, 80, 16)]  # 5 batches, 3 per epoch

    def attempt(interrupt=None):
        model = make_model()
        callbacks = [*([interrupt] if interrupt else []), BackupAndRestore(tmp_path / "b", save_freq=1)]
        history = model.fit(batches, steps_per_epoch=3, epochs=3, verbose=0, callbacks=callbacks)
        return model, history

    expected_model, expected = make_model(), None
    expected = expected_model.fit(batches, steps_per_epoch=3, epochs=3, verbose=0).history
    with pytest.raises(KeyboardInterrupt):
        attempt(Interrupt(1, 2))
    model, history = attempt()
    assert history.history == expected
    assert same_leaves(dict(model.states), dict(expected_model.states))


def interrupted_run(backup_dir):
    """A 3-epoch fit interrupted in its second epoch, leaving a backup in `backup_dir`."""
    callbacks = [Interrupt(1, 1), BackupAndRestore(backup_dir)]
    with pytest.raises(KeyboardInterrupt):
        make_model().fit(X, Y, batch_size=16, epochs=3, verbose=0, callbacks=callbacks)


def test_resuming_with_another_batch_size_is_refused(tmp_path):
    interrupted_run(tmp_path / "b")
    with pytest.raises(ValueError, match="batch_size was 16, is 8; steps was 7, is 13"):
        make_model().fit(
            X, Y, batch_size=8, epochs=3, verbose=0, callbacks=[BackupAndRestore(tmp_path / "b")]
        )


def test_a_failed_fit_leaves_no_pending_restore_behind(tmp_path):
    interrupted_run(tmp_path / "b")
    model = make_model()
    with pytest.raises(ValueError):
        model.fit(X, Y[:10], batch_size=16, epochs=3, verbose=0, callbacks=[BackupAndRestore(tmp_path / "b")])
    np.testing.assert_array_equal(model.predict(X), make_model().predict(X))  # no backup weights
    # Nothing of the failed fit's resume outlives it: the next fit starts afresh.
    fresh = make_model()
    assert (
        model.fit(X, Y, batch_size=16, verbose=0).history == fresh.fit(X, Y, batch_size=16, verbose=0).history
    )
    np.testing.assert_array_equal(model.predict(X), fresh.predict(X))


def test_resuming_compiles_nothing_again(tmp_path, caplog):
    """Restored arrays are not committed to a device, as the model's own are not: a
    committed input is another jit signature, and the resumed steps compiled again.
    (With a group size of its own: under "auto", a search the first fit left unfinished
    goes on, and compiles what it has not yet.)"""
    model = make_model(steps_per_execution=2)
    arguments = dict(batch_size=16, epochs=3, validation_data=(VX, VY), verbose=0)
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, Y, **arguments, callbacks=[Interrupt(1, 3), BackupAndRestore(tmp_path / "backup")])
    with jax.log_compiles(), caplog.at_level("WARNING", logger="jax"):
        history = model.fit(X, Y, **arguments, callbacks=[BackupAndRestore(tmp_path / "backup")])
    assert history.epoch == [0, 1, 2]
    compiled = [record.getMessage() for record in caplog.records if "Compiling" in record.getMessage()]
    assert compiled == []

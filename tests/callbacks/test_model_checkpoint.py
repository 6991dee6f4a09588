"""ModelCheckpoint through fit: what is saved when, under which name, and that it loads."""

import threading
import time

import jax
import numpy as np
import optax
import pytest
from tests.conftest import blobs, mlp_forward

import elegy
from elegy.callbacks import LambdaCallback, ModelCheckpoint
from elegy.serialization import InvalidSaveError, arrays, store

X, Y = blobs(96)
VX, VY = blobs(48, seed=1)


def make_model():
    return elegy.Model(
        mlp_forward,
        loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        optimizer=optax.adam(3e-2),
    )


def fit(model, callbacks, epochs=3, **kwargs):
    return model.fit(
        X, Y, batch_size=32, epochs=epochs, validation_data=(VX, VY), verbose=0, callbacks=callbacks, **kwargs
    )


def snapshots(model):
    """A callback that keeps a host copy of the States at every epoch end."""
    kept = []
    return LambdaCallback(
        on_epoch_end=lambda epoch, logs: kept.append(jax.device_get(dict(model.states)))
    ), kept


def same_leaves(a, b):
    pairs = zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True)
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in pairs)


def test_every_epoch_is_saved_under_its_formatted_name(tmp_path):
    model = make_model()
    keeper, kept = snapshots(model)
    checkpoint = ModelCheckpoint(tmp_path / "ckpt-{epoch:02d}-{val_loss:.3f}")
    history = fit(model, [checkpoint, keeper])
    expected = [f"ckpt-{e + 1:02d}-{v:.3f}" for e, v in enumerate(history.history["val_loss"])]
    assert sorted(p.name for p in tmp_path.iterdir()) == expected
    for name, states in zip(expected, kept, strict=True):
        loaded = elegy.load(tmp_path / name)
        assert same_leaves(dict(loaded.states), states), name  # the States of that epoch's end


def test_save_best_only_saves_exactly_the_improving_epochs(tmp_path):
    model = make_model()
    history = fit(
        model, [ModelCheckpoint(tmp_path / "e{epoch}", monitor="val_loss", save_best_only=True)], epochs=6
    )
    losses = history.history["val_loss"]
    improving = [e + 1 for e, v in enumerate(losses) if v < min(losses[:e], default=np.inf)]
    assert sorted(int(p.name[1:]) for p in tmp_path.iterdir()) == improving


def test_save_best_only_in_max_mode_with_a_threshold(tmp_path):
    model = make_model()
    checkpoint = ModelCheckpoint(
        tmp_path / "e{epoch}", monitor="val_accuracy", save_best_only=True, initial_value_threshold=2.0
    )
    fit(model, [checkpoint], epochs=2)
    assert not list(tmp_path.iterdir())  # an accuracy never beats 2.0


def test_without_placeholders_the_last_save_wins(tmp_path):
    model = make_model()
    fit(model, [ModelCheckpoint(tmp_path / "latest")])
    assert sorted(p.name for p in (tmp_path / "latest").iterdir()) == ["LATEST", "v000003"]
    assert same_leaves(dict(elegy.load(tmp_path / "latest").states), dict(model.states))


def test_save_weights_only_writes_no_model_definition(tmp_path):
    model = make_model()
    fit(model, [ModelCheckpoint(tmp_path / "w", save_weights_only=True)], epochs=1)
    with pytest.raises(InvalidSaveError, match="only weights"):
        elegy.load(tmp_path / "w")
    other = make_model()
    other.init(X[:4], Y[:4])
    other.load_weights(tmp_path / "w")
    np.testing.assert_array_equal(other.predict(X), model.predict(X))


def test_save_freq_in_batches_counts_across_epochs(tmp_path):
    model = make_model()
    fit(model, [ModelCheckpoint(tmp_path / "e{epoch}-b{batch}-{loss:.4f}", save_freq=2)], epochs=3)
    # 3 batches per epoch, 9 in all: saves after global batches 2, 4, 6, 8.
    names = sorted(p.name.rsplit("-", 1)[0] for p in tmp_path.iterdir())
    assert names == ["e1-b1", "e2-b0", "e2-b2", "e3-b1"]


def test_writes_happen_off_the_training_thread_and_are_done_when_fit_returns(tmp_path, monkeypatch):
    threads = []
    real = store.write_version

    def recording(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "write_version", recording)
    monkeypatch.setattr("elegy.serialization.models.write_version", recording)
    fit(make_model(), [ModelCheckpoint(tmp_path / "e{epoch}")], epochs=2)
    assert threads == ["elegy-checkpoint", "elegy-checkpoint"]
    assert all((tmp_path / f"e{e}" / "LATEST").exists() for e in (1, 2))


def test_a_failed_write_fails_fit_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    model = make_model()
    fit(model, [ModelCheckpoint(tmp_path / "latest")], epochs=1)
    before = elegy.load(tmp_path / "latest").predict(X)

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(arrays._orbax().Checkpointer, "save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        fit(model, [ModelCheckpoint(tmp_path / "latest")], epochs=1)
    monkeypatch.undo()
    np.testing.assert_array_equal(elegy.load(tmp_path / "latest").predict(X), before)


def test_an_unknown_placeholder_names_itself_and_the_logs(tmp_path):
    with pytest.raises(KeyError, match=r"names 'val_acc'.*val_accuracy"):
        fit(make_model(), [ModelCheckpoint(tmp_path / "{val_acc:.2f}")], epochs=1)


@pytest.mark.parametrize("save_freq", [0, "batch", 1.5, True])
def test_bad_save_freq_is_refused(save_freq):
    with pytest.raises(ValueError, match="save_freq must be 'epoch' or an integer >= 1"):
        ModelCheckpoint("x", save_freq=save_freq)


def test_get_state_returns_only_once_the_checkpoint_is_on_disk(tmp_path, monkeypatch):
    """BackupAndRestore records the best value: its checkpoint must exist by then."""
    real = store.write_version

    def slow(*args, **kwargs):
        time.sleep(0.5)
        return real(*args, **kwargs)

    monkeypatch.setattr("elegy.serialization.models.write_version", slow)
    checkpoint = ModelCheckpoint(tmp_path / "best", monitor="loss", save_best_only=True)
    seen = []
    probe = LambdaCallback(
        on_epoch_end=lambda epoch, logs: (
            checkpoint.get_state(),
            seen.append((tmp_path / "best" / "LATEST").exists()),
        )
    )
    fit(make_model(), [checkpoint, probe], epochs=1)
    assert seen == [True]


def test_batch_level_best_only_on_a_validation_log_is_refused(tmp_path):
    with pytest.raises(ValueError, match="batch logs, which hold no validation values"):
        fit(make_model(), [ModelCheckpoint(tmp_path / "x", save_best_only=True, save_freq=2)], epochs=1)


def test_a_batch_placeholder_in_epoch_saves_is_explained(tmp_path):
    with pytest.raises(ValueError, match="batch. has a value only with an integer save_freq"):
        fit(make_model(), [ModelCheckpoint(tmp_path / "{epoch}-{batch:03d}")], epochs=1)


def test_every_callback_closes_even_when_one_fails_at_train_end(tmp_path):
    closed = []
    failing = LambdaCallback(on_train_end=lambda logs: 1 / 0)
    closing = LambdaCallback(on_train_end=lambda logs: closed.append(True))
    with pytest.raises(ZeroDivisionError):
        fit(make_model(), [failing, closing], epochs=1)
    assert closed == [True]


# ---------------------------------------------------------------- max_to_keep
def scores(values):
    """A callback (listed first) that sets logs["score"] to the next value each epoch."""
    return LambdaCallback(on_epoch_end=lambda epoch, logs: logs.__setitem__("score", values[epoch]))


def test_max_to_keep_keeps_the_newest_checkpoints_and_they_load(tmp_path):
    model = make_model()
    keeper, kept = snapshots(model)
    checkpoint = ModelCheckpoint(tmp_path / "epoch{epoch}", max_to_keep=2)
    fit(model, [checkpoint, keeper], epochs=5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch4", "epoch5"]  # nothing else, no temporaries
    for name, states in (("epoch4", kept[3]), ("epoch5", kept[4])):
        assert same_leaves(dict(elegy.load(tmp_path / name).states), states), name


def test_max_to_keep_with_save_best_only_keeps_the_best(tmp_path):
    values = [1.0, 3.0, 2.0, 5.0, 4.0, 6.0]  # improvements at epochs 1, 2, 4 and 6
    checkpoint = ModelCheckpoint(
        tmp_path / "best{epoch}", monitor="score", mode="max", save_best_only=True, max_to_keep=2
    )
    fit(make_model(), [scores(values), checkpoint], epochs=6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best4", "best6"]  # scores 5 and 6
    assert checkpoint.best == 6.0


def test_max_to_keep_counts_a_reused_name_once(tmp_path):
    values = [0.5, 0.25, 0.5, 0.75]  # "{score}" names one folder twice
    checkpoint = ModelCheckpoint(tmp_path / "s{score}", monitor="score", max_to_keep=2)
    fit(make_model(), [scores(values), checkpoint], epochs=4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s0.5", "s0.75"]


def test_max_to_keep_continues_after_a_resume(tmp_path):
    """The list of written checkpoints is part of the callback's backed-up state: the
    resumed run deletes the interrupted run's old checkpoints too."""
    from elegy.callbacks import BackupAndRestore, Callback

    class Interrupt(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 3:
                raise KeyboardInterrupt

    def attempt(*extra):
        checkpoint = ModelCheckpoint(tmp_path / "ckpt" / "e{epoch}", max_to_keep=2)
        fit(make_model(), [checkpoint, BackupAndRestore(tmp_path / "backup"), *extra], epochs=5)

    with pytest.raises(KeyboardInterrupt):
        attempt(Interrupt())
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["e2", "e3"]
    attempt()
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["e4", "e5"]


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2"])
def test_max_to_keep_must_be_a_positive_integer(bad):
    with pytest.raises((ValueError, TypeError), match="max_to_keep must be an integer >= 1"):
        ModelCheckpoint("ckpt", max_to_keep=bad)

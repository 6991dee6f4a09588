"""EarlyStopping, TerminateOnNaN, CSVLogger and LambdaCallback, checked through fit."""

import csv

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from tests.conftest import blobs, mlp_forward

import elegy

X, Y = blobs(64)


class ScriptedScore(elegy.Model):
    """Logs `score`, a value chosen per epoch (from `states.epoch`), to drive the callbacks."""

    def __init__(self, scores, **kwargs):
        super().__init__(
            mlp_forward,
            loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
            optimizer=optax.sgd(0.1),
            **kwargs,
        )
        self.scores = jnp.asarray(scores, jnp.float32)

    def train_step(self, x, y_true, sample_weight, class_weight, states, initializing, training, mask):
        epoch = states.epoch
        logs, states = super().train_step(
            x, y_true, sample_weight, class_weight, states, initializing, training, mask
        )
        return {**logs, "score": self.scores[jnp.minimum(epoch, len(self.scores) - 1)]}, states


def record_params():
    snapshots = []
    callback = elegy.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: snapshots.append(jax.device_get(callback.model.states.net_params))
    )
    return callback, snapshots


def test_early_stopping_waits_patience_epochs_and_restores_the_best_weights():
    model = ScriptedScore([3.0, 1.0, 2.0, 4.0, 5.0, 0.5])
    recorder, snapshots = record_params()
    stopper = elegy.callbacks.EarlyStopping(monitor="score", patience=2, restore_best_weights=True)
    history = model.fit(X, Y, epochs=6, verbose=0, callbacks=[recorder, stopper])
    assert history.epoch == [0, 1, 2, 3]  # best at epoch 1; epochs 2 and 3 do not improve
    assert stopper.best_epoch == 1 and stopper.stopped_epoch == 3
    jax.tree_util.tree_map(
        np.testing.assert_array_equal, jax.device_get(model.states.net_params), snapshots[1]
    )
    best = elegy.Model(mlp_forward)
    best.states = model.states.update(net_params=snapshots[1])
    np.testing.assert_array_equal(model.predict(X), best.predict(X))


@pytest.mark.parametrize(
    "kwargs, scores, stopped_after",
    [
        ({"min_delta": 0.5}, [3.0, 2.8, 2.6, 2.4], 1),  # improvements smaller than min_delta
        ({"mode": "max"}, [1.0, 2.0, 1.5, 3.0], 2),  # maximised
        ({"patience": 2}, [3.0, 1.0, 1.0, 1.0, 1.0], 3),  # two epochs without improvement
        ({"patience": 2, "baseline": 0.5}, [3.0, 1.0, 1.0, 1.0], 2),  # improving, never beating it
        ({"start_from_epoch": 2}, [3.0, 4.0, 5.0, 6.0], 3),  # the first two epochs do not count
    ],
)
def test_early_stopping_options(kwargs, scores, stopped_after):
    stopper = elegy.callbacks.EarlyStopping(monitor="score", **{"patience": 0, **kwargs})
    history = ScriptedScore(scores).fit(X, Y, epochs=len(scores) + 2, verbose=0, callbacks=[stopper])
    assert history.epoch[-1] == stopped_after


def test_early_stopping_skips_epochs_without_validation_when_validation_freq_is_set():
    stopper = elegy.callbacks.EarlyStopping(monitor="val_loss", patience=10)
    history = ScriptedScore([1.0]).fit(
        X, Y, epochs=4, validation_data=(X, Y), validation_freq=2, verbose=0, callbacks=[stopper]
    )
    assert history.epoch == [0, 1, 2, 3] and len(history.history["val_loss"]) == 2


def test_early_stopping_names_a_missing_monitor():
    with pytest.raises(KeyError, match=r"EarlyStopping monitors 'val_loss', which is not in the logs"):
        ScriptedScore([1.0]).fit(X, Y, epochs=2, verbose=0, callbacks=[elegy.callbacks.EarlyStopping()])


class NaNFromSecondEpoch(elegy.Model):
    def test_step(self, x, y_true, states, initializing, mask):
        x = x.reshape(x.shape[0], -1)
        w = jnp.zeros((x.shape[1], 3)) if initializing else states.net_params
        loss = jnp.sum(optax.softmax_cross_entropy_with_integer_labels(x @ w, y_true) * mask) / jnp.sum(mask)
        loss = jnp.where(states.epoch >= 1, jnp.nan, loss)
        return loss, {"loss": loss}, states.update(net_params=w)


def test_terminate_on_nan_lets_the_nan_epoch_end_then_stops():
    ended = []
    history = NaNFromSecondEpoch(optimizer=optax.sgd(0.1)).fit(
        X,
        Y,
        epochs=5,
        verbose=0,
        callbacks=[
            elegy.callbacks.TerminateOnNaN(),
            elegy.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: ended.append(e)),
        ],
    )
    assert history.epoch == [0, 1] and ended == [0, 1]
    assert np.isfinite(history.history["loss"][0]) and np.isnan(history.history["loss"][1])


def test_csv_logger_writes_history_and_appends_without_a_second_header(tmp_path):
    path = tmp_path / "log.csv"
    model = elegy.Model(
        mlp_forward,
        loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        optimizer=optax.adam(1e-2),
    )
    first = model.fit(X, Y, epochs=2, verbose=0, callbacks=[elegy.callbacks.CSVLogger(path)])
    second = model.fit(X, Y, epochs=1, verbose=0, callbacks=[elegy.callbacks.CSVLogger(path, append=True)])
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [row["epoch"] for row in rows] == ["0", "1", "0"]
    expected = first.history["loss"] + second.history["loss"]
    np.testing.assert_allclose([float(row["loss"]) for row in rows], expected, rtol=1e-6)
    assert list(rows[0]) == ["epoch", "accuracy", "loss"]


def test_lambda_callback_calls_the_given_hooks_with_their_arguments():
    calls = []
    callback = elegy.callbacks.LambdaCallback(
        on_train_begin=lambda logs: calls.append("train_begin"),
        on_epoch_end=lambda epoch, logs: calls.append(("epoch_end", epoch, sorted(logs))),
        on_train_batch_end=lambda batch, logs: calls.append(("batch", batch)),
    )
    elegy.Model(
        mlp_forward,
        loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer=optax.sgd(0.1),
    ).fit(X, Y, batch_size=32, epochs=1, verbose=0, callbacks=[callback])
    assert calls == ["train_begin", ("batch", 0), ("batch", 1), ("epoch_end", 0, ["loss"])]
    with pytest.raises(TypeError, match="unknown hook 'on_epoch_finish'"):
        elegy.callbacks.LambdaCallback(on_epoch_finish=print)


def test_keras_older_batch_hook_names_are_called():
    seen = []

    class OldStyle(elegy.callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            seen.append(batch)

    lambda_seen = []
    ScriptedScore([1.0]).fit(
        X,
        Y,
        batch_size=32,
        epochs=1,
        verbose=0,
        callbacks=[
            OldStyle(),
            elegy.callbacks.LambdaCallback(on_batch_end=lambda b, logs: lambda_seen.append(b)),
        ],
    )
    assert seen == [0, 1] and lambda_seen == [0, 1]

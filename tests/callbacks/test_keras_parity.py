"""Where the README promises Keras's signatures: `return_dict`, the callbacks' `verbose`
messages, `predict(verbose="auto")`, `validation_freq` as a list of epochs, and
callbacks that add entries to the logs the later ones see. Each through a real `fit`."""

import re

import optax
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tests.conftest import blobs, mlp_forward

import elegy
from elegy.callbacks import Callback, EarlyStopping, ReduceLROnPlateau, TensorBoard

X, Y = blobs(64)


def make_model(optimizer=None, metrics=("accuracy",)):
    return elegy.Model(
        mlp_forward,
        loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=list(metrics),
        optimizer=optimizer or optax.adam(1e-2),
    )


# ---------------------------------------------------------------- return_dict
def test_return_dict_false_gives_keras_s_list_the_loss_first():
    model = make_model()
    as_dict = model.evaluate(X, Y, verbose=0)
    assert list(as_dict) == ["loss", "accuracy"]
    assert model.evaluate(X, Y, verbose=0, return_dict=False) == [as_dict["loss"], as_dict["accuracy"]]
    batch = model.test_on_batch(X[:16], Y[:16])
    assert model.test_on_batch(X[:16], Y[:16], return_dict=False) == [batch["loss"], batch["accuracy"]]
    trained = model.train_on_batch(X[:16], Y[:16], return_dict=False)
    assert isinstance(trained, list) and len(trained) == 2 and trained[0] == pytest.approx(batch["loss"])


def test_return_dict_false_with_only_a_loss_is_the_loss_itself():
    model = make_model(metrics=())
    loss = model.evaluate(X, Y, verbose=0, return_dict=False)
    assert isinstance(loss, float) and loss == model.evaluate(X, Y, verbose=0)["loss"]
    assert isinstance(model.train_on_batch(X[:16], Y[:16], return_dict=False), float)


# ---------------------------------------------------------------- verbose
def test_early_stopping_verbose_prints_keras_s_messages(capsys):
    """A learning rate of 0 never improves the loss: with patience 1, training stops after
    the second epoch and restores the first's weights."""
    model = make_model(optax.sgd(0.0))
    stopping = EarlyStopping(monitor="loss", min_delta=1e-3, patience=1, restore_best_weights=True, verbose=1)
    model.fit(X, Y, epochs=5, verbose=0, callbacks=[stopping])
    assert capsys.readouterr().out.splitlines() == [
        "Restoring model weights from the end of the best epoch: 1.",
        "Epoch 2: early stopping",
    ]
    model.fit(X, Y, epochs=5, verbose=0, callbacks=[EarlyStopping(monitor="loss", patience=1)])
    assert capsys.readouterr().out == ""  # verbose=0, the default: silent


def test_reduce_lr_on_plateau_verbose_prints_the_new_rate(capsys):
    model = make_model(optax.inject_hyperparams(optax.sgd)(learning_rate=1e-9))
    reduce = ReduceLROnPlateau(monitor="loss", patience=1, factor=0.5, verbose=1)
    model.fit(X, Y, epochs=3, verbose=0, callbacks=[reduce])
    rates = re.findall(
        r"Epoch (\d+): ReduceLROnPlateau reducing learning rate to (\S+)\.", capsys.readouterr().out
    )
    assert [epoch for epoch, _ in rates] == ["2", "3"]
    assert float(rates[-1][1]) == pytest.approx(0.25e-9, rel=1e-6)
    assert float(model.states.optimizer_states.hyperparams["learning_rate"]) == pytest.approx(
        0.25e-9, rel=1e-6
    )


def test_learning_rate_scheduler_verbose_prints_each_rate(capsys):
    model = make_model(optax.inject_hyperparams(optax.sgd)(learning_rate=0.1))
    halve = elegy.callbacks.LearningRateScheduler(lambda epoch, rate: 0.1 / 2**epoch, verbose=1)
    model.fit(X, Y, epochs=2, verbose=0, callbacks=[halve])
    assert capsys.readouterr().out.split("\n") == [
        "",
        "Epoch 1: LearningRateScheduler setting learning rate to 0.1.",
        "",
        "Epoch 2: LearningRateScheduler setting learning rate to 0.05.",
        "",
    ]


def test_predict_shows_a_bar_by_default_as_keras_does(capsys):
    model = make_model()
    model.predict(X, batch_size=32)
    assert "2/2" in capsys.readouterr().out
    model.predict(X, batch_size=32, verbose=0)
    assert capsys.readouterr().out == ""


# ---------------------------------------------------------------- validation_freq
class ValidatedEpochs(Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_end(self, epoch, logs=None):
        if "val_loss" in logs:
            self.epochs.append(epoch)


def test_validation_freq_as_a_list_of_epochs():
    seen = ValidatedEpochs()
    history = make_model().fit(
        X, Y, epochs=4, verbose=0, validation_data=(X, Y), validation_freq=[1, 3], callbacks=[seen]
    )
    assert seen.epochs == [0, 2]  # Keras counts the listed epochs from 1
    assert len(history.history["val_loss"]) == 2 and len(history.history["loss"]) == 4


@pytest.mark.parametrize("bad", [[], [0, 2], "2", 0])
def test_a_bad_validation_freq_names_the_argument(bad):
    with pytest.raises(ValueError, match="validation_freq"):
        make_model().fit(X, Y, epochs=2, verbose=0, validation_data=(X, Y), validation_freq=bad)


# ---------------------------------------------------------------- logs a callback adds
class LogLearningRate(Callback):
    def on_epoch_end(self, epoch, logs=None):
        logs["lr"] = 0.5 / (epoch + 1)


def test_a_callback_s_added_logs_reach_the_later_callbacks_history_and_the_bar(tmp_path, capsys):
    history = make_model().fit(
        X, Y, epochs=2, verbose=2, callbacks=[LogLearningRate(), TensorBoard(tmp_path)]
    )
    assert history.history["lr"] == [0.5, 0.25]
    events = EventAccumulator(str(tmp_path / "train")).Reload()
    assert [(point.step, point.value) for point in events.Scalars("epoch_lr")] == [(0, 0.5), (1, 0.25)]
    lines = [line for line in capsys.readouterr().out.splitlines() if "loss" in line]
    assert "lr: 0.5" in lines[0] and "lr: 0.25" in lines[1]

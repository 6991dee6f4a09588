"""BackupAndRestore with the recipes: the EMA weights, the loss scale and the gradients
accumulated so far are States, so a fit interrupted inside a group of accumulated
batches and resumed ends bit for bit where the uninterrupted one does."""

import jax
import numpy as np
import optax
import pytest
from tests.conftest import blobs, bn_dropout_forward

import elegy
from elegy.callbacks import BackupAndRestore, Callback

X, Y = blobs(100)  # batch 16: 7 batches per epoch, in groups of 3, 3 and 1


def make_model():
    return elegy.Model(
        bn_dropout_forward,
        loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer=optax.adam(2e-2),
        steps_per_execution=1,
        ema_decay=0.9,
        dtype_policy="mixed_float16",
        gradient_accumulation_steps=3,
    )


class Interrupt(Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if (self.epoch, batch) == (1, 5):  # the last backup, after batch 3, is inside a group
            raise KeyboardInterrupt


class AccumulatedAtBackup(Callback):
    """How many batches the sums held when the backup after batch 3 of epoch 1 was made."""

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == (1, 3):
            self.batches = int(self.model.states.accumulated["batches"])


def test_a_resumed_fit_keeps_the_average_the_loss_scale_and_the_sums(tmp_path):
    expected, probe = make_model(), AccumulatedAtBackup()
    expected.fit(X, Y, batch_size=16, epochs=3, verbose=0, callbacks=[probe])
    assert probe.batches == 1
    with pytest.raises(KeyboardInterrupt):
        make_model().fit(
            X,
            Y,
            batch_size=16,
            epochs=3,
            verbose=0,
            callbacks=[Interrupt(), BackupAndRestore(tmp_path, save_freq=2)],
        )
    resumed = make_model()
    resumed.fit(X, Y, batch_size=16, epochs=3, verbose=0, callbacks=[BackupAndRestore(tmp_path, save_freq=2)])
    assert {"ema_params", "loss_scale", "accumulated"} <= set(resumed.states)
    for name in ("ema_params", "loss_scale", "accumulated", "net_params", "optimizer_states"):
        pairs = zip(
            jax.tree_util.tree_leaves(jax.device_get(resumed.states[name])),
            jax.tree_util.tree_leaves(jax.device_get(expected.states[name])),
            strict=True,
        )
        assert all(np.array_equal(a, b) for a, b in pairs), name

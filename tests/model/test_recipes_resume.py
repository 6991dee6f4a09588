"""BackupAndRestore with the recipes: the EMA weights and the loss scale are States, so an
interrupted and resumed fit ends bit for bit where the uninterrupted one does."""

import jax
import numpy as np
import optax
import pytest
from tests.conftest import blobs, bn_dropout_forward

import elegy
from elegy.callbacks import BackupAndRestore, Callback

X, Y = blobs(100)  # batch 16: 7 batches per epoch


def make_model():
    return elegy.Model(
        bn_dropout_forward,
        loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer=optax.adam(2e-2),
        steps_per_execution=1,
        ema_decay=0.9,
        dtype_policy="mixed_float16",
    )


class Interrupt(Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if (self.epoch, batch) == (1, 4):
            raise KeyboardInterrupt


def test_a_resumed_fit_keeps_the_average_and_the_loss_scale(tmp_path):
    expected = make_model()
    expected.fit(X, Y, batch_size=16, epochs=3, verbose=0)
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
    assert {"ema_params", "loss_scale"} <= set(resumed.states)
    for name in ("ema_params", "loss_scale", "net_params", "optimizer_states"):
        pairs = zip(
            jax.tree_util.tree_leaves(jax.device_get(resumed.states[name])),
            jax.tree_util.tree_leaves(jax.device_get(expected.states[name])),
            strict=True,
        )
        assert all(np.array_equal(a, b) for a, b in pairs), name

"""LearningRateScheduler and ReduceLROnPlateau on inject_hyperparams optimizers, through fit."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from tests.conftest import blobs, mlp_forward

import elegy

X, Y = blobs(64)  # two batches of 32 per epoch


class Scripted(elegy.Model):
    """Logs `score`, chosen per epoch from `states.epoch`, and counts train traces."""

    def __init__(self, optimizer, scores=(0.0,)):
        super().__init__(
            mlp_forward,
            loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
            optimizer=optimizer,
        )
        self.scores = jnp.asarray(scores, jnp.float32)
        self.train_traces = 0

    def train_step(self, x, y_true, sample_weight, class_weight, states, initializing, training, mask):
        self.train_traces += not initializing
        epoch = states.epoch
        logs, states = super().train_step(
            x, y_true, sample_weight, class_weight, states, initializing, training, mask
        )
        return {**logs, "score": self.scores[jnp.minimum(epoch, len(self.scores) - 1)]}, states


def injected_adam(learning_rate=0.01):
    return optax.inject_hyperparams(optax.adam)(learning_rate=learning_rate)


def test_scheduler_sets_each_epochs_rate_without_retracing():
    model = Scripted(injected_adam())
    scheduler = elegy.callbacks.LearningRateScheduler(lambda epoch, lr: 0.01 * 0.5**epoch)
    history = model.fit(X, Y, batch_size=32, epochs=4, verbose=0, callbacks=[scheduler])
    np.testing.assert_allclose(history.history["learning_rate"], [0.01 * 0.5**e for e in range(4)], rtol=1e-6)
    programs = [key for key in model._compiled_steps.keys() if key[0] == "train"]
    assert model.train_traces == len(programs)  # one trace per program, none per new rate


def test_scheduler_changes_training_like_the_same_rates_set_by_hand():
    rates = [0.01, 0.002]
    scheduled = Scripted(injected_adam(rates[0]))
    scheduled.fit(
        X,
        Y,
        batch_size=32,
        epochs=2,
        shuffle=False,
        verbose=0,
        callbacks=[elegy.callbacks.LearningRateScheduler(lambda epoch, lr: rates[epoch])],
    )
    by_hand = Scripted(optax.adam(optax.piecewise_constant_schedule(rates[0], {2: rates[1] / rates[0]})))
    by_hand.fit(X, Y, batch_size=32, epochs=2, shuffle=False, verbose=0)
    jax.tree_util.tree_map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),  # float32 rounding
        jax.device_get(scheduled.states.net_params),
        jax.device_get(by_hand.states.net_params),
    )


def test_reduce_on_plateau_multiplies_the_rate_after_patience_epochs():
    model = Scripted(injected_adam(), scores=[5.0, 4.0, 4.0, 4.0, 4.0, 4.0])
    reducer = elegy.callbacks.ReduceLROnPlateau(monitor="score", factor=0.5, patience=2)
    history = model.fit(X, Y, batch_size=32, epochs=6, verbose=0, callbacks=[reducer])
    np.testing.assert_allclose(
        history.history["learning_rate"], [0.01, 0.01, 0.01, 0.01, 0.005, 0.005], rtol=1e-6
    )


def test_reduce_on_plateau_respects_min_lr_and_cooldown():
    model = Scripted(injected_adam(), scores=[5.0] * 6)
    reducer = elegy.callbacks.ReduceLROnPlateau(
        monitor="score", factor=0.1, patience=1, cooldown=1, min_lr=0.0005
    )
    history = model.fit(X, Y, batch_size=32, epochs=6, verbose=0, callbacks=[reducer])
    # Keras's order: the epoch that ends a cooldown also counts towards patience.
    # end of 0: best; 1: reduce to 1e-3, cooldown 1; 2: cooldown ends, reduce to max(1e-4, 5e-4);
    # later: already at min_lr. Each new rate shows in the next epoch's log.
    np.testing.assert_allclose(
        history.history["learning_rate"], [0.01, 0.01, 0.001, 0.0005, 0.0005, 0.0005], rtol=1e-6
    )


def test_an_optimizer_without_injected_learning_rate_is_a_clear_error():
    scheduler = elegy.callbacks.LearningRateScheduler(lambda epoch, lr: lr)
    with pytest.raises(
        ValueError, match=r"LearningRateScheduler needs an optimizer built with optax.inject_hyperparams"
    ):
        Scripted(optax.adam(0.01)).fit(X, Y, epochs=2, verbose=0, callbacks=[scheduler])


def test_a_scheduled_learning_rate_cannot_be_overridden_silently():
    schedule = optax.exponential_decay(0.01, 1, 0.5)
    scheduler = elegy.callbacks.LearningRateScheduler(lambda epoch, lr: 0.5)
    with pytest.raises(ValueError, match=r"follows a schedule"):
        Scripted(injected_adam(schedule)).fit(X, Y, epochs=3, verbose=0, callbacks=[scheduler])


def test_scheduler_applies_to_the_first_epoch_of_a_fresh_model():
    scheduler = elegy.callbacks.LearningRateScheduler(lambda epoch, lr: 0.0)
    model = Scripted(injected_adam(0.1))
    model.init(X, Y)
    before = jax.device_get(model.states.net_params)
    fresh = Scripted(injected_adam(0.1))
    history = fresh.fit(X, Y, batch_size=32, epochs=2, verbose=0, callbacks=[scheduler])
    assert history.history["learning_rate"] == [0.0, 0.0]
    jax.tree_util.tree_map(np.testing.assert_array_equal, before, jax.device_get(fresh.states.net_params))


def test_scheduler_and_reduce_on_plateau_work_together():
    model = Scripted(injected_adam(0.01), scores=[1.0] * 4)
    callbacks = [
        elegy.callbacks.ReduceLROnPlateau(monitor="score", patience=1, factor=0.5),
        elegy.callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.9),
    ]
    history = model.fit(X, Y, batch_size=32, epochs=3, verbose=0, callbacks=callbacks)
    # epoch 0: 0.009; end of 1: halved; epoch 2: 0.9 x that
    np.testing.assert_allclose(history.history["learning_rate"], [0.009, 0.0081, 0.003645], rtol=1e-5)

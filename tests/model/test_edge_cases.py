"""Behaviours found by review: each of these once gave a wrong number or a crash."""

import dataclasses
import functools

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from tests.conftest import blobs, mlp_forward

import elegy

SCE = elegy.losses.SparseCategoricalCrossentropy


def make_model(cls=elegy.Model, module=mlp_forward, **kwargs):
    kwargs.setdefault("loss", SCE(from_logits=True))
    kwargs.setdefault("metrics", ["accuracy"])
    kwargs.setdefault("optimizer", optax.adam(1e-2))
    return cls(module, **kwargs)


def test_assigned_states_do_not_leak_metric_totals_into_evaluate_or_fit():
    x, y = blobs(100)
    trained = make_model()
    trained.fit(x, y, epochs=2, batch_size=10, verbose=0)
    copy = make_model()
    copy.states = trained.states
    assert copy.evaluate(x, y, verbose=0) == pytest.approx(trained.evaluate(x, y, verbose=0), rel=1e-6)
    copy.fit(x, y, epochs=1, batch_size=10, verbose=0)
    assert float(copy.states.metrics_states["losses"]["loss"]["count"]) == 100.0


def test_assigning_prediction_only_states_lets_fit_fill_the_rest():
    x, y = blobs(64)
    source = make_model()
    source.init(x[:8])
    target = make_model()
    target.states = source.states
    target.fit(x, y, epochs=1, verbose=0)
    assert target.states.optimizer_states is not None


def test_an_override_taking_kwargs_can_call_super():
    class Passthrough(elegy.Model):
        def test_step(self, **kwargs):
            return super().test_step(**kwargs)

        def train_step(self, *args, **kwargs):
            return super().train_step(*args, **kwargs)

    x, y = blobs(64)
    model = make_model(Passthrough)
    history = model.fit(x, y, epochs=2, verbose=0)
    assert history.history["loss"][1] < history.history["loss"][0]


def test_super_without_mask_still_counts_only_real_rows():
    class SevenParameters(elegy.Model):
        def test_step(self, x, y_true, sample_weight, class_weight, states, initializing, training):
            return super().test_step(x, y_true, sample_weight, class_weight, states, initializing, training)

    x, y = blobs(10)
    default, override = make_model(), make_model(SevenParameters)
    for model in (default, override):
        model.init(x, y)
    exact = default.evaluate(x, y, batch_size=10, verbose=0)
    assert override.evaluate(x, y, batch_size=8, verbose=0) == pytest.approx(exact, rel=1e-5)


class NoisyInputs(elegy.Model):
    """Draws a key before pred_step runs: initialization must not depend on it."""

    def test_step(self, x, y_true, sample_weight, class_weight, states, initializing, training, mask, rng):
        x = x + 0.01 * jax.random.normal(rng.next(), x.shape)
        return super().test_step(x, y_true, sample_weight, class_weight, states, initializing, training, mask)


def test_initial_states_do_not_depend_on_keys_drawn_by_an_override():
    x, y = blobs(32)
    fit_first, predict_first = make_model(NoisyInputs), make_model(NoisyInputs)
    fit_first.init(x, y)
    predict_first.predict(x)
    predict_first.init(x, y)
    predicted = dict(predict_first.states)
    # predict drew from the evaluation stream (it moves on); everything else is as init left it
    assert not np.array_equal(predicted.pop("eval_rng").key, fit_first.states.eval_rng.key)
    fitted = dict(fit_first.states)
    del fitted["eval_rng"]
    jax.tree_util.tree_map(np.testing.assert_array_equal, jax.device_get(fitted), jax.device_get(predicted))


def test_rng_after_super_train_step_never_repeats_a_key():
    class Draws(elegy.Model):
        def train_step(
            self, x, y_true, sample_weight, class_weight, states, initializing, training, mask, rng
        ):
            logs, states = super().train_step(
                x, y_true, sample_weight, class_weight, states, initializing, training, mask
            )
            same = jnp.all(rng.next() == states.rng.next()).astype(jnp.float32)
            return {**logs, "same_key": same}, states

    x, y = blobs(64)
    history = make_model(Draws).fit(x, y, epochs=2, batch_size=64, verbose=0)
    assert history.history["same_key"] == [0.0, 0.0]


@pytest.mark.parametrize("stateful", [False, True])
def test_without_apply_rng_modules_train(stateful):
    x, y = blobs(64)
    transform = hk.transform_with_state if stateful else hk.transform
    transformed = hk.without_apply_rng(transform(mlp_forward))
    model = make_model(module=transformed)
    model.fit(x, y, epochs=1, verbose=0)
    states = model.states
    if stateful:
        by_hand, _ = transformed.apply(states.net_params, states.net_states, x)
    else:
        by_hand = transformed.apply(states.net_params, x)
    np.testing.assert_allclose(model.predict(x), by_hand, rtol=1e-5, atol=1e-6)


def test_run_eagerly_steps_see_jax_arrays_of_canonical_dtype():
    seen = {}

    class Inspect(elegy.Model):
        def pred_step(self, x, states, initializing, training):
            seen["type"], seen["dtype"] = type(x), x.dtype
            return super().pred_step(x.at[:, 0].set(0.0), states, initializing, training)

    x, y = blobs(32)
    make_model(Inspect, run_eagerly=True).fit(x.astype(np.float64), y, epochs=1, verbose=0)
    assert issubclass(seen["type"], jax.Array) and seen["dtype"] == jnp.float32


def test_one_dimensional_predictions_are_per_sample_values():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 4)).astype(np.float32)
    target = 2 * x[:, 0]
    weights = np.where(np.arange(100) < 50, 1.0, 0.0).astype(np.float32)
    model = elegy.Model(lambda x: hk.Linear(1)(x)[:, 0], loss="mse", optimizer=optax.sgd(0.0))
    model.init(x, target)
    predictions = model.predict(x)
    logs = model.evaluate(x, target, sample_weight=weights, batch_size=32, verbose=0)
    assert logs["loss"] == pytest.approx(np.sum(weights * (predictions - target) ** 2) / 100, rel=1e-5)


def test_keras_shaped_sample_weight_of_n_by_1_is_accepted():
    x, y = blobs(40)
    weights = np.random.default_rng(1).uniform(size=(40, 1)).astype(np.float32)
    model = make_model()
    model.init(x, y)
    assert model.evaluate(x, y, sample_weight=weights, verbose=0) == pytest.approx(
        model.evaluate(x, y, sample_weight=weights[:, 0], verbose=0), rel=1e-6
    )


def test_bfloat16_inputs_are_accepted():
    x, _ = blobs(16)
    out = make_model().predict(jnp.asarray(x, jnp.bfloat16))
    assert out.shape == (16, 3)


def test_steps_per_epoch_walks_through_all_the_data():
    x, y = blobs(100)
    ids = np.arange(100, dtype=np.float32)

    class SumIds(elegy.Model):
        """Logs the sum of the real rows' ids (column 0) of each batch."""

        def train_step(self, x, y_true, sample_weight, class_weight, states, initializing, training, mask):
            logs, states = super().train_step(
                x, y_true, sample_weight, class_weight, states, initializing, training, mask
            )
            return {**logs, "id_sum": jnp.sum(x[:, 0] * mask)}, states

    total = 0.0

    class Accumulate(elegy.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            nonlocal total
            total += logs["id_sum"]

    model = make_model(SumIds, module=lambda v: hk.nets.MLP([8, 3])(v[:, 1:]))
    with_ids = np.concatenate([ids[:, None], x], axis=1)
    model.fit(
        with_ids,
        y,
        batch_size=10,
        epochs=5,
        steps_per_epoch=2,
        shuffle=False,
        callbacks=[Accumulate()],
        verbose=0,
    )
    assert total == pytest.approx(ids.sum())  # 5 epochs x 2 batches x 10 rows: every row once


def test_validation_generator_errors_name_validation_arguments():
    x, y = blobs(40)
    generator = ((x[i : i + 20], y[i : i + 20]) for i in range(0, 40, 20))
    with pytest.raises(ValueError, match=r"validation_data produced no batches.*pass validation_steps"):
        make_model().fit(x, y, epochs=2, validation_data=generator, verbose=0)
    with pytest.raises(ValueError, match=r"steps_per_epoch must be an integer >= 1"):
        make_model().fit(x, y, steps_per_epoch=0, verbose=0)


def test_metric_and_loss_names_are_readable_for_lambdas_partials_and_objects():
    @dataclasses.dataclass
    class ScaledError:  # unhashable callable object
        scale: float = 2.0

        def __call__(self, y_true, y_pred):
            return self.scale * jnp.mean(y_pred**2, axis=-1)

    def mean_logit(y_true, y_pred, shift):
        return jnp.mean(y_pred, axis=-1) + shift

    x, y = blobs(32)
    model = make_model(
        loss=[SCE(from_logits=True), ScaledError()],
        metrics=[lambda t, p: jnp.max(p, -1), functools.partial(mean_logit, shift=1.0)],
    )
    model.init(x, y)
    logs = model.evaluate(x, y, verbose=0)
    assert list(logs) == [
        "loss",
        "sparse_categorical_crossentropy_loss",
        "scaled_error_loss",
        "lambda",
        "mean_logit",
    ]
    assert logs["scaled_error_loss"] == pytest.approx(2 * np.mean(model.predict(x) ** 2), rel=1e-5)


def test_a_positional_loss_without_targets_names_y():
    x, _ = blobs(16)
    model = make_model(loss=lambda t, p: jnp.mean((p - t) ** 2, axis=-1))
    with pytest.raises(ValueError, match=r"needs targets but y is None"):
        model.evaluate(x, verbose=0)


def test_stop_training_in_a_batch_hook_stops_after_that_batch():
    x, y = blobs(100)
    batches = []

    class StopAtThird(elegy.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            batches.append(batch)
            if batch == 2:
                self.model.stop_training = True

    history = make_model().fit(x, y, epochs=3, batch_size=10, callbacks=[StopAtThird()], verbose=0)
    assert batches == [0, 1, 2] and history.epoch == [0]

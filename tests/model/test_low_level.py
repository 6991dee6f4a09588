"""Overriding one step of the chain keeps fit, evaluate and predict working."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from tests.conftest import blobs, mlp_forward

import elegy

SCE = elegy.losses.SparseCategoricalCrossentropy


def images(n=256, classes=10, seed=0):
    """Separable 'images' with pixel values in [0, 255], as the design's example expects."""
    rng = np.random.default_rng(seed)
    prototypes = rng.uniform(0, 255, size=(classes, 6, 6))
    y = rng.integers(0, classes, size=n)
    x = np.clip(prototypes[y] + rng.normal(0, 20, size=(n, 6, 6)), 0, 255)
    return x.astype(np.float32), y.astype(np.int32)


class LinearClassifier(elegy.Model):
    """The design document's example, with `rng` declared as the issue asks."""

    def test_step(self, x, y_true, states, initializing, rng):
        x = jnp.reshape(x, (x.shape[0], -1)) / 255
        if initializing:
            w = jax.random.uniform(jax.random.PRNGKey(42), shape=[np.prod(x.shape[1:]), 10])
            b = jax.random.uniform(jax.random.PRNGKey(69), shape=[1])
        else:
            w, b = states.net_params
        logits = jnp.dot(x, w) + b
        labels = jax.nn.one_hot(y_true, 10)
        loss = jnp.mean(-jnp.sum(labels * jax.nn.log_softmax(logits), axis=-1))
        accuracy = jnp.mean(jnp.argmax(logits, axis=-1) == y_true)
        logs = dict(accuracy=accuracy, loss=loss)
        return loss, logs, states.update(rng=rng, net_params=(w, b))


class LinearClassifierWithoutRng(elegy.Model):
    def test_step(self, x, y_true, states, initializing):
        x = jnp.reshape(x, (x.shape[0], -1)) / 255
        if initializing:
            w = jax.random.uniform(jax.random.PRNGKey(42), shape=[np.prod(x.shape[1:]), 10])
            b = jax.random.uniform(jax.random.PRNGKey(69), shape=[1])
        else:
            w, b = states.net_params
        logits = jnp.dot(x, w) + b
        labels = jax.nn.one_hot(y_true, 10)
        loss = jnp.mean(-jnp.sum(labels * jax.nn.log_softmax(logits), axis=-1))
        accuracy = jnp.mean(jnp.argmax(logits, axis=-1) == y_true)
        return loss, dict(accuracy=accuracy, loss=loss), states.update(net_params=(w, b))


@pytest.mark.parametrize("cls", [LinearClassifier, LinearClassifierWithoutRng])
def test_design_example_trains_above_chance(cls):
    X_train, y_train = images()
    model = cls(optimizer=optax.adam(1e-3))
    history = model.fit(x=X_train, y=y_train, epochs=100, batch_size=64, verbose=0)
    assert history.history["accuracy"][0] < 0.5
    assert model.evaluate(X_train, y_train, batch_size=64, verbose=0)["accuracy"] > 0.9


class LinearPredStep(elegy.Model):
    """Only pred_step overridden: the default loss, metrics and optimizer do the rest."""

    def pred_step(self, x, states, initializing):
        if initializing:
            params = {"w": jnp.zeros((x.shape[-1], 3)), "b": jnp.zeros(3)}
        else:
            params = states.net_params
        return x @ params["w"] + params["b"], states.update(net_params=params)


class ZeroGradients(elegy.Model):
    """Only grad_step overridden: it discards the gradients, so nothing may change."""

    def grad_step(self, x, y_true, sample_weight, class_weight, states, initializing, training):
        loss, logs, states, grads = super().grad_step(
            x, y_true, sample_weight, class_weight, states, initializing, training
        )
        grads = jax.tree_util.tree_map(jnp.zeros_like, grads)
        return elegy.GradStep(loss, logs, states, grads)


class CountingTrainStep(elegy.Model):
    """Only train_step overridden: it adds a log entry of its own."""

    def train_step(self, x, y_true, states, initializing, mask):
        logs, states = super().train_step(x, y_true, None, None, states, initializing, True, mask)
        return {**logs, "real_rows": jnp.sum(mask)}, states


def _fit_evaluate_predict(model):
    x, y = blobs(100)
    history = model.fit(x, y, epochs=3, batch_size=32, verbose=0)
    logs = model.evaluate(x, y, verbose=0)
    predictions = model.predict(x)
    return x, y, history, logs, predictions


def test_overriding_pred_step_alone():
    model = LinearPredStep(loss=SCE(from_logits=True), metrics=["accuracy"], optimizer=optax.adam(0.1))
    x, y, history, logs, predictions = _fit_evaluate_predict(model)
    params = model.states.net_params
    np.testing.assert_allclose(predictions, x @ params["w"] + params["b"], rtol=1e-5, atol=1e-5)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert logs["accuracy"] > 0.8


def test_overriding_grad_step_alone():
    model = ZeroGradients(
        mlp_forward, loss=SCE(from_logits=True), metrics=["accuracy"], optimizer=optax.sgd(0.1)
    )
    x, y = blobs(100)
    model.init(x, y)
    before = jax.device_get(model.states.net_params)
    _, _, history, logs, predictions = _fit_evaluate_predict(model)
    jax.tree_util.tree_map(np.testing.assert_array_equal, before, jax.device_get(model.states.net_params))
    assert set(history.history) == {"loss", "accuracy"} and predictions.shape == (100, 3)


def test_overriding_train_step_alone_and_receiving_the_mask():
    model = CountingTrainStep(mlp_forward, loss=SCE(from_logits=True), optimizer=optax.adam(1e-2))
    _, _, history, logs, predictions = _fit_evaluate_predict(model)
    assert history.history["real_rows"] == [4.0, 4.0, 4.0]  # 100 = 3 * 32 + 4 real rows last
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert "loss" in logs and predictions.shape == (100, 3)


def test_test_step_override_gets_only_declared_arguments():
    received = {}

    class Spy(elegy.Model):
        def test_step(self, states, initializing, y_true):
            received[initializing] = y_true.shape
            return jnp.zeros(()), {}, states

    Spy().evaluate(np.zeros((10, 2)), np.zeros(10), verbose=0)
    assert received == {True: (10,), False: (10,)}


def test_rng_gives_fresh_keys_every_step_and_is_reproducible():
    class Noise(elegy.Model):
        def pred_step(self, x, states, rng):
            return jax.random.uniform(rng.next(), (x.shape[0],)), states

    x = np.zeros((6, 1), np.float32)
    first = Noise().predict(x, batch_size=2)
    assert len(set(first.tolist())) == 6  # three steps, never the same key twice
    np.testing.assert_array_equal(first, Noise().predict(x, batch_size=2))
    assert not np.allclose(first, Noise(seed=1).predict(x, batch_size=2))


@pytest.mark.parametrize("as_named_tuple", [True, False])
def test_named_tuples_and_plain_tuples_are_both_accepted(as_named_tuple):
    class Plain(elegy.Model):
        def pred_step(self, x, states):
            return elegy.PredStep(x * 2, states) if as_named_tuple else (x * 2, states)

    np.testing.assert_array_equal(Plain().predict(np.ones((3, 2), np.float32)), 2 * np.ones((3, 2)))


@pytest.mark.parametrize(
    "make_result, message",
    [
        (
            lambda loss, states: (loss, {}),
            r"test_step must return \(loss, logs, states\).*got a tuple of length 2",
        ),
        (lambda loss, states: (loss, {}, {}), r"its 'states' is a dict, expected elegy.States"),
        (lambda loss, states: (loss, [loss], states), r"its 'logs' is a list"),
        (lambda loss, states: {"loss": loss}, r"test_step must return .* got dict"),
    ],
    ids=["too short", "states not States", "logs not a mapping", "a dict"],
)
def test_a_step_returning_the_wrong_shape_names_the_method(make_result, message):
    class Wrong(elegy.Model):
        def test_step(self, x, states):
            return make_result(jnp.sum(x), states)

    with pytest.raises(TypeError, match=message):
        Wrong().evaluate(np.ones((4, 2), np.float32), np.ones(4), verbose=0)


def test_a_step_declaring_an_unknown_parameter_is_named():
    class Unknown(elegy.Model):
        def pred_step(self, x, states, labels):
            return x, states

    with pytest.raises(TypeError, match=r"Unknown.pred_step declares parameter\(s\) \['labels'\]"):
        Unknown().predict(np.ones((2, 2), np.float32))


def test_initializing_is_true_exactly_once():
    calls = []

    class Recorder(elegy.Model):
        def pred_step(self, x, states, initializing, training):
            calls.append((initializing, training))
            return super().pred_step(x, states, initializing, training)

    model = Recorder(mlp_forward, loss=SCE(from_logits=True), optimizer=optax.sgd(0.1))
    x, y = blobs(64)
    model.fit(x, y, epochs=2, verbose=0)
    model.evaluate(x, y, verbose=0)
    model.predict(x)
    assert calls == [(True, True), (False, True), (False, False), (False, False)]

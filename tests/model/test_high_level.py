"""The high-level API through fit/evaluate/predict, checked against independent oracles."""

import re

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from sklearn.metrics import accuracy_score
from tests.conftest import bn_dropout_forward, mlp_forward

import elegy

SCE = elegy.losses.SparseCategoricalCrossentropy


def make_model(module=mlp_forward, **kwargs):
    kwargs.setdefault("loss", SCE(from_logits=True))
    kwargs.setdefault("metrics", ["accuracy"])
    kwargs.setdefault("optimizer", optax.adam(1e-2))
    return elegy.Model(module, **kwargs)


def per_sample_ce(logits, y):
    return np.asarray(optax.softmax_cross_entropy_with_integer_labels(jnp.asarray(logits), jnp.asarray(y)))


def test_bn_dropout_mlp_trains_evaluates_and_predicts_like_haiku_by_hand(data):
    x, y = data
    model = make_model(bn_dropout_forward)
    model.fit(x, y, epochs=15, batch_size=32, verbose=0)
    assert model.evaluate(x, y, verbose=0)["accuracy"] > 0.9

    states = model.states
    by_hand, _ = hk.transform_with_state(bn_dropout_forward).apply(
        states.net_params, states.net_states, jax.random.PRNGKey(0), x, training=False
    )
    np.testing.assert_allclose(model.predict(x), by_hand, rtol=1e-5, atol=1e-5)


def test_batchnorm_statistics_move_in_training_only(data):
    x, y = data
    model = make_model(bn_dropout_forward)
    model.init(x[:32], y[:32])
    initial = jax.device_get(model.states.net_states)
    model.evaluate(x, y, verbose=0)
    model.predict(x)
    unchanged = jax.device_get(model.states.net_states)
    model.fit(x, y, epochs=1, verbose=0)
    trained = jax.device_get(model.states.net_states)
    jax.tree_util.tree_map(np.testing.assert_array_equal, initial, unchanged)
    mean_ema = "batch_norm/~/mean_ema"
    assert not np.allclose(trained[mean_ema]["average"], initial[mean_ema]["average"])


def test_fit_equals_a_hand_written_haiku_optax_loop_with_a_partial_batch(data):
    x, y = data  # 150 rows, batches of 32: the last one has 22 real rows
    model = make_model(metrics=None)
    model.init(x[:32], y[:32])
    params = jax.device_get(model.states.net_params)
    model.fit(x, y, epochs=2, batch_size=32, shuffle=False, verbose=0)

    net = hk.transform(mlp_forward)
    optimizer = optax.adam(1e-2)
    opt_state = optimizer.init(params)

    @jax.jit
    def update(p, opt_state, xb, yb):
        loss_fn = lambda q: optax.softmax_cross_entropy_with_integer_labels(net.apply(q, None, xb), yb).mean()
        updates, opt_state = optimizer.update(jax.grad(loss_fn)(p), opt_state, p)
        return optax.apply_updates(p, updates), opt_state

    for _ in range(2):
        for start in range(0, len(x), 32):
            params, opt_state = update(params, opt_state, x[start : start + 32], y[start : start + 32])
    jax.tree_util.tree_map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
        jax.device_get(model.states.net_params),
        params,
    )


def test_epoch_logs_are_exact_whole_dataset_values(data):
    x, y = data
    model = make_model()
    history = model.fit(x, y, epochs=2, batch_size=32, verbose=0, validation_data=(x, y))
    logits = model.predict(x, batch_size=64)
    expected_accuracy = accuracy_score(y, logits.argmax(-1))
    expected_loss = per_sample_ce(logits, y).mean()
    for logs in (
        model.evaluate(x, y, batch_size=32, verbose=0),
        {k[4:]: v[-1] for k, v in history.history.items() if k.startswith("val_")},
    ):
        assert logs["accuracy"] == pytest.approx(expected_accuracy, abs=1e-6)
        assert logs["loss"] == pytest.approx(expected_loss, rel=1e-5)


def test_sample_weight_follows_keras_sum_over_batch_size(data):
    x, y = data
    w = np.random.default_rng(1).uniform(0, 2, len(x)).astype(np.float32)
    model = make_model()
    model.fit(x, y, epochs=1, verbose=0)
    logits = model.predict(x)
    logs = model.evaluate(x, y, sample_weight=w, batch_size=32, verbose=0)
    assert logs["loss"] == pytest.approx((w * per_sample_ce(logits, y)).sum() / len(x), rel=1e-5)
    assert logs["accuracy"] == pytest.approx(accuracy_score(y, logits.argmax(-1), sample_weight=w), abs=1e-6)


def test_class_weight_scales_each_rows_loss_by_its_class(data):
    x, y = data
    class_weight = {0: 2.0, 2: 0.5}  # class 1 is not listed: weight 1
    model = make_model(metrics=None)
    model.init(x, y)
    logits = model.predict(x)
    logs = model.train_on_batch(x, y, class_weight=class_weight)
    row_weights = np.array([2.0, 1.0, 0.5])[y]
    assert logs["loss"] == pytest.approx((row_weights * per_sample_ce(logits, y)).mean(), rel=1e-5)


def test_nested_inputs_reach_the_module_unchanged(data):
    x, y = data
    seen = {}

    def forward(inputs):
        seen["structure"] = jax.tree_util.tree_structure(inputs)
        a, (b,) = inputs["a"], inputs["rest"]
        return hk.Linear(3)(jnp.concatenate([a, b], axis=-1))

    nested = {"a": x[:, :2], "rest": (x[:, 2:],)}
    model = make_model(forward)
    model.fit(nested, y, epochs=2, verbose=0)
    assert seen["structure"] == jax.tree_util.tree_structure({"a": 0, "rest": (0,)})
    assert model.predict(nested).shape == (len(x), 3)


@pytest.mark.parametrize("kind", ["list", "generator_with_steps"])
def test_iterables_of_batches_train_to_the_same_numbers_as_arrays(data, kind):
    x, y = data
    reference = make_model(metrics=None)
    reference.fit(x, y, epochs=2, batch_size=50, shuffle=False, verbose=0)

    batches = [(x[i : i + 50], y[i : i + 50]) for i in range(0, len(x), 50)]
    model = make_model(metrics=None)
    if kind == "list":
        model.fit(batches, epochs=2, verbose=0)
    else:

        def forever():
            while True:
                yield from batches

        model.fit(forever(), epochs=2, steps_per_epoch=3, verbose=0)
    jax.tree_util.tree_map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6),
        jax.device_get(model.states.net_params),
        jax.device_get(reference.states.net_params),
    )


def test_validation_split_and_freq_produce_val_logs(data):
    x, y = data
    history = make_model().fit(x, y, epochs=4, validation_split=0.2, validation_freq=2, verbose=0)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(history.history["loss"]) == 4
    assert len(history.history["val_loss"]) == 2
    assert history.epoch == [0, 1, 2, 3]


def test_loss_list_and_dict_are_summed_and_each_logged(data):
    x, y = data
    model = make_model(loss=[SCE(from_logits=True), SCE(from_logits=True, weight=0.5)], metrics=None)
    model.init(x, y)
    logs = model.test_on_batch(x, y)
    ce = per_sample_ce(model.predict(x), y).mean()
    assert logs["sparse_categorical_crossentropy_loss"] == pytest.approx(ce, rel=1e-5)
    assert logs["sparse_categorical_crossentropy_loss_1"] == pytest.approx(0.5 * ce, rel=1e-5)
    assert logs["loss"] == pytest.approx(1.5 * ce, rel=1e-5)

    as_dict = make_model(
        loss={"ce": SCE(from_logits=True), "mse_on_logits": lambda t, p: jnp.mean(p**2, -1)},
        metrics={"acc": "accuracy"},
    )
    as_dict.init(x, y)
    assert set(as_dict.test_on_batch(x, y)) == {"loss", "ce_loss", "mse_on_logits_loss", "acc"}


def test_plain_function_metric_is_averaged_over_samples(data):
    x, y = data
    model = make_model(metrics=[lambda y_true, y_pred: jnp.max(y_pred, axis=-1)])
    model.init(x, y)
    logs = model.evaluate(x, y, batch_size=32, verbose=0)
    assert logs["lambda"] == pytest.approx(model.predict(x).max(-1).mean(), rel=1e-5)


def test_run_eagerly_gives_the_same_numbers(data):
    x, y = data
    compiled, eager = make_model(), make_model(run_eagerly=True)
    h1 = compiled.fit(x, y, epochs=1, batch_size=64, steps_per_epoch=2, verbose=0)
    h2 = eager.fit(x, y, epochs=1, batch_size=64, steps_per_epoch=2, verbose=0)
    for name in h1.history:
        np.testing.assert_allclose(h1.history[name], h2.history[name], rtol=1e-5)


def test_same_seed_reproduces_training_and_another_seed_differs(data):
    x, y = data
    runs = []
    for seed in (1, 1, 2):
        model = make_model(bn_dropout_forward, seed=seed)
        model.fit(x, y, epochs=2, batch_size=32, verbose=0)
        runs.append(jax.device_get(model.states.net_params))
    flat = [np.concatenate([a.ravel() for a in jax.tree_util.tree_leaves(r)]) for r in runs]
    np.testing.assert_array_equal(flat[0], flat[1])
    assert not np.allclose(flat[0], flat[2])


def _assert_trees_equal(a, b):
    jax.tree_util.tree_map(np.testing.assert_array_equal, jax.device_get(a), jax.device_get(b))


def test_initial_states_do_not_depend_on_the_first_call(data):
    x, y = data
    reference = make_model(bn_dropout_forward).init(x[:32], y[:32])

    evaluated_first = make_model(bn_dropout_forward)
    evaluated_first.evaluate(x, y, batch_size=32, verbose=0)
    predicted_first = make_model(bn_dropout_forward)
    predicted_first.predict(x[:32])
    predicted_first.evaluate(x, y, batch_size=32, verbose=0)
    for model in (evaluated_first, predicted_first):
        # (evaluation draws from its own rng stream, which moves on; the rest is as init left it)
        _assert_trees_equal(_without_eval_rng(model.states), _without_eval_rng(reference))

    fitted_first = make_model(bn_dropout_forward, optimizer=optax.sgd(0.0))  # params stay put
    fitted_first.fit(x, y, epochs=1, verbose=0)
    _assert_trees_equal(fitted_first.states.net_params, reference.net_params)


def _without_eval_rng(states):
    return {name: value for name, value in dict(states).items() if name != "eval_rng"}


def test_predict_first_then_fit_fills_the_missing_fields(data):
    x, y = data
    model = make_model()
    model.predict(x)
    assert model.states.optimizer_states is None and model.states.net_params is not None
    params = jax.device_get(model.states.net_params)
    model.init(x[:8], y[:8])
    assert model.states.optimizer_states is not None
    jax.tree_util.tree_map(np.testing.assert_array_equal, params, jax.device_get(model.states.net_params))


def test_on_batch_methods_return_logs_and_predictions(data):
    x, y = data
    model = make_model()
    before = model.test_on_batch(x, y)
    for _ in range(20):
        logs = model.train_on_batch(x, y)
    assert set(logs) == {"loss", "accuracy"}
    after = model.test_on_batch(x, y)
    assert after["loss"] < before["loss"]
    np.testing.assert_allclose(model.predict_on_batch(x[:5]), model.predict(x)[:5], rtol=1e-6)


def test_reset_returns_to_the_seeded_initial_states(data):
    x, y = data
    model = make_model()
    model.fit(x, y, epochs=1, verbose=0)
    first = jax.device_get(model.states.net_params)
    model.reset()
    assert model.states.net_params is None and not model.initialized
    model.fit(x, y, epochs=1, verbose=0)
    jax.tree_util.tree_map(np.testing.assert_array_equal, first, jax.device_get(model.states.net_params))


def test_a_callback_can_stop_training(data):
    x, y = data

    class StopAfterTwo(elegy.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.model.stop_training = True

    history = make_model().fit(x, y, epochs=10, callbacks=[StopAfterTwo()], verbose=0)
    assert history.epoch == [0, 1]


def test_second_fit_continues_with_fresh_shuffles(data):
    x, y = data
    model = make_model()
    model.fit(x, y, epochs=1, verbose=0)
    assert int(model.states.epoch) == 1
    model.fit(x, y, epochs=2, verbose=0)
    assert int(model.states.epoch) == 3


def test_states_are_assignable_only_with_states(data):
    x, y = data
    model, other = make_model(), make_model(seed=7)
    other.fit(x, y, epochs=1, verbose=0)
    model.states = other.states
    np.testing.assert_array_equal(model.predict(x), other.predict(x))
    with pytest.raises(TypeError, match="must be an elegy.States"):
        model.states = {"net_params": None}


@pytest.mark.parametrize("verbose", [0, 1, 2])
def test_fit_prints_according_to_verbose(data, capsys, verbose):
    x, y = data
    make_model().fit(x, y, epochs=2, batch_size=64, validation_split=0.2, verbose=verbose)
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.strip()]
    if verbose == 0:
        assert out == ""
    elif verbose == 1:  # not a terminal: the header and the final bar line of each epoch
        assert [line for line in lines if line.startswith("Epoch")] == ["Epoch 1/2", "Epoch 2/2"]
        bars = [line for line in lines if line.startswith("2/2 [")]
        assert len(bars) == 2 and all(
            re.search(r"loss: \d\.\d{4} .*val_accuracy: \d\.\d{4}", b) for b in bars
        )
    else:
        assert len(lines) == 2 and lines[1].startswith("Epoch 2/2 - ") and "val_loss: " in lines[1]

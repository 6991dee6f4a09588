"""`Model(ema_decay=...)`: a moving average of the params, checked against numpy."""

import haiku as hk
import jax
import numpy as np
import optax
import pytest

import elegy

DECAY = 0.8


def forward(x):
    return hk.nets.MLP([16, 3])(x)


def data(rows=96, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(rows, 5)).astype("float32"), rng.integers(0, 3, rows)


def make_model(**options):
    return elegy.Model(
        forward,
        loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer=optax.adam(3e-2),
        steps_per_execution=1,
        **options,
    )


class ParamTrajectory(elegy.callbacks.Callback):
    """The params before the first step and after every step, as numpy."""

    def __init__(self):
        super().__init__()
        self.steps = []

    def on_train_batch_begin(self, batch, logs=None):
        if not self.steps:
            self.steps.append(jax.device_get(self.model.states.net_params))

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append(jax.device_get(self.model.states.net_params))


@pytest.fixture(scope="module")
def trained():
    x, y = data()
    trajectory = ParamTrajectory()
    model = make_model(ema_decay=DECAY)
    history = model.fit(
        x, y, batch_size=32, epochs=2, verbose=0, validation_data=data(40, seed=1), callbacks=[trajectory]
    )
    return model, trajectory.steps, history


def apply(params, x):
    return hk.without_apply_rng(hk.transform(forward)).apply(params, x)


def test_the_average_is_numpys_over_the_param_trajectory(trained):
    model, trajectory, _ = trained
    assert len(trajectory) == 1 + 2 * 3  # the initial params, then 3 steps an epoch
    expected = trajectory[0]
    for params in trajectory[1:]:
        expected = jax.tree_util.tree_map(lambda e, p: DECAY * e + (1 - DECAY) * p, expected, params)
    jax.tree_util.tree_map(
        lambda got, want: np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6),
        jax.device_get(model.states.ema_params),
        expected,
    )
    assert not np.allclose(
        model.states.ema_params["mlp/~/linear_0"]["w"], trajectory[-1]["mlp/~/linear_0"]["w"]
    )


def test_predict_and_evaluate_use_the_average_unless_switched_off(trained):
    model, _, history = trained
    x, y = data(40, seed=1)
    average, params = jax.device_get(model.states.ema_params), jax.device_get(model.states.net_params)
    np.testing.assert_allclose(model.predict(x), apply(average, x), atol=1e-6)
    logits = apply(average, x)
    expected_loss = float(optax.softmax_cross_entropy_with_integer_labels(logits, y).mean())
    assert model.evaluate(x, y, verbose=0)["loss"] == pytest.approx(expected_loss, rel=1e-5)
    assert history.history["val_loss"][-1] == pytest.approx(expected_loss, rel=1e-5)  # validation too
    model.evaluate_with_ema = False
    try:
        np.testing.assert_allclose(model.predict(x), apply(params, x), atol=1e-6)
    finally:
        model.evaluate_with_ema = True
    np.testing.assert_array_equal(
        jax.device_get(model.states.ema_params["mlp/~/linear_1"]["w"]), average["mlp/~/linear_1"]["w"]
    )


def test_save_load_and_export_keep_the_average(trained, tmp_path):
    model, _, _ = trained
    x, _ = data(7, seed=2)
    restored = elegy.load(model.save(tmp_path / "saved").parent)
    assert restored.ema_decay == DECAY
    for name in ("ema_params", "net_params"):
        jax.tree_util.tree_map(
            np.testing.assert_array_equal,
            jax.device_get(restored.states[name]),
            jax.device_get(model.states[name]),
        )
    served = elegy.load_exported(model.export(tmp_path / "served"))
    np.testing.assert_allclose(served(x), apply(jax.device_get(model.states.ema_params), x), atol=1e-6)


def test_fused_steps_average_the_same():
    x, y = data()
    single, fused = make_model(ema_decay=DECAY), make_model(ema_decay=DECAY)
    fused.steps_per_execution = 3
    for model in (single, fused):
        model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    jax.tree_util.tree_map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
        jax.device_get(single.states.ema_params),
        jax.device_get(fused.states.ema_params),
    )


def test_without_a_decay_there_is_no_average():
    x, y = data(32)
    model = make_model()
    model.fit(x, y, batch_size=32, verbose=0)
    assert "ema_params" not in model.states


@pytest.mark.parametrize("decay", [0, 1, 1.5, -0.1, "0.9", True])
def test_a_bad_decay_is_an_error_naming_it(decay):
    with pytest.raises(ValueError, match="ema_decay must be a number strictly between 0 and 1"):
        make_model(ema_decay=decay)

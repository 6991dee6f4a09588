"""`Model(dtype_policy=...)`: the dtypes every module sees, float32 training state, loss scaling."""

import warnings

import haiku as hk
import jax
import jax.numpy as jnp
import jmp
import numpy as np
import optax
import pytest
from sklearn.datasets import load_digits

import elegy
from elegy.model import precision

SEEN: list[tuple[str, str, str]] = []  # (module, "input" or a param name, dtype), at trace time


def recorded(forward):
    """`forward` with every module call's floating inputs and every parameter's dtype noted."""

    def record_inputs(next_call, args, kwargs, context):
        if context.method_name == "__call__":
            for leaf in jax.tree_util.tree_leaves((args, kwargs)):
                if hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jnp.floating):
                    SEEN.append((context.module.name, "input", str(leaf.dtype)))
        return next_call(*args, **kwargs)

    def record_params(next_getter, value, context):
        SEEN.append((context.module_name, context.name, str(value.dtype)))
        return next_getter(value)

    def wrapped(x, training):
        with hk.intercept_methods(record_inputs), hk.custom_getter(record_params):
            return forward(x, training)

    return wrapped


def net(x, training):
    h = jax.nn.relu(hk.Linear(32)(x))
    h = hk.BatchNorm(True, True, 0.9)(h, is_training=training)  # float32 state, read when predicting
    return hk.Linear(10)(h)


def digits():
    data = load_digits()
    return (data.data / 16).astype("float32"), data.target


def make_model(policy, loss=None, forward=net):
    return elegy.Model(
        forward,
        loss=loss or elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        optimizer=optax.adam(1e-2),
        dtype_policy=policy,
    )


def test_every_module_computes_in_bfloat16_but_normalization_and_the_rest_stays_float32():
    x, y = digits()
    model = make_model("mixed_bfloat16", forward=recorded(net))
    model.init(x[:64], y[:64])  # (initialization creates the float32 params)
    SEEN.clear()
    model.fit(x[:256], y[:256], batch_size=64, verbose=0)
    model.predict(x[:64], batch_size=64)  # BatchNorm reads its float32 averages here
    # (BatchNorm's own averaging modules, mean_ema and var_ema, are called too)
    assert {module for module, _, _ in SEEN} >= {"linear", "batch_norm", "linear_1"}
    assert {name for _, name, _ in SEEN} == {"input", "w", "b", "scale", "offset"}
    dense = {dtype for module, _, dtype in SEEN if module.startswith("linear")}
    assert dense == {"bfloat16"}  # inputs and params, the input after BatchNorm included
    # Normalization computes in float32 (16-bit variances can come out negative).
    assert {dtype for module, name, dtype in SEEN if module == "batch_norm" and name == "input"} == {
        "float32"
    }
    for leaf in jax.tree_util.tree_leaves((model.states.net_params, model.states.optimizer_states)):
        if jnp.issubdtype(leaf.dtype, jnp.floating):
            assert leaf.dtype == jnp.float32
    averages = [
        leaf for leaf in jax.tree_util.tree_leaves(model.states.net_states) if leaf.dtype != jnp.int32
    ]
    assert averages and {leaf.dtype for leaf in averages} == {jnp.dtype("float32")}
    assert model.predict(x[:5]).dtype == np.float32


def test_bfloat16_reaches_float32_accuracy_on_digits():
    x, y = digits()
    accuracy = {}
    for policy in ("float32", "mixed_bfloat16"):
        model = make_model(policy)
        model.fit(x[:1400], y[:1400], batch_size=64, epochs=6, verbose=0)
        accuracy[policy] = model.evaluate(x[1400:], y[1400:], verbose=0)["accuracy"]
    assert accuracy["float32"] > 0.85
    assert abs(accuracy["mixed_bfloat16"] - accuracy["float32"]) <= 0.01


def test_float16_recovers_from_overflowing_gradients_by_loss_scaling(tmp_path):
    """A loss 2000 times larger: at the initial scale (2**15) its gradients overflow
    float16, those steps are skipped and the scale halves until they fit."""
    x, y = digits()
    cross_entropy = elegy.losses.SparseCategoricalCrossentropy(from_logits=True)
    model = make_model("mixed_float16", loss=lambda y_true, y_pred: 2000.0 * cross_entropy(y_true, y_pred))
    first = make_model("mixed_float16", loss=lambda y_true, y_pred: 2000.0 * cross_entropy(y_true, y_pred))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # training must not stop on a NaN
        history = model.fit(x[:1024], y[:1024], batch_size=64, epochs=3, verbose=0)
    scale = model.states.loss_scale
    assert float(scale["scale"]) < 2.0**15
    assert all(
        np.isfinite(leaf).all() for leaf in jax.tree_util.tree_leaves(jax.device_get(model.states.net_params))
    )
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.history["accuracy"][-1] > 0.8
    first.init(x[:64], y[:64])
    assert float(first.states.loss_scale["scale"]) == 2.0**15
    restored = elegy.load(model.save(tmp_path / "saved").parent)
    assert float(restored.states.loss_scale["scale"]) == float(scale["scale"])
    assert int(restored.states.loss_scale["finite_steps"]) == int(scale["finite_steps"])


def test_a_skipped_step_keeps_params_and_optimizer_state():
    given = elegy.States(
        net_params={"w": jnp.ones(2)},
        optimizer_states={"count": jnp.asarray(3)},
        loss_scale={"scale": jnp.asarray(8.0), "finite_steps": jnp.asarray(0)},
    )
    updated = given.update(net_params={"w": jnp.zeros(2)}, optimizer_states={"count": jnp.asarray(4)})
    skipped = precision.if_finite({"w": jnp.array([jnp.inf, 1.0])}, updated, given)
    assert skipped.net_params["w"].tolist() == [1.0, 1.0] and int(skipped.optimizer_states["count"]) == 3
    assert float(skipped.loss_scale["scale"]) == 4.0
    applied = precision.if_finite({"w": jnp.ones(2)}, updated, given)
    assert applied.net_params["w"].tolist() == [0.0, 0.0] and float(applied.loss_scale["scale"]) == 8.0


def test_a_jmp_policy_is_taken_as_it_is():
    policy = jmp.Policy(jnp.float32, jnp.bfloat16, jnp.bfloat16)
    x, y = digits()
    model = make_model(policy)
    model.fit(x[:128], y[:128], batch_size=64, verbose=0)
    assert model.predict(x[:4]).dtype == jnp.bfloat16  # the policy's output dtype
    assert model.dtype_policy is policy


def test_a_bad_policy_lists_the_accepted_ones():
    with pytest.raises(
        ValueError, match="dtype_policy must be one of 'float32', 'mixed_bfloat16', 'mixed_float16'"
    ):
        make_model("bfloat16")

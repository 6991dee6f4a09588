"""The States contract: States a user can reach are never deleted or changed by a later
step, and a step that fails leaves the States it started from."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from tests.conftest import blobs, mlp_forward

import elegy
from elegy.callbacks import LambdaCallback

X, Y = blobs(96)  # batch 16: 6 batches per epoch
BATCH = 16


def make_model(cls=elegy.Model, steps=1, run_eagerly=False, optimizer=None, **kwargs):
    return cls(
        mlp_forward,
        loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        optimizer=optimizer or optax.adam(1e-2),
        steps_per_execution=steps,
        run_eagerly=run_eagerly,
        **kwargs,
    )


def host(tree):
    if isinstance(tree, elegy.States):
        tree = dict(tree)
    return jax.tree_util.tree_map(np.asarray, jax.device_get(tree))


def assert_same(a, b):
    """Bitwise equal trees (the structure too)."""
    flat_a, tree_a = jax.tree_util.tree_flatten(host(a))
    flat_b, tree_b = jax.tree_util.tree_flatten(host(b))
    assert tree_a == tree_b
    for left, right in zip(flat_a, flat_b, strict=True):
        np.testing.assert_array_equal(left, right)


def trained_on(batches, steps=1):
    """A model trained, without shuffling, on the first `batches` batches only."""
    model = make_model(steps=steps)
    model.fit(X[: batches * BATCH], Y[: batches * BATCH], batch_size=BATCH, shuffle=False, verbose=0)
    return model


# ------------------------------------------------------------------ held references
@pytest.mark.parametrize("run_eagerly", [False, True])
def test_params_held_across_fit_stay_readable_and_unchanged(run_eagerly):
    """The low-level guide's own pattern: keep the params, train, use them."""
    model = make_model(run_eagerly=run_eagerly)
    model.init(X[:BATCH], Y[:BATCH])
    params = model.states.net_params
    before = host(params)
    model.fit(X, Y, batch_size=BATCH, epochs=2, verbose=0)
    shifted = jax.tree_util.tree_map(lambda p: p + 1, params)  # deleted arrays would raise here
    assert_same(params, before)
    assert_same(shifted, jax.tree_util.tree_map(lambda p: p + 1, before))
    assert not np.array_equal(
        host(model.states.net_params)["mlp/~/linear_0"]["w"], before["mlp/~/linear_0"]["w"]
    )


@pytest.mark.parametrize(("steps", "executions"), [(1, 12), (4, 6)])
def test_states_read_by_a_callback_on_every_batch_all_survive(steps, executions):
    """Each States a callback keeps is the value it read: training went on in buffers of
    its own. (Fused, the hooks of a group run after it and see its last States: each epoch
    runs one group of 4 and 2 batches alone.)
    The last one kept is what fit leaves in the model."""
    model = make_model(steps=steps)
    kept = []
    keep = LambdaCallback(on_train_batch_end=lambda batch, logs: kept.append(model.states))
    model.fit(X, Y, batch_size=BATCH, epochs=2, verbose=0, callbacks=[keep])
    assert len(kept) == 12
    values = [host(states)["net_params"]["mlp/~/linear_0"]["w"] for states in kept]
    distinct = [
        a for a, b in zip(values, [None, *values[:-1]], strict=True) if b is None or not np.array_equal(a, b)
    ]
    assert len(distinct) == executions  # every execution trained, and each kept its own value
    assert_same(kept[-1].net_params, model.states.net_params)


def test_states_assigned_by_the_user_are_not_written_over():
    model = make_model()
    model.fit(X, Y, batch_size=BATCH, verbose=0)
    mine = model.states.update(net_params=jax.tree_util.tree_map(jnp.zeros_like, model.states.net_params))
    model.states = mine
    model.fit(X, Y, batch_size=BATCH, verbose=0)
    arrays = [leaf for leaf in jax.tree_util.tree_leaves(dict(mine)) if isinstance(leaf, jax.Array)]
    assert arrays and not any(leaf.is_deleted() for leaf in arrays)
    assert all(float(jnp.abs(p).sum()) == 0 for p in jax.tree_util.tree_leaves(mine.net_params))


def test_train_on_batch_keeps_what_the_user_holds():
    model = make_model()
    model.train_on_batch(X[:BATCH], Y[:BATCH])
    held = model.states
    before = host(held)
    for _ in range(3):
        model.train_on_batch(X[:BATCH], Y[:BATCH])
    assert_same(held, before)


# ------------------------------------------------------------------ failed steps
class FailsAtCall(elegy.Model):
    """A train step with a host callback that raises on its `fail_at`-th run (1-based)."""

    fail_at = 0

    def train_step(self, states, initializing, **kwargs):
        result = super().train_step(states=states, initializing=initializing, **kwargs)
        if not initializing:
            jax.debug.callback(self._count, result.logs["loss"])
        return result

    def _count(self, _loss):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == self.fail_at:
            raise RuntimeError(f"injected failure at step {self.calls}")


@pytest.mark.parametrize(("steps", "fail_at", "completed"), [(1, 4, 3), (2, 4, 2), (3, 2, 0)])
def test_a_step_that_raises_leaves_the_states_of_the_last_completed_execution(steps, fail_at, completed):
    """`completed` batches ran in executions that finished before the failing one."""
    model = make_model(FailsAtCall, steps=steps)
    model.fail_at = fail_at
    model.init(X[:BATCH], Y[:BATCH])
    with pytest.raises(Exception, match="injected failure at step"):
        model.fit(X, Y, batch_size=BATCH, shuffle=False, verbose=0)
    if completed:
        expected = trained_on(completed, steps=steps).states
        assert_same(model.states.net_params, expected.net_params)
        assert_same(model.states.optimizer_states, expected.optimizer_states)
    # readable, savable, trainable
    model.predict(X[:5])
    model.fit(X, Y, batch_size=BATCH, verbose=0)
    assert np.isfinite(model.evaluate(X, Y, verbose=0)["loss"])


def test_debug_nans_reports_the_nan_and_keeps_the_states():
    model = make_model()
    model.fit(X, Y, batch_size=BATCH, verbose=0)
    before = host(model.states)
    bad = X.copy()
    bad[BATCH + 3, 0] = np.nan  # in the second batch
    with jax.debug_nans(True), pytest.raises(FloatingPointError, match="nan"):
        model.fit(bad, Y, batch_size=BATCH, shuffle=False, verbose=0)
    params = host(model.states.net_params)
    assert all(np.isfinite(leaf).all() for leaf in jax.tree_util.tree_leaves(params))
    assert not np.array_equal(
        params["mlp/~/linear_0"]["w"], before["net_params"]["mlp/~/linear_0"]["w"]
    )  # batch 1 trained
    model.fit(X, Y, batch_size=BATCH, verbose=0)


# ------------------------------------------------------------------ threading
class CountsCalls(elegy.Model):
    """Keeps a field of its own: how many pred and test steps ran, and the last key drawn."""

    def pred_step(self, x, states, initializing, training):
        result = super().pred_step(x=x, states=states, initializing=initializing, training=training)
        states = result.states
        count = states.get("pred_calls", jnp.zeros((), jnp.int32))
        key = states.rng.next()
        return result._replace(states=states.update(pred_calls=count + 1, last_key=key))

    def test_step(self, states, **kwargs):
        result = super().test_step(states=states, **kwargs)
        count = result.states.get("test_calls", jnp.zeros((), jnp.int32))
        return result._replace(states=result.states.update(test_calls=count + 1))


@pytest.mark.parametrize("run_eagerly", [False, True])
def test_every_entry_point_keeps_the_states_its_step_returns(run_eagerly):
    model = make_model(CountsCalls, run_eagerly=run_eagerly)
    model.fit(X, Y, batch_size=BATCH, verbose=0)  # init, then 6 train steps, each through test and pred
    assert int(model.states.test_calls) == 7 and int(model.states.pred_calls) == 7
    model.evaluate(X, Y, batch_size=BATCH, verbose=0)  # 6 more
    model.test_on_batch(X[:BATCH], Y[:BATCH])
    assert int(model.states.test_calls) == 14 and int(model.states.pred_calls) == 14
    keys = []
    for _ in range(2):
        model.predict(X, batch_size=BATCH)
        keys.append(np.asarray(model.states.last_key))
    model.predict_on_batch(X[:BATCH])
    keys.append(np.asarray(model.states.last_key))
    assert int(model.states.pred_calls) == 14 + 6 + 6 + 1
    assert not np.array_equal(keys[0], keys[1]) and not np.array_equal(keys[1], keys[2])


@pytest.mark.parametrize("steps", [1, 3])
def test_validation_never_changes_the_training_run(steps):
    plain, validated = make_model(steps=steps), make_model(steps=steps)
    plain.fit(X, Y, batch_size=BATCH, epochs=3, verbose=0)
    validated.fit(X, Y, batch_size=BATCH, epochs=3, verbose=0, validation_data=(X[:40], Y[:40]))
    without = dict(validated.states)
    assert not np.array_equal(without.pop("eval_rng").key, plain.states.eval_rng.key)
    reference = dict(plain.states)
    del reference["eval_rng"]
    assert_same(without, reference)  # params, optimizer and metric states, rng, epoch


def test_evaluate_and_predict_leave_the_default_fields_bit_identical():
    model = make_model()
    model.fit(X, Y, batch_size=BATCH, verbose=0)
    before = host(model.states)
    model.evaluate(X, Y, batch_size=BATCH, verbose=0)
    model.predict(X, batch_size=BATCH)
    model.test_on_batch(X[:BATCH], Y[:BATCH])
    model.predict_on_batch(X[:BATCH])
    after = host(model.states)
    assert not np.array_equal(after["eval_rng"].key, before["eval_rng"].key)  # its stream moved on
    for name in ("net_params", "net_states", "optimizer_states", "metrics_states", "rng", "epoch"):
        assert_same({name: after[name]}, {name: before[name]})


# ------------------------------------------------------------------ non-finite steps
def nan_at_batch(k):
    """X with a NaN in batch k (0-based, no shuffling)."""
    bad = X.copy()
    bad[k * BATCH + 2, 1] = np.nan
    return bad


@pytest.mark.parametrize("steps", [1, 2])
def test_a_nan_batch_stops_training_with_the_states_before_it(steps, tmp_path):
    """NaN in batch 3 of the second epoch: params and optimizer state are those after
    the first epoch and batches 0-2 of the second; the checkpoint written is finite."""
    data = np.concatenate([X, X[: 3 * BATCH]]), np.concatenate([Y, Y[: 3 * BATCH]])
    expected = make_model(steps=steps)
    expected.fit(*data, batch_size=BATCH, shuffle=False, verbose=0)  # 6 + 3 batches, as one epoch

    model = make_model(steps=steps)
    model.fit(X, Y, batch_size=BATCH, shuffle=False, verbose=0)
    checkpoint = elegy.callbacks.ModelCheckpoint(tmp_path / "ckpt", monitor="loss", save_weights_only=True)
    callbacks = [
        elegy.callbacks.TerminateOnNaN(),
        elegy.callbacks.EarlyStopping(monitor="loss", patience=5, restore_best_weights=True),
        checkpoint,
    ]
    history = model.fit(
        nan_at_batch(3), Y, batch_size=BATCH, epochs=3, shuffle=False, verbose=0, callbacks=callbacks
    )
    assert len(history.history["loss"]) == 1 and np.isnan(history.history["loss"][0])  # honest logs
    # (9 steps with padding differ from 6 + 3 only in float rounding of the epoch boundary)
    for name in ("net_params", "optimizer_states"):
        flat = jax.tree_util.tree_leaves(host(model.states.get(name)))
        reference = jax.tree_util.tree_leaves(host(expected.states.get(name)))
        for a, b in zip(flat, reference, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    restored = make_model(steps=steps)
    restored.init(X[:BATCH], Y[:BATCH])
    restored.load_weights(tmp_path / "ckpt")
    assert_same(restored.states.net_params, model.states.net_params)
    assert all(
        np.isfinite(leaf).all() for leaf in jax.tree_util.tree_leaves(host(restored.states.net_params))
    )


def test_without_terminate_on_nan_fit_stops_with_a_warning():
    model = make_model()
    with pytest.warns(RuntimeWarning, match="fit stopped in epoch 0: a training step had a non-finite"):
        history = model.fit(nan_at_batch(0), Y, batch_size=BATCH, epochs=3, shuffle=False, verbose=0)
    assert len(history.history["loss"]) == 1
    fresh = make_model()
    fresh.init(X[:BATCH], Y[:BATCH])
    assert_same(model.states.net_params, fresh.states.net_params)  # no update went through
    model.fit(X, Y, batch_size=BATCH, verbose=0)  # and training can go on


def test_train_on_batch_reports_a_nan_and_keeps_the_weights():
    model = make_model()
    model.train_on_batch(X[:BATCH], Y[:BATCH])
    before = host(model.states)
    logs = model.train_on_batch(nan_at_batch(0)[:BATCH], Y[:BATCH])
    assert np.isnan(logs["loss"])
    assert_same(model.states.net_params, before["net_params"])
    assert_same(model.states.optimizer_states, before["optimizer_states"])


# ------------------------------------------------------------------ reconfiguring
def test_a_new_optimizer_takes_effect_from_a_fresh_state():
    model = make_model(optimizer=optax.sgd(0.0))
    model.fit(X, Y, batch_size=BATCH, shuffle=False, verbose=0)
    start = host(model.states.net_params)
    with pytest.warns(UserWarning, match="model.optimizer replaced: its state starts fresh"):
        model.optimizer = optax.sgd(0.5)
    model.train_on_batch(X[:BATCH], Y[:BATCH])
    # by hand: one SGD step of the same loss on the same batch, in optax
    module = elegy.module.to_pure_module(mlp_forward)

    def loss(params):
        y_pred, _ = module.apply(params, {}, None, X[:BATCH], training=True)
        return optax.softmax_cross_entropy_with_integer_labels(y_pred, Y[:BATCH]).mean()

    grads = jax.grad(loss)(start)
    expected = optax.apply_updates(start, jax.tree_util.tree_map(lambda g: -0.5 * g, grads))
    for a, b in zip(
        jax.tree_util.tree_leaves(host(model.states.net_params)),
        jax.tree_util.tree_leaves(expected),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_new_loss_and_metrics_take_effect():
    model = make_model()
    model.fit(X, Y, batch_size=BATCH, verbose=0)
    xent = elegy.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.metrics = ["accuracy", elegy.metrics.LossMean(xent, name="xent")]
    model.loss = elegy.losses.SparseCategoricalCrossentropy(from_logits=True, weight=2.0)
    logs = model.evaluate(X, Y, batch_size=BATCH, verbose=0)
    assert set(logs) >= {"loss", "accuracy", "xent"}
    assert logs["loss"] == pytest.approx(2 * logs["xent"], rel=1e-5)
    history = model.fit(X, Y, batch_size=BATCH, verbose=0)
    assert "xent" in history.history


def test_a_built_model_refuses_a_new_module():
    model = make_model()
    model.fit(X, Y, batch_size=BATCH, verbose=0)
    with pytest.raises(ValueError, match="module cannot be replaced once the model is built"):
        model.module = mlp_forward
    model.reset()
    model.module = mlp_forward

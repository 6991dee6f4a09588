"""steps_per_execution: N steps fused in one compiled lax.scan give the step-by-step results,
every step reaches the batch callbacks, and each entry point compiles once."""

import jax
import numpy as np
import optax
import pytest
from tests import conftest
from tests.conftest import blobs, bn_dropout_forward, mlp_forward

import elegy
from elegy.callbacks import LambdaCallback

X, Y = blobs(100)  # batch 16: 7 batches per epoch, the last one padded
VX, VY = blobs(40, seed=1)


class TraceCounter(conftest.TraceCounter, elegy.Model):
    pass


def make_model(steps, module=bn_dropout_forward, optimizer=None, cls=elegy.Model):
    return cls(
        module,
        loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        optimizer=optimizer or optax.sgd(0.1),
        steps_per_execution=steps,
    )


def fit_recording(model, **kwargs):
    """fit, keeping (hook, step, loss) for every batch hook call, in order."""
    calls = []
    recorder = LambdaCallback(
        on_train_batch_begin=lambda batch, logs: calls.append(("begin", batch)),
        on_train_batch_end=lambda batch, logs: calls.append(("end", batch, logs["loss"])),
    )
    history = model.fit(X, Y, batch_size=16, verbose=0, callbacks=[recorder], **kwargs)
    return history, calls


def leaves(states):
    return jax.tree_util.tree_leaves(dict(states))


@pytest.mark.parametrize("steps", [3, 7, 10])
def test_fused_training_equals_step_by_step(steps):
    """3 splits each epoch into 3+3+1 (the last batch alone), 7 is exact, 10 exceeds the epoch."""
    expected_model, model = make_model(1), make_model(steps)
    expected, expected_calls = fit_recording(expected_model, epochs=2, validation_data=(VX, VY))
    history, calls = fit_recording(model, epochs=2, validation_data=(VX, VY))
    assert history.history.keys() == expected.history.keys()
    for name, values in expected.history.items():
        assert history.history[name] == pytest.approx(values, rel=1e-6), name
    assert [c[:2] for c in calls] == [c[:2] for c in expected_calls]  # every step, in order
    assert [c[2] for c in calls if c[0] == "end"] == pytest.approx(
        [c[2] for c in expected_calls if c[0] == "end"], rel=1e-6
    )
    for a, b in zip(leaves(model.states), leaves(expected_model.states), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_fused_training_with_adam_follows_the_same_losses():
    """Adam amplifies float noise in parameters with no real gradient (a bias before
    BatchNorm), so compare what is trained for: the losses."""
    expected, _ = fit_recording(make_model(1, optimizer=optax.adam(1e-2)), epochs=2)
    history, _ = fit_recording(make_model(4, optimizer=optax.adam(1e-2)), epochs=2)
    assert history.history["loss"] == pytest.approx(expected.history["loss"], rel=1e-5)


def test_evaluate_and_predict_fused_equal_step_by_step():
    expected_model, model = make_model(1, mlp_forward), make_model(4, mlp_forward)
    expected_model.fit(X, Y, batch_size=16, epochs=1, verbose=0)
    model.fit(X, Y, batch_size=16, epochs=1, verbose=0)
    assert model.evaluate(X, Y, batch_size=16, verbose=0) == pytest.approx(
        expected_model.evaluate(X, Y, batch_size=16, verbose=0), rel=1e-6
    )
    np.testing.assert_allclose(
        model.predict(X, batch_size=16), expected_model.predict(X, batch_size=16), rtol=1e-6, atol=1e-6
    )
    assert model.predict(X[:5], batch_size=2).shape == (5, 3)  # 3 batches: fewer than a group


def test_each_entry_point_compiles_once_fused_and_once_alone():
    """7 batches with 3 steps per execution, from the host: 2 fused groups, then 1 batch
    alone. Each program compiles once, however many epochs and calls follow."""
    model = make_model(3, cls=TraceCounter)
    model.fit(X, Y, batch_size=16, epochs=3, validation_data=(VX, VY), verbose=0, data_on_device=False)
    model.evaluate(X, Y, batch_size=16, verbose=0, data_on_device=False)
    model.predict(X, batch_size=16, data_on_device=False)
    # init; train fused and alone; test and predict (both training=False) fused and alone
    assert dict(model.traces) == {(True, True): 1, (False, True): 2, (False, False): 4}
    assert model._compiled_steps.keys() == {
        (entry, False, fused) for entry in ("train", "test", "pred") for fused in (False, True)
    } | {("init", False, False)}


def test_on_the_device_each_entry_point_compiles_one_loop():
    """The same with the data on the device: the group of 1 left at the end runs in the
    same looped program (the count of steps is one of its arguments)."""
    model = make_model(3, cls=TraceCounter)
    model.fit(X, Y, batch_size=16, epochs=3, validation_data=(VX, VY), verbose=0, data_on_device=True)
    model.evaluate(X, Y, batch_size=16, verbose=0, data_on_device=True)
    model.predict(X, batch_size=16, data_on_device=True)
    assert dict(model.traces) == {(True, True): 1, (False, True): 1, (False, False): 2}  # test, pred
    assert model._compiled_steps.keys() == {
        (entry, False, "on_device:3") for entry in ("train", "test", "pred")
    } | {("init", False, False)}


def test_a_fused_step_has_no_conditional():
    """A `lax.cond` in the scan would cost on a GPU in every step: full groups run
    unconditionally."""
    model = make_model(3, module=mlp_forward)
    model.fit(X, Y, batch_size=16, epochs=1, verbose=0)
    execution = next(iter(model._plan().executions(elegy.data.make_source(X, Y, batch_size=16), 0)))
    assert execution.fused
    states = model._with_fresh_metrics(model.states)
    treedef, leaves = states.leaves()
    for entry in ("train", "test", "pred"):
        jitted = model._compiled_steps(entry, fused=True).jitted
        if entry == "train":  # (+ the buffers written over, and the halted flag)
            text = jitted.lower(treedef, leaves, leaves, execution.batches, None, np.False_).as_text()
        else:
            text = jitted.lower(treedef, leaves, execution.batches, None).as_text()
        assert "stablehlo.while" in text and "stablehlo.case" not in text and "stablehlo.if" not in text


def test_stop_training_ends_after_the_execution_that_asked():
    model, ends = make_model(3), []

    def stop_at_second_batch(batch, logs):
        ends.append(batch)
        if batch == 1:
            model.stop_training = True

    callback = LambdaCallback(on_train_batch_end=stop_at_second_batch)
    history = model.fit(X, Y, batch_size=16, epochs=5, verbose=0, callbacks=[callback])
    assert len(history.history["loss"]) == 1
    assert ends == [0, 1, 2]  # the rest of the execution had run already: its steps are reported


def test_run_eagerly_never_fuses():
    model = make_model(4, cls=TraceCounter)
    model.run_eagerly = True
    model.fit(X[:32], Y[:32], batch_size=16, epochs=1, verbose=0)
    assert model.traces[(False, True)] == 2  # each batch run as plain Python


@pytest.mark.parametrize("steps", [0, -1, 1.5, True])
def test_bad_steps_per_execution_is_named(steps):
    with pytest.raises(ValueError, match='steps_per_execution must be "auto" or an integer >= 1'):
        make_model(steps)


@pytest.mark.parametrize("steps", [1, 3])
def test_training_writes_the_new_states_over_buffers_it_donates(steps):
    """The train step updates in place: it donates buffers the loop alone holds (one
    argument per States leaf, each aliased to an output), never the States it reads."""
    model = make_model(steps, module=mlp_forward, optimizer=optax.adam(1e-2))
    model.fit(X, Y, batch_size=16, epochs=1, verbose=0)
    execution = next(iter(model._plan().executions(elegy.data.make_source(X, Y, batch_size=16), 0)))
    treedef, leaves = model._with_fresh_metrics(model.states).leaves()
    jitted = model._compiled_steps("train", fused=execution.fused).jitted
    text = jitted.lower(treedef, leaves, leaves, execution.batches, None, np.False_).as_text()
    assert text.count("tf.aliasing_output") == len(leaves)


def test_evaluate_and_predict_keep_the_model_states_buffers():
    model = make_model(3)
    model.fit(X, Y, batch_size=16, epochs=1, verbose=0)
    before = [leaf for leaf in jax.tree_util.tree_leaves(dict(model.states)) if isinstance(leaf, jax.Array)]
    model.evaluate(X, Y, batch_size=16, verbose=0)
    model.predict(X, batch_size=16)
    assert not any(leaf.is_deleted() for leaf in before)


def test_early_stopping_best_weights_survive_later_steps():
    model = make_model(1)
    stopper = elegy.callbacks.EarlyStopping(monitor="loss", patience=1, restore_best_weights=True)
    model.fit(X, Y, batch_size=16, epochs=3, verbose=0, callbacks=[stopper])
    assert not any(leaf.is_deleted() for leaf in jax.tree_util.tree_leaves(stopper.best_weights))


@pytest.mark.parametrize("steps", [1, 3])
def test_evaluate_steps_do_not_copy_unchanged_states(steps):
    """jit would copy every States leaf it returns; the test and pred steps return only
    what changed (metrics, rng), and the model's own params come back as they were."""
    model = make_model(steps, module=mlp_forward, optimizer=optax.adam(1e-2))
    model.fit(X, Y, batch_size=16, epochs=1, verbose=0)
    execution = next(iter(model._plan().executions(elegy.data.make_source(X, Y, batch_size=16), 0)))
    states = model._with_fresh_metrics(model.states)
    for entry in ("test", "pred"):
        arguments = (states, execution.batches, None)
        compiled = model._compiled_steps(entry, fused=steps > 1).jitted
        leaves, treedef = jax.tree_util.tree_flatten(states)
        changed = jax.eval_shape(compiled, treedef, leaves, *arguments[1:])[1]  # {position: leaf}
        paths = [str(path) for path, _ in jax.tree_util.tree_flatten_with_path(states)[0]]
        out_names = [paths[position] for position in changed]
        assert out_names and not any("net_params" in name or "optimizer_states" in name for name in out_names)
        assert any("metrics_states" in name for name in out_names) or entry == "pred"
        _, returned = model._compiled_steps(entry, fused=steps > 1)(*arguments)
        for old, new in zip(
            jax.tree_util.tree_leaves(dict(states.net_params)),
            jax.tree_util.tree_leaves(dict(returned.net_params)),
            strict=True,
        ):
            assert new is old


def test_a_test_step_that_changes_the_params_returns_them():
    class Shrinking(elegy.Model):
        def test_step(self, x, y_true, sample_weight, class_weight, states, initializing, training, mask):
            loss, logs, states = super().test_step(
                x, y_true, sample_weight, class_weight, states, initializing, training, mask
            )
            if not training:  # evaluate only: halve the params at every step
                states = states.update(
                    net_params=jax.tree_util.tree_map(lambda w: w * 0.5, states.net_params)
                )
            return loss, logs, states

    for steps in (1, 3):
        model = make_model(steps, module=mlp_forward, cls=Shrinking)
        model.fit(X, Y, batch_size=16, epochs=1, verbose=0)
        batches = list(model._plan().executions(elegy.data.make_source(X, Y, batch_size=16), 0))
        states = model._with_fresh_metrics(model.states)
        _, returned = model._compiled_steps.execute("test", states, batches[0], None)
        factor = 0.5 ** batches[0].count
        for old, new in zip(
            jax.tree_util.tree_leaves(dict(states.net_params)),
            jax.tree_util.tree_leaves(dict(returned.net_params)),
            strict=True,
        ):
            np.testing.assert_allclose(np.asarray(new), np.asarray(old) * factor, rtol=1e-6)


@pytest.mark.parametrize("steps", [1, 3])
def test_the_loops_pass_states_between_steps_without_walking_the_tree(steps, monkeypatch):
    """Each step gets the leaves the previous one returned: States are flattened a fixed
    number of times per fit or evaluate, not once per step."""
    flattened = []
    flatten = elegy.States.tree_flatten
    monkeypatch.setattr(elegy.States, "tree_flatten", lambda self: flattened.append(1) or flatten(self))

    def flattens(rows):
        counts = []
        for run in (model.fit, model.evaluate):
            flattened.clear()
            run(X[:rows], Y[:rows], batch_size=8, verbose=0)
            counts.append(len(flattened))
        return counts

    model = make_model(steps, module=mlp_forward)
    flattens(88)  # compiles: 11 steps, with 3 per execution both fused and alone
    assert flattens(16) == flattens(96)  # 2 and 12 steps

"""Bad input fails fast, before anything is compiled, with a message a person can act on."""

import numpy as np
import optax
import pytest
from tests.conftest import blobs, mlp_forward

import elegy

X, Y = blobs(20)


def model(**kwargs):
    kwargs.setdefault("loss", elegy.losses.SparseCategoricalCrossentropy(from_logits=True))
    kwargs.setdefault("optimizer", optax.sgd(0.1))
    return elegy.Model(kwargs.pop("module", mlp_forward), **kwargs)


def assert_nothing_initialized(m):
    assert m.states.net_params is None and not m.initialized


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda m: m.fit(X[:10], Y[:12], verbose=0), ValueError, r"x has 10.*y has 12"),
        (lambda m: m.fit(X, Y, sample_weight=np.ones(7), verbose=0), ValueError, r"sample_weight has 7"),
        (
            lambda m: m.fit(X, Y, batch_size=0, verbose=0),
            ValueError,
            r"batch_size must be an integer >= 1, got 0",
        ),
        (lambda m: m.fit("digits.csv", Y, verbose=0), TypeError, r"x must be an array.*got a str"),
        (lambda m: m.fit({"a": X, "b": "oops"}, Y, verbose=0), TypeError, r"x\['b'\] must be an array"),
        (lambda m: m.predict([1, 2, 3]), TypeError, r"x\[0\] must be an array.*got int"),
        (lambda m: m.fit(X, Y, epochs=0, verbose=0), ValueError, r"epochs must be an integer >= 1, got 0"),
        (lambda m: m.fit(X, Y, verbose=3), ValueError, r"verbose must be 0, 1, 2 or 'auto', got 3"),
        (
            lambda m: m.fit(X, Y, validation_split=1.5, verbose=0),
            ValueError,
            r"validation_split must be a float in \[0, 1\), got 1.5",
        ),
        (
            lambda m: m.fit(X, Y, class_weight=[1, 2], verbose=0),
            TypeError,
            r"class_weight must be a non-empty dict",
        ),
        (
            lambda m: m.fit(X, Y, validation_data=[X], verbose=0),
            TypeError,
            r"validation_data must be a tuple",
        ),
        (
            lambda m: m.evaluate(X, Y, steps=-1, verbose=0),
            ValueError,
            r"steps must be an integer >= 1 or None, got -1",
        ),
    ],
    ids=[
        "x/y lengths",
        "sample_weight length",
        "batch_size=0",
        "string x",
        "string leaf",
        "list of ints",
        "epochs=0",
        "verbose=3",
        "validation_split",
        "class_weight",
        "validation_data",
        "steps",
    ],
)
def test_bad_arguments_are_named_with_the_values_involved(call, error, message):
    m = model()
    with pytest.raises(error, match=message):
        call(m)
    assert_nothing_initialized(m)


@pytest.mark.parametrize("method", ["fit", "evaluate", "train_on_batch", "test_on_batch"])
def test_no_loss_and_no_test_step_override(method):
    m = model(loss=None)
    with pytest.raises(ValueError, match=rf"{method}: no loss: pass loss=.* or override test_step"):
        getattr(m, method)(X, Y, **({} if "batch" in method else {"verbose": 0}))
    assert_nothing_initialized(m)


@pytest.mark.parametrize("method", ["predict", "predict_on_batch", "evaluate"])
def test_a_model_that_cannot_be_initialized(method):
    m = elegy.Model(loss="sparse_categorical_crossentropy")
    with pytest.raises(
        ValueError, match=r"cannot be initialized: module is None; pass module=.* or override pred_step"
    ):
        getattr(m, method)(X) if "predict" in method else m.evaluate(X, Y, verbose=0)


def test_fit_without_optimizer_names_it_but_evaluate_works():
    m = model(optimizer=None)
    with pytest.raises(ValueError, match=r"fit: no optimizer: pass optimizer="):
        m.fit(X, Y, verbose=0)
    assert_nothing_initialized(m)
    assert np.isfinite(m.evaluate(X, Y, verbose=0)["loss"])


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"optimizer": "adam"}, TypeError, r"optimizer must be an optax GradientTransformation.*got str"),
        ({"metrics": ["acuracy"]}, ValueError, r"unknown metric name 'acuracy'; known names: \[.*'accuracy'"),
        ({"loss": "cross_entropy"}, ValueError, r"unknown loss name 'cross_entropy'"),
        ({"loss": 3}, TypeError, r"loss: expected .* got int"),
        ({"seed": -1}, ValueError, r"seed must be an integer >= 0, got -1"),
        ({"module": 42}, TypeError, r"module must be a Haiku forward function"),
    ],
)
def test_bad_constructor_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        model(**kwargs)


def test_a_loss_that_needs_targets_names_y():
    m = model()
    with pytest.raises(ValueError, match=r"needs targets but y is None"):
        m.evaluate(X, verbose=0)


def test_mismatched_target_shapes_are_an_error_not_a_broadcast():
    m = model(loss="mse")
    with pytest.raises(
        ValueError, match=r"mean_squared_error: y_true has shape \(20, 2\) but y_pred has shape \(20, 3\)"
    ):
        m.evaluate(X, np.zeros((20, 2), np.float32), verbose=0)


def test_a_generator_for_several_epochs_without_steps_per_epoch_fails_before_training():
    batches = ((X[i : i + 10], Y[i : i + 10]) for i in range(0, 20, 10))
    m = model()
    with pytest.raises(
        ValueError, match=r"x is a one-shot iterator or generator and fit would run 2 epochs.*steps_per_epoch"
    ):
        m.fit(batches, epochs=2, verbose=0)
    assert_nothing_initialized(m)


def test_a_generator_that_runs_dry_in_a_later_epoch_asks_for_steps_per_epoch():
    batches = ((X[i : i + 10], Y[i : i + 10]) for i in range(0, 20, 10))
    with pytest.raises(ValueError, match=r"x produced no batches this epoch.*pass steps_per_epoch"):
        model().fit(batches, epochs=2, steps_per_epoch=2, verbose=0)


@pytest.mark.parametrize(
    "bad_batch, message",
    [
        (
            (X[:4], Y[:4], np.ones(4), np.ones(4)),
            r"a batch must be x, \(x,\), \(x, y\) or \(x, y, sample_weight\); got a tuple of length 4",
        ),
        ("not a batch", r"x must be an array .*got a str"),
        ((X[:4], Y[:3]), r"x has 4.*y has 3"),
    ],
    ids=["4-tuple", "string", "ragged"],
)
def test_a_generator_yielding_something_that_is_not_a_batch(bad_batch, message):
    with pytest.raises((ValueError, TypeError), match=message):
        model().fit(iter([bad_batch]), verbose=0)


@pytest.mark.parametrize(
    "data", [[], np.zeros((0, 4), np.float32), iter([])], ids=["empty list", "zero rows", "empty generator"]
)
def test_an_empty_data_set_is_a_clear_error(data):
    with pytest.raises(ValueError, match=r"empty|no samples|no batches"):
        model().fit(data, None if not hasattr(data, "shape") else np.zeros(0), verbose=0)

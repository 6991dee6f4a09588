import functools

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from elegy.module import to_pure_module


class Net(hk.Module):
    def __init__(self, n=3, name=None):
        super().__init__(name=name)
        self.n = n

    def __call__(self, x, training):
        y = hk.Linear(self.n)(x)
        return y * 2 if training else y


X = jnp.ones((2, 5))


def _run(pure, training):
    params, state = pure.init(jax.random.PRNGKey(0), X, training)
    y, _ = pure.apply(params, state, jax.random.PRNGKey(1), X, training)
    return params, y


@pytest.mark.parametrize(
    "module",
    [Net, lambda: Net(n=3), functools.partial(Net, n=3)],
    ids=["class", "lambda factory", "partial"],
)
def test_module_classes_and_factories_receive_the_training_flag(module):
    params, y_train = _run(to_pure_module(module), True)
    _, y_eval = _run(to_pure_module(module), False)
    np.testing.assert_allclose(y_train, 2 * y_eval, rtol=1e-6)
    assert y_train.shape == (2, 3)


def forward_training(x, training):
    return hk.Linear(2)(x) * (2.0 if training else 1.0)


def forward_is_training(x, is_training):
    return hk.Linear(2)(x) * (2.0 if is_training else 1.0)


@pytest.mark.parametrize(
    "forward, flag", [(forward_training, "training"), (forward_is_training, "is_training")]
)
def test_forward_function_receives_its_declared_flag(forward, flag):
    pure = to_pure_module(forward)
    assert pure.training_flag == flag
    _, y_train = _run(pure, True)
    _, y_eval = _run(pure, False)
    np.testing.assert_allclose(y_train, 2 * y_eval, rtol=1e-6)


def test_forward_function_without_flag_gets_none():
    pure = to_pure_module(lambda x: hk.Linear(2)(x))
    assert pure.training_flag is None
    assert _run(pure, True)[1].shape == (2, 2)


@pytest.mark.parametrize("stateful", [False, True])
def test_transformed_objects_pass_through(stateful):
    fn = lambda x: hk.Linear(2)(x)
    transformed = hk.transform_with_state(fn) if stateful else hk.transform(fn)
    pure = to_pure_module(transformed)
    params, y = _run(pure, False)
    expected = hk.transform(fn).apply(params, None, X)
    np.testing.assert_allclose(y, expected)


def test_module_instance_is_rejected_with_advice():
    with pytest.raises(TypeError, match="got an hk.Module instance.*pass its class or a factory"):
        hk.transform(lambda x: to_pure_module(Net())).init(jax.random.PRNGKey(0), X)


def test_non_callable_module_is_a_type_error():
    with pytest.raises(TypeError, match="module must be"):
        to_pure_module(42)


@pytest.mark.parametrize("without_rng", [False, True])
@pytest.mark.parametrize("stateful", [False, True])
def test_transformed_forward_functions_keep_their_training_flag(stateful, without_rng):
    transformed = (hk.transform_with_state if stateful else hk.transform)(forward_is_training)
    if without_rng:
        transformed = hk.without_apply_rng(transformed)
    pure = to_pure_module(transformed)
    assert pure.training_flag == "is_training" and pure.apply_takes_rng is not without_rng
    _, y_train = _run(pure, True)
    _, y_eval = _run(pure, False)
    np.testing.assert_allclose(y_train, 2 * y_eval, rtol=1e-6)

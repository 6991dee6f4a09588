"""A step `fit` compiles again warns, naming the inputs that changed, in the first epoch too."""

import warnings

import numpy as np
import optax
import pytest
from tests.conftest import blobs, mlp_forward

import elegy
from elegy.model.retrace import changes, signature

X, Y = blobs(64)


def make_model(**options):
    return elegy.Model(
        mlp_forward,
        loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer=optax.sgd(0.1),
        **options,
    )


class GrowingBatches:
    """Re-iterable: 16-row batches on the first pass, 24-row batches afterwards."""

    def __init__(self):
        self.passes = 0

    def __iter__(self):
        size = 16 if self.passes == 0 else 24
        self.passes += 1
        for start in range(0, 48, size):
            yield X[start : start + size], Y[start : start + size]


def test_a_batch_of_another_size_is_named():
    with pytest.warns(elegy.RetraceWarning) as caught:
        make_model().fit(GrowingBatches(), epochs=2, verbose=0)
    text = str(caught[0].message)
    assert "The train step was compiled again because its inputs changed" in text
    assert "['x']: float32[16,4] -> float32[24,4]" in text
    assert "['y']: int32[16] -> int32[24]" in text


def test_a_generator_whose_batch_grows_warns_in_the_first_epoch():
    def batches():  # 16 rows, then 24: padding can only fill up to the first batch's size
        yield X[:16], Y[:16]
        yield X[16:40], Y[16:40]

    with pytest.warns(elegy.RetraceWarning, match=r"\['x'\]: float32\[16,4\] -> float32\[24,4\]"):
        make_model().fit(batches(), epochs=1, verbose=0)


def test_a_states_field_that_changes_type_is_named():
    model = make_model()
    cast = elegy.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: setattr(
            model, "states", model.states.update(epoch=np.float32(epoch + 1))
        )
    )
    with pytest.warns(elegy.RetraceWarning, match=r"\['states'\]\['epoch'\]: int32\[\] -> float32\[\]"):
        model.fit(X, Y, batch_size=16, epochs=2, verbose=0, callbacks=[cast])


@pytest.mark.parametrize("steps_per_execution", [1, 3, "auto"])
def test_an_ordinary_fit_never_warns(steps_per_execution):
    x, y = blobs(70)  # a padded last batch, validation, two fits, evaluate and predict
    model = make_model(steps_per_execution=steps_per_execution)
    with warnings.catch_warnings():
        warnings.simplefilter("error", elegy.RetraceWarning)
        for _ in range(2):
            model.fit(x, y, batch_size=16, epochs=3, validation_data=blobs(20, seed=1), verbose=0)
        model.evaluate(x, y, batch_size=16, verbose=0)
        model.predict(x, batch_size=16)


def test_changes_lists_changed_added_and_removed_leaves():
    before = {"['x']": "float32[16,4]", "['w']": "float32[]"}
    after = {"['x']": "float32[8,4]", "['v']": "int32[]"}
    assert changes(before, after) == [
        "['x']: float32[16,4] -> float32[8,4]",
        "['v']: new, int32[]",
        "['w']: gone, was float32[]",
    ]


def test_signature_of_plain_values_describes_them():
    assert signature({"a": None, "b": 3}) == {"['b']": "int 3"}


def test_a_new_batch_size_in_a_new_call_is_not_a_retrace_to_warn_about():
    model = make_model()
    with warnings.catch_warnings():
        warnings.simplefilter("error", elegy.RetraceWarning)
        model.fit(X, Y, batch_size=16, epochs=1, verbose=0)
        model.evaluate(X, Y, batch_size=32, verbose=0)
        model.fit(X, Y, batch_size=32, epochs=1, validation_split=0.25, verbose=0)

"""Each step function is traced once per input signature, whatever the loop does."""

import optax
from tests import conftest
from tests.conftest import blobs, bn_dropout_forward

import elegy


class TraceCounter(conftest.TraceCounter, elegy.Model):
    pass


def test_no_retrace_after_the_first_epoch_nor_in_later_calls():
    x, y = blobs(150)  # batches of 32: the last one is partial (22 rows)
    x_val, y_val = blobs(40, seed=1)
    model = TraceCounter(
        bn_dropout_forward,
        loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        optimizer=optax.adam(1e-3),
    )
    model.fit(x, y, batch_size=32, epochs=3, validation_data=(x_val, y_val), verbose=0)
    after_first_fit = dict(model.traces)
    model.fit(x, y, batch_size=32, epochs=2, validation_data=(x_val, y_val), verbose=0)
    for _ in range(2):
        model.evaluate(x, y, batch_size=32, verbose=0)
        model.predict(x, batch_size=32)

    # init (initializing, training=True); train; test and predict share training=False.
    # Each entry point has its single step and its looped program (steps_per_execution
    # "auto", the data on the device), each traced once.
    assert after_first_fit == {(True, True): 1, (False, True): 2, (False, False): 2}
    assert dict(model.traces) == {(True, True): 1, (False, True): 2, (False, False): 4}


def test_run_eagerly_traces_nothing_and_calls_the_step_every_batch():
    x, y = blobs(64)
    model = TraceCounter(
        bn_dropout_forward,
        loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer=optax.sgd(0.1),
        run_eagerly=True,
    )
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    assert model.traces[(False, True)] == 2  # two batches, each run as plain Python

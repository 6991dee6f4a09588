"""`elegy.data.process_local`: in one process a share is the whole batch, so it trains, evaluates
and predicts exactly as the unmarked iterable does; the checks that keep the processes' shares
one global batch. (Two processes: tests/test_distributed.py::test_two_processes_train_like_one.)"""

import re
import types

import jax
import numpy as np
import optax
import pytest
from tests.conftest import blobs, mlp_forward

import elegy
from elegy.data import Batch, LocalBatch, make_source, padded_batch, process_local
from elegy.data.batches import padded_rows
from elegy.data.shares import share_disagreement
from elegy.data.sources import validation_source

X, Y = blobs(50, seed=2)
BATCH = 16  # 50 rows: three full batches and a partial one of 2


def batch_list():
    return [(X[i : i + BATCH], Y[i : i + BATCH]) for i in range(0, len(X), BATCH)]


def make_model(distribution=None):
    return elegy.Model(
        mlp_forward,
        loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        optimizer=optax.adam(1e-2),
        distribution=distribution,
    )


def assert_same_params(a, b):
    jax.tree_util.tree_map(
        np.testing.assert_array_equal,
        jax.device_get(a.states.net_params),
        jax.device_get(b.states.net_params),
    )


@pytest.mark.parametrize("distribution", [None, "data_parallel"])
def test_in_one_process_a_share_trains_like_the_whole_iterable(distribution):
    def run(data):
        model = make_model(elegy.distributed.DataParallel() if distribution else None)
        return model, model.fit(data, epochs=2, verbose=0).history

    plain, plain_logs = run(batch_list())
    shared, shared_logs = run(process_local(batch_list()))
    assert_same_params(shared, plain)
    assert shared_logs == plain_logs


def test_in_one_process_a_shared_generator_with_steps_per_epoch_trains_like_the_generator():
    def endless():
        while True:
            yield from batch_list()

    plain, shared = make_model(), make_model()
    plain.fit(endless(), epochs=2, steps_per_epoch=4, verbose=0)
    shared.fit(process_local(endless()), epochs=2, steps_per_epoch=4, verbose=0)
    assert_same_params(shared, plain)


def test_in_one_process_shares_evaluate_and_predict_like_the_whole_iterable():
    model = make_model()
    model.fit(X, Y, batch_size=BATCH, epochs=1, verbose=0)
    assert model.evaluate(process_local(batch_list()), verbose=0) == model.evaluate(batch_list(), verbose=0)
    inputs = [(x,) for x, _ in batch_list()]
    np.testing.assert_array_equal(
        model.predict(process_local(inputs), verbose=0), model.predict(inputs, verbose=0)
    )


def test_in_one_process_a_source_of_shares_yields_plain_batches():
    source = make_source(process_local(batch_list()), batch_size=BATCH)
    batches = list(source.epoch(0))
    assert [type(batch) for batch in batches] == [Batch] * 4
    assert [batch.num_real for batch in batches] == [16, 16, 16, 2]


def test_a_share_larger_than_the_first_is_an_error_that_names_the_argument():
    shares = process_local([(X[:8], Y[:8]), (X[:10], Y[:10])])
    with pytest.raises(
        ValueError, match="x: a process_local share has 10 rows, more than the first share's 8"
    ):
        list(make_source(shares, batch_size=8).epoch(0))
    with pytest.raises(ValueError, match="validation_data: a process_local share has 10 rows"):
        list(validation_source(shares, batch_size=8, steps=None).epoch(0))


@pytest.mark.parametrize("value", [X, (X, Y), {"x": X}, 3])
def test_process_local_takes_only_an_iterable_of_batches(value):
    with pytest.raises(TypeError, match="process_local takes an iterable of batches"):
        process_local(value)


def test_process_local_of_shares_is_the_same_shares():
    shares = process_local(batch_list())
    assert process_local(shares) is shares


@pytest.mark.parametrize(
    ("rows", "lengths", "message"),
    [
        ([15, 15], [5, 5], None),
        ([15, 15], [None, 5], None),  # a length not known everywhere: nothing to compare
        (
            [15, 14],
            [5, 5],
            "x: every process must yield shares of the same size .* 15 in process 0, 14 in process 1",
        ),
        (
            [15, 15],
            [5, 4],
            r"x: every process must run the same number of steps, but len\(\) of the shares is ",
        ),
    ],
)
def test_processes_must_agree_on_the_size_and_the_number_of_their_shares(rows, lengths, message):
    problem = share_disagreement("x", rows, lengths)
    if message is None:
        assert problem is None
    else:
        assert problem is not None and re.search(message, problem), problem


def test_padded_rows_pads_stacked_batches_along_their_row_axis():
    stacked = Batch(np.arange(12).reshape(2, 3, 2), None, None, np.array([[True] * 3, [True, True, False]]))
    padded = padded_rows(stacked, 4, axis=1)
    np.testing.assert_array_equal(padded.x[:, 3], stacked.x[:, 0])  # the first row repeated
    np.testing.assert_array_equal(padded.mask, [[True, True, True, False], [True, True, False, False]])


def test_the_planner_leaves_a_share_to_its_placement():
    from elegy.model.execution import padded_for

    eight_shards = types.SimpleNamespace(padded_size=lambda rows: 8)  # as a mesh of 8 would pad
    whole = padded_batch(np.arange(3), None, None, 3)
    assert padded_for(eight_shards, whole).mask.tolist() == [True] * 3 + [False] * 5
    share = LocalBatch(*whole)
    assert padded_for(eight_shards, share) is share

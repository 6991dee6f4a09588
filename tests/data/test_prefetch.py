"""Background transfer of batches: same items, same order, bounded read-ahead, errors kept."""

import threading
import time
import traceback

import jax
import numpy as np
import pytest

from elegy.data.prefetch import prefetch


def test_items_arrive_in_order_on_the_device():
    items = [np.full(3, i, np.float32) for i in range(10)]
    out = list(prefetch(iter(items)))
    assert [int(a[0]) for a in out] == list(range(10))
    assert all(isinstance(a, jax.Array) for a in out)


def test_read_ahead_is_bounded_by_the_queue_size():
    produced = []

    def source():
        for i in range(100):
            produced.append(i)
            yield i

    iterator = prefetch(source(), size=2, transfer=lambda v: v)
    assert next(iterator) == 0
    time.sleep(0.3)  # give the producer every chance to run ahead
    # one item consumed, two waiting in the queue, one held by the blocked producer
    assert len(produced) <= 4
    iterator.close()


def test_an_error_in_the_producer_is_raised_in_the_consumer_with_its_traceback():
    def failing_source():
        yield 1
        raise KeyError("broken batch 2")

    iterator = prefetch(failing_source(), transfer=lambda v: v)
    assert next(iterator) == 1
    with pytest.raises(KeyError, match="broken batch 2") as info:
        next(iterator)
    frames = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert "failing_source" in frames


def test_stopping_early_stops_the_producer_thread():
    before = threading.active_count()
    iterator = prefetch(iter(range(10**9)), transfer=lambda v: v)
    assert next(iterator) == 0
    iterator.close()
    deadline = time.time() + 5
    while threading.active_count() > before and time.time() < deadline:
        time.sleep(0.01)
    assert threading.active_count() == before


def test_size_must_be_positive():
    with pytest.raises(ValueError, match="prefetch size must be >= 1, got 0"):
        list(prefetch([1], size=0))


@pytest.mark.parametrize("steps_per_execution", [1, 3])
def test_fit_through_the_background_thread_gives_the_same_numbers(monkeypatch, steps_per_execution):
    """The accelerator path, forced on the CPU, trains identically: stacked groups go
    through the prefetch thread, single batches with the step's own dispatch."""
    import optax
    from tests.conftest import blobs, mlp_forward

    import elegy
    from elegy.data import prefetch as prefetch_module

    x, y = blobs(70)

    def train():
        model = elegy.Model(
            mlp_forward,
            loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
            optimizer=optax.adam(1e-2),
            steps_per_execution=steps_per_execution,
        )
        history = model.fit(x, y, batch_size=16, epochs=2, verbose=0, data_on_device=False)
        return jax.device_get(model.states.net_params), history.history["loss"]

    direct = train()
    calls = []
    monkeypatch.setattr(prefetch_module, "on_accelerator", lambda: True)
    monkeypatch.setattr(
        prefetch_module, "prefetch", lambda items, **kwargs: calls.append(1) or prefetch(items, **kwargs)
    )
    threaded = train()
    assert bool(calls) == (steps_per_execution > 1)  # the thread ran for groups only
    jax.tree_util.tree_map(np.testing.assert_array_equal, direct[0], threaded[0])
    assert direct[1] == threaded[1]

"""steps_per_execution="auto" and data on the device: the search, and that neither the
tuner's choice nor where the data live ever changes a bit of the results."""

import haiku as hk
import jax
import numpy as np
import optax
import pytest

import elegy
from elegy.callbacks import BackupAndRestore, Callback
from elegy.model import execution, tuning
from elegy.model.core import HOST
from elegy.model.tuning import HOST_GROUP, MAX_EXECUTION_SECONDS, GroupTuner

RNG = np.random.RandomState(0)
X = RNG.normal(size=(640, 6)).astype(np.float32)
Y = (X[:, 0] + X[:, 1] > 0).astype(np.int32)
W = RNG.uniform(0.5, 2.0, size=640).astype(np.float32)


def mlp(x):
    return hk.nets.MLP([16, 2])(x)


def conv(x):
    x = jax.nn.relu(hk.Conv2D(4, 3)(x.reshape(-1, 3, 2, 1)))
    return hk.Linear(2)(x.reshape(len(x), -1))


@pytest.fixture(autouse=True)
def probe_at_once(monkeypatch):
    """The probe compiles in the loop's thread: the search takes the same steps every run."""
    monkeypatch.setattr(tuning, "COMPILE_IN_BACKGROUND", False)


def make_model(module=mlp, steps_per_execution="auto", **kwargs):
    return elegy.Model(
        module,
        loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        optimizer=optax.adam(1e-2),
        steps_per_execution=steps_per_execution,
        **kwargs,
    )


def leaves(model):
    return [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(jax.device_get(dict(model.states)))]


def assert_same_bits(a, b):
    left, right = leaves(a), leaves(b)
    assert len(left) == len(right)
    for x, y in zip(left, right, strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()


class FakeClock:
    """A clock under which a timed execution of the tuner's candidate group of `g` steps
    takes `cost(g)` seconds."""

    def __init__(self, tuner, cost):
        self.tuner, self.cost, self.now, self.started = tuner, cost, 0.0, False

    def __call__(self):
        if self.started:
            self.now += self.cost(self.tuner.candidate)
        self.started = not self.started
        return self.now


def tuned(model, cost, on_device=False, entry="train"):
    """`model` with its `entry` tuner (for data on the device, or from the host: the
    default on the CPU) on a fake clock of `cost`."""
    key = entry if on_device else HOST + entry
    tuner = model._tuners.setdefault(key, GroupTuner(any_size=on_device))
    tuner.clock = FakeClock(tuner, cost)
    return model


FASTER_UP_TO_16 = lambda group: 1e-3 * group / min(group, 16)  # noqa: E731
SLOWER_FUSED = lambda group: 1e-3 if group == 1 else 2e-3 * group  # noqa: E731


# ---------------------------------------------------------------- the search itself
def search(cost, identical=True, capacity=tuning.MAX_GROUP, epoch_steps=10_000, any_size=True):
    tuner, timed = GroupTuner(capacity, any_size=any_size), []
    while tuner.chosen is None:
        planned = tuner.next(epoch_steps, epoch_steps)
        if planned.probe:
            tuner.probed(identical)
        elif planned.timed:
            timed.append(planned.count)
            tuner.timed(planned, cost(planned.count))
    return tuner.chosen, timed


def test_the_search_grows_while_fusing_gains_and_stops_where_it_does_not():
    assert search(FASTER_UP_TO_16) == (16, [1, 1, 2, 2, 4, 4, 8, 8, 16, 16, 32, 32])
    assert search(SLOWER_FUSED) == (1, [1, 1, 2, 2])
    assert search(lambda group: 1e-3 * group / 8 if group > 1 else 1e-3)[0] == 2  # no gain past 2
    assert search(lambda group: 1e-4, capacity=8)[0] == 8  # capped


def test_the_search_keeps_an_execution_short():
    """Faster per step at every size, but a call must stay under MAX_EXECUTION_SECONDS."""
    per_step = MAX_EXECUTION_SECONDS / 20  # 10% faster per step at each doubling
    chosen, timed = search(lambda group: per_step * group * 0.9 ** np.log2(group))
    assert chosen == 16 and max(timed) == 16  # a group of 16 takes 0.26 s: 32 would take 0.47 s


def test_a_loop_computing_other_bits_is_never_timed():
    assert search(FASTER_UP_TO_16, identical=False) == (1, [1, 1])


def test_no_group_longer_than_an_epoch_is_a_candidate():
    assert search(lambda group: 1e-4, epoch_steps=20)[0] == 16
    assert search(lambda group: 1e-4, epoch_steps=20, any_size=False)[0] == 16
    assert search(lambda group: 1e-4, epoch_steps=1, any_size=False) == (1, [1, 1])


def test_from_the_host_one_fused_size_is_timed_against_the_single_step():
    """Each size stacked on the host is a program of its own: one candidate, the largest
    power of two (at most HOST_GROUP) whose execution stays under the limit."""
    assert search(FASTER_UP_TO_16, any_size=False) == (HOST_GROUP, [1, 1, HOST_GROUP, HOST_GROUP])
    assert search(SLOWER_FUSED, any_size=False) == (1, [1, 1, HOST_GROUP, HOST_GROUP])
    slow_step = MAX_EXECUTION_SECONDS / 10  # 5 steps per half second: a group of 4
    halved = lambda group: slow_step if group == 1 else slow_step * group / 2  # noqa: E731
    assert search(halved, any_size=False) == (4, [1, 1, 4, 4])
    assert search(lambda group: MAX_EXECUTION_SECONDS, any_size=False) == (1, [1, 1])  # no room
    assert search(FASTER_UP_TO_16, identical=False, any_size=False) == (1, [1, 1])


def test_steps_left_too_few_for_the_candidate_run_untimed():
    tuner = GroupTuner()
    for _ in range(3):
        tuner.next(100, 100)
    tuner.timed(tuning.Planned(1, False, timed=True), 1e-3)
    tuner.next(100, 100)
    tuner.probed(identical=True)
    assert tuner.next(1, 100) == tuning.Planned(1, looped=True)  # untimed
    assert tuner.next(50, 100) == tuning.Planned(2, looped=True, timed=True)


# ---------------------------------------------------------------- through fit
@pytest.mark.parametrize("on_device", [False, True])
@pytest.mark.parametrize("module", [mlp, conv])
def test_params_are_bitwise_equal_whatever_the_tuner_picked(module, on_device):
    """The same seed: the tuner picking 1 (fusing slower) or fusing (16 steps on the
    device, 32 from the host) on a fake clock, and one step per call from the host, give
    the same bits. (Where the fused program computes other bits than the single step, as
    a convolution may on the CPU, the tuner never fuses.)"""
    arguments = dict(batch_size=8, epochs=3, verbose=0, validation_data=(X[:100], Y[:100]))
    slow = tuned(make_model(module), SLOWER_FUSED, on_device)
    fast = tuned(make_model(module), FASTER_UP_TO_16, on_device)
    host = make_model(module, steps_per_execution=1)
    histories = [
        slow.fit(X, Y, data_on_device=on_device, **arguments),
        fast.fit(X, Y, data_on_device=on_device, **arguments),
        host.fit(X, Y, data_on_device=False, **arguments),
    ]
    assert slow.steps_per_execution_chosen == 1
    fused = 16 if on_device else HOST_GROUP
    assert fast.steps_per_execution_chosen in (fused, 1)  # 1 only if the probe found other bits
    if module is mlp:  # (an MLP's fused program computes the same bits on XLA's CPU backend)
        assert fast.steps_per_execution_chosen == fused
    assert [h.params["steps_per_execution"] for h in histories] == [1, fast.steps_per_execution_chosen, 1]
    assert_same_bits(slow, fast)
    assert_same_bits(slow, host)
    assert histories[0].history == histories[1].history == histories[2].history


@pytest.mark.parametrize("on_device", [False, True])
def test_compiling_in_the_background_changes_no_bit(monkeypatch, on_device):
    """The probe waits for the fused program while the single step trains on: the
    search ends after more or fewer steps, the results are the same."""
    monkeypatch.setattr(tuning, "COMPILE_IN_BACKGROUND", True)
    model, reference = tuned(make_model(), FASTER_UP_TO_16, on_device), make_model(steps_per_execution=1)
    for _ in range(10):  # (fit until the search is over, at most 10 times)
        model.fit(X, Y, batch_size=8, epochs=1, verbose=0, data_on_device=on_device)
        reference.fit(X, Y, batch_size=8, epochs=1, verbose=0, data_on_device=False)
        if model.steps_per_execution_chosen is not None:
            break
    assert model.steps_per_execution_chosen == (16 if on_device else HOST_GROUP)
    assert_same_bits(model, reference)


def test_the_probe_alone_decides_against_fusing(monkeypatch):
    monkeypatch.setattr(execution, "same_bits", lambda single, looped: False)
    model = tuned(make_model(), FASTER_UP_TO_16)
    model.fit(X, Y, batch_size=8, epochs=1, verbose=0)
    assert model.steps_per_execution_chosen == 1
    assert model._tuners[HOST + "train"].clock.now == pytest.approx(2e-3)  # only the single step timed


class StopAfter(Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def test_a_resumed_run_goes_on_with_the_recorded_choice(tmp_path):
    arguments = dict(batch_size=8, epochs=4, verbose=0)
    interrupted = tuned(make_model(), FASTER_UP_TO_16)
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(X, Y, **arguments, callbacks=[StopAfter(2), BackupAndRestore(tmp_path)])
    assert interrupted.steps_per_execution_chosen == HOST_GROUP

    def no_clock():
        raise AssertionError("the resumed run measured again")

    resumed = make_model()
    resumed._tuners[HOST + "train"] = GroupTuner(clock=no_clock, any_size=False)
    resumed.fit(X, Y, **arguments, callbacks=[BackupAndRestore(tmp_path)])
    assert resumed.steps_per_execution_chosen == HOST_GROUP
    uninterrupted = make_model(steps_per_execution=1)
    uninterrupted.fit(X, Y, data_on_device=False, **arguments)
    assert_same_bits(resumed, uninterrupted)


# ---------------------------------------------------------------- data on the device
CASES = {
    "shuffled, last batch partial": dict(batch_size=48),
    "in order": dict(batch_size=48, shuffle=False),
    "sample weights": dict(batch_size=64, sample_weight=W),
    "windows of steps": dict(batch_size=48, steps_per_epoch=5),
    "remainder dropped": dict(batch_size=48, drop_remainder=True),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("steps", [1, 3])
def test_device_and_host_batches_give_the_same_bits(case, steps):
    arguments = dict(epochs=3, verbose=0, validation_data=(X[:90], Y[:90]), **CASES[case])
    on_device, on_host = make_model(steps_per_execution=steps), make_model(steps_per_execution=steps)
    a = on_device.fit(X, Y, data_on_device=True, **arguments)
    b = on_host.fit(X, Y, data_on_device=False, **arguments)
    assert a.history == b.history
    assert_same_bits(on_device, on_host)
    assert on_device.evaluate(X, Y, verbose=0, data_on_device=True) == on_host.evaluate(
        X, Y, verbose=0, data_on_device=False
    )
    predictions = on_device.predict(X[:77], batch_size=16, data_on_device=True)
    np.testing.assert_array_equal(predictions, on_host.predict(X[:77], batch_size=16, data_on_device=False))
    assert predictions.shape == (77, 2)


def test_nested_inputs_live_on_the_device_too():
    def two_inputs(x):
        return hk.Linear(2)(x["a"]) + hk.Linear(2)(x["b"])

    x = {"a": X[:, :3], "b": X[:, 3:]}
    on_device, on_host = make_model(two_inputs), make_model(two_inputs, steps_per_execution=1)
    on_device.fit(x, Y, batch_size=50, epochs=2, verbose=0, data_on_device=True)
    on_host.fit(x, Y, batch_size=50, epochs=2, verbose=0, data_on_device=False)
    assert_same_bits(on_device, on_host)


def test_data_sets_of_nearby_lengths_share_compiled_programs():
    model = make_model(steps_per_execution=1)
    model.fit(X, Y, batch_size=32, verbose=0, data_on_device=True)
    model.predict(X[:636], batch_size=32, data_on_device=True)
    keys = model._compiled_steps.keys()
    jitted = model._compiled_steps.on_device("pred").jitted
    sizes_before = jitted._cache_size()
    for rows in (630, 633, 639):  # all padded to 640 rows on the device
        model.predict(X[:rows], batch_size=32, data_on_device=True)
    assert jitted._cache_size() == sizes_before and model._compiled_steps.keys() == keys


def test_data_on_device_false_keeps_the_host_path():
    model = make_model()
    model.fit(X, Y, batch_size=32, epochs=2, verbose=0, data_on_device=False)
    assert all(isinstance(fused, bool) for _, _, fused in model._compiled_steps.keys())


def test_on_the_cpu_data_stay_on_the_host_unless_asked():
    model = make_model()
    model.fit(X, Y, batch_size=32, epochs=1, verbose=0)
    model.predict(X)
    assert all(isinstance(fused, bool) for _, _, fused in model._compiled_steps.keys())


def test_data_on_device_true_needs_arrays():
    batches = [(X[:32], Y[:32]), (X[32:64], Y[32:64])]
    with pytest.raises(ValueError, match="data_on_device=True needs x"):
        make_model().fit(batches, epochs=1, verbose=0, data_on_device=True)
    assert make_model().fit(batches, epochs=1, verbose=0).params["steps_per_execution"] == 1


@pytest.mark.parametrize("value", ["fast", 0, 2.5, None])
def test_bad_steps_per_execution_is_named(value):
    with pytest.raises(ValueError, match='steps_per_execution must be "auto" or an integer >= 1'):
        make_model(steps_per_execution=value)


def test_a_pickled_model_keeps_the_choice_not_the_search():
    import cloudpickle

    model = tuned(make_model(), FASTER_UP_TO_16)
    model.fit(X, Y, batch_size=8, epochs=2, verbose=0)
    assert model.steps_per_execution_chosen == HOST_GROUP
    copy = cloudpickle.loads(cloudpickle.dumps(model))
    assert copy.steps_per_execution_chosen == HOST_GROUP
    searching = tuned(make_model(), FASTER_UP_TO_16)
    searching.fit(X[:64], Y[:64], batch_size=8, epochs=1, verbose=0)  # 8 steps: still searching
    assert cloudpickle.loads(cloudpickle.dumps(searching)).steps_per_execution_chosen is None

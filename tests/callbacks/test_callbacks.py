"""Unit tests for elegy.callbacks: CallbackList dispatch, History, Logs and ProgbarLogger."""

import io

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from elegy.callbacks import Callback, CallbackList, History, Logs, ProgbarLogger
from elegy.callbacks.progbar import format_bar, format_duration

EPOCH_HOOKS = [
    "on_epoch_begin",
    "on_epoch_end",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_test_batch_begin",
    "on_test_batch_end",
    "on_predict_batch_begin",
    "on_predict_batch_end",
]
PLAIN_HOOKS = [
    "on_train_begin",
    "on_train_end",
    "on_test_begin",
    "on_test_end",
    "on_predict_begin",
    "on_predict_end",
]


class Recorder(Callback):
    """Appends (its tag, hook name, args) to a shared list for every hook call."""

    def __init__(self, tag, events):
        super().__init__()
        self.tag, self.events = tag, events

    def __getattribute__(self, name):
        if name.startswith("on_"):
            return lambda *args, **kwargs: self.events.append((self.tag, name, args, kwargs))
        return super().__getattribute__(name)


# --- CallbackList ------------------------------------------------------------------------


@pytest.mark.parametrize("hook", EPOCH_HOOKS)
def test_callback_list_dispatches_indexed_hook_to_each_callback_in_order(hook):
    events = []
    callbacks = CallbackList([Recorder("a", events), Recorder("b", events), Recorder("c", events)])
    logs = {"loss": 1.0}
    getattr(callbacks, hook)(4, logs)
    assert events == [(tag, hook, (4, logs), {}) for tag in "abc"]


@pytest.mark.parametrize("hook", PLAIN_HOOKS)
def test_callback_list_dispatches_plain_hook_to_each_callback_in_order(hook):
    events = []
    callbacks = CallbackList([Recorder("a", events), Recorder("b", events)])
    getattr(callbacks, hook)(logs={"x": 2.0})
    assert events == [(tag, hook, ({"x": 2.0},), {}) for tag in "ab"]


@pytest.mark.parametrize("hook", PLAIN_HOOKS)
def test_callback_list_passes_empty_logs_when_given_none(hook):
    events = []
    getattr(CallbackList([Recorder("a", events)]), hook)()
    assert events == [("a", hook, ({},), {})]


class Failing(Callback):
    """Raises its own error from every `on_*_end` hook."""

    def __init__(self, error):
        super().__init__()
        self.error = error

    def __getattribute__(self, name):
        if name.startswith("on_") and name.endswith("_end") and "batch" not in name and "epoch" not in name:
            error = super().__getattribute__("error")

            def fail(*args, **kwargs):
                raise error

            return fail
        return super().__getattribute__(name)


@pytest.mark.parametrize("hook", ["on_train_end", "on_test_end", "on_predict_end"])
def test_every_error_of_an_end_hook_is_reported_after_every_callback_ran(hook):
    events, first, second = [], ValueError("first"), OSError("second")
    callbacks = CallbackList([Failing(first), Recorder("a", events), Failing(second), Recorder("b", events)])
    with pytest.raises(ExceptionGroup) as info:
        getattr(callbacks, hook)()
    assert list(info.value.exceptions) == [first, second]
    assert [tag for tag, *_ in events] == ["a", "b"]  # each got to close its files
    with pytest.raises(ValueError, match="first"):  # one error alone is raised as it is
        getattr(CallbackList([Failing(first), Recorder("c", events)]), hook)()
    assert events[-1][0] == "c"


def test_callback_list_keeps_order_across_a_sequence_of_hooks():
    events = []
    callbacks = CallbackList([Recorder("a", events), Recorder("b", events)])
    callbacks.on_train_begin()
    callbacks.on_epoch_begin(0)
    callbacks.on_epoch_end(0, {"loss": 0.5})
    callbacks.on_train_end()
    assert [(tag, hook) for tag, hook, _, _ in events] == [
        ("a", "on_train_begin"),
        ("b", "on_train_begin"),
        ("a", "on_epoch_begin"),
        ("b", "on_epoch_begin"),
        ("a", "on_epoch_end"),
        ("b", "on_epoch_end"),
        ("a", "on_train_end"),
        ("b", "on_train_end"),
    ]


def test_callback_list_sets_model_and_params_on_every_callback():
    model = object()
    members = [History(), Callback()]
    CallbackList(members, model=model, epochs=3, steps=7, verbose=0)
    for callback in members:
        assert callback.model is model
        assert callback.params == {"epochs": 3, "steps": 7, "verbose": 0}


def test_callback_list_rejects_objects_that_are_not_callbacks():
    with pytest.raises(TypeError, match="dict"):
        CallbackList([History(), {"on_epoch_end": print}])


# --- History -----------------------------------------------------------------------------


def test_history_records_each_epoch_logs_as_floats():
    history = History()
    per_epoch = [{"loss": 0.5, "val_loss": 0.75}, {"loss": 0.25, "val_loss": 0.625}]
    for epoch, values in enumerate(per_epoch):
        history.on_epoch_end(epoch, Logs({k: jnp.float32(v) for k, v in values.items()}))
    assert history.epoch == [0, 1]
    assert history.history == {"loss": [0.5, 0.25], "val_loss": [0.75, 0.625]}
    assert all(type(v) is float for values in history.history.values() for v in values)


def test_history_records_epoch_without_logs():
    history = History()
    history.on_epoch_end(3, None)
    assert history.epoch == [3] and history.history == {}


def test_history_through_callback_list_ignores_batch_hooks():
    history = History()
    callbacks = CallbackList([history])
    callbacks.on_train_batch_end(0, Logs({"loss": jnp.float32(9.0)}))
    callbacks.on_epoch_end(0, Logs({"loss": jnp.float32(1.5)}))
    assert history.history == {"loss": [1.5]}


# --- Logs ----------------------------------------------------------------------------------


def test_logs_converts_device_scalars_to_python_floats():
    logs = Logs({"loss": jnp.float32(0.25), "acc": np.float32(0.75), "count": jnp.int32(3)})
    assert dict(logs) == {"loss": 0.25, "acc": 0.75, "count": 3}
    assert type(logs["loss"]) is float and type(logs["acc"]) is float and type(logs["count"]) is int


def test_logs_keeps_array_values_as_numpy_arrays():
    logs = Logs({"per_class": jnp.array([0.5, 0.25])})
    assert isinstance(logs["per_class"], np.ndarray)
    np.testing.assert_array_equal(logs["per_class"], [0.5, 0.25])


@pytest.fixture
def counted_device_get(monkeypatch):
    calls = []
    real = jax.device_get

    def device_get(tree):
        calls.append(tree)
        return real(tree)

    monkeypatch.setattr(jax, "device_get", device_get)
    return calls


def test_logs_do_not_fetch_until_a_value_is_read(counted_device_get):
    logs = Logs({"loss": jnp.float32(1.0), "acc": jnp.float32(0.5)})
    assert len(logs) == 2 and list(logs) == ["loss", "acc"]
    logs.with_prefix("val_")
    logs.merged({"lr": 0.1})
    assert counted_device_get == []


def test_logs_fetch_all_values_in_one_transfer_once(counted_device_get):
    logs = Logs({"loss": jnp.float32(1.0), "acc": jnp.float32(0.5)})
    assert logs["loss"] == 1.0
    assert logs["acc"] == 0.5
    assert dict(logs) == {"loss": 1.0, "acc": 0.5}
    assert len(counted_device_get) == 1


def test_logs_with_prefix_renames_every_key():
    logs = Logs({"loss": jnp.float32(0.5), "acc": jnp.float32(0.25)}).with_prefix("val_")
    assert dict(logs) == {"val_loss": 0.5, "val_acc": 0.25}


@pytest.mark.parametrize("as_logs", [True, False], ids=["logs", "dict"])
def test_logs_merged_adds_keys_and_other_wins_on_conflicts(as_logs):
    base = Logs({"loss": jnp.float32(0.5), "acc": jnp.float32(0.25)})
    other = {"acc": jnp.float32(0.75), "val_loss": jnp.float32(1.5)}
    merged = base.merged(Logs(other) if as_logs else other)
    assert dict(merged) == {"loss": 0.5, "acc": 0.75, "val_loss": 1.5}
    assert dict(base) == {"loss": 0.5, "acc": 0.25}


def test_a_callback_may_add_and_replace_entries(counted_device_get):
    """As Keras callbacks do (`logs["lr"] = ...`): the additions come after the step's own
    logs, and neither setting nor reading them costs an extra transfer."""
    logs = Logs({"loss": jnp.float32(1.0), "acc": jnp.float32(0.5)}, order=("loss", "acc"))
    logs["lr"] = 0.01
    assert counted_device_get == []
    logs["acc"] = 0.75
    assert dict(logs) == {"loss": 1.0, "acc": 0.75, "lr": 0.01} and list(logs) == ["loss", "acc", "lr"]
    logs["late"] = jnp.float32(2.0)  # after the fetch: stored as a float at once
    assert logs["late"] == 2.0 and type(logs["late"]) is float
    del logs["acc"]
    assert list(logs) == ["loss", "lr", "late"]
    assert len(counted_device_get) == 2  # the first read, and the device value set after it


def test_entries_added_to_a_fused_step_s_logs_are_kept():
    fetched = {"loss": 1.0}
    logs = Logs({"loss": jnp.float32(9.0)}, source=lambda: fetched)
    logs["lr"] = jnp.float32(0.5)
    assert dict(logs) == {"loss": 1.0, "lr": 0.5}


# --- ProgbarLogger -----------------------------------------------------------------------

EPOCH_LOGS = [{"loss": 0.5, "accuracy": 0.875}, {"loss": 0.25, "accuracy": 2 / 3}]
EPOCH_TEXT = [" - loss: 0.5000 - accuracy: 0.8750", " - loss: 0.2500 - accuracy: 0.6667"]
FULL_BAR = "3/3 [" + "=" * 30 + "]"


class TTY(io.StringIO):
    def isatty(self):
        return True


def device_logs(values):
    return Logs({k: jnp.float32(v) for k, v in values.items()})


def run_fit(progbar, epochs=2, steps=3):
    callbacks = CallbackList([progbar], epochs=epochs, steps=steps, verbose=progbar.verbose)
    callbacks.on_train_begin()
    for epoch in range(epochs):
        callbacks.on_epoch_begin(epoch)
        for step in range(steps):
            callbacks.on_train_batch_begin(step)
            callbacks.on_train_batch_end(step, device_logs({"loss": 1.0 / (step + 1)}))
        callbacks.on_epoch_end(epoch, device_logs(EPOCH_LOGS[epoch]))
    callbacks.on_train_end()


def run_evaluate(progbar, steps=2, final=None, inside_fit=False):
    callbacks = CallbackList([progbar], steps=steps, verbose=progbar.verbose)
    if inside_fit:
        callbacks.on_train_begin()
    callbacks.on_test_begin()
    for step in range(steps):
        callbacks.on_test_batch_begin(step)
        callbacks.on_test_batch_end(step, device_logs({"loss": 0.125}))
    callbacks.on_test_end(device_logs(final or {"loss": 0.125}))


def test_progbar_verbose_2_writes_one_line_per_epoch_with_4_decimal_logs():
    stream = io.StringIO()
    run_fit(ProgbarLogger(verbose=2, stream=stream))
    text = stream.getvalue()
    lines = text.splitlines()
    assert len(lines) == 2 and text.endswith("\n") and "\r" not in text
    for epoch, line in enumerate(lines):
        assert line.startswith(f"Epoch {epoch + 1}/2 - ")
        assert line.endswith(EPOCH_TEXT[epoch])


def test_progbar_verbose_1_to_non_tty_writes_header_and_final_bar_per_epoch():
    stream = io.StringIO()
    run_fit(ProgbarLogger(verbose=1, stream=stream))
    text = stream.getvalue()
    lines = text.splitlines()
    assert "\r" not in text
    assert len(lines) == 4
    for epoch in range(2):
        header, bar = lines[2 * epoch], lines[2 * epoch + 1]
        assert header == f"Epoch {epoch + 1}/2"
        assert bar.startswith(FULL_BAR + " - ")
        assert bar.endswith(EPOCH_TEXT[epoch])


def test_progbar_verbose_1_to_tty_redraws_the_bar_in_place():
    stream = TTY()
    run_fit(ProgbarLogger(verbose=1, interval=0.0, stream=stream), epochs=1)
    text = stream.getvalue()
    first_bar = "1/3 [" + "=" * 10 + ">" + "." * 19 + "]"
    assert "\r" + first_bar + " - ETA: " in text
    assert "loss: 1.0000" in text  # the first batch's log
    assert "\r" + FULL_BAR in text and text.rstrip().endswith(EPOCH_TEXT[0])


def test_progbar_verbose_0_writes_nothing():
    stream = io.StringIO()
    progbar = ProgbarLogger(verbose=0, stream=stream)
    run_fit(progbar)
    run_evaluate(progbar)
    assert stream.getvalue() == ""


def test_progbar_evaluate_outside_fit_writes_one_final_line():
    stream = io.StringIO()
    run_evaluate(ProgbarLogger(verbose=1, stream=stream), final={"loss": 1 / 3})
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("2/2 [" + "=" * 30 + "] - ")
    assert lines[0].endswith(" - loss: 0.3333")


def test_progbar_is_silent_for_validation_inside_fit():
    stream = io.StringIO()
    run_evaluate(ProgbarLogger(verbose=1, stream=stream), inside_fit=True)
    assert stream.getvalue() == ""


def test_progbar_predict_writes_final_bar_without_logs():
    stream = io.StringIO()
    progbar = ProgbarLogger(verbose=1, stream=stream)
    callbacks = CallbackList([progbar], steps=4, verbose=1)
    callbacks.on_predict_begin()
    for step in range(4):
        callbacks.on_predict_batch_end(step)
    callbacks.on_predict_end()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("4/4 [" + "=" * 30 + "] - ")
    assert "loss" not in lines[0]


@pytest.mark.parametrize(
    "value, text",
    [
        (0.5, "0.5000"),
        (np.float64(0.5), "0.5000"),
        (3, "3.0000"),
        (np.float32(0.5), "0.5000"),
        (jnp.float32(0.5), "0.5000"),
    ],
    ids=["float", "np.float64", "int", "np.float32", "jax-scalar"],
)
def test_progbar_formats_numeric_scalar_logs_given_as_plain_dict(value, text):
    stream = io.StringIO()
    progbar = ProgbarLogger(verbose=2, stream=stream)
    progbar.set_params({"epochs": 1, "steps": 1})
    progbar.on_epoch_begin(0)
    progbar.on_epoch_end(0, {"loss": value})
    assert stream.getvalue().rstrip("\n").endswith(f" - loss: {text}")


def test_progbar_skips_array_valued_logs():
    stream = io.StringIO()
    progbar = ProgbarLogger(verbose=2, stream=stream)
    progbar.set_params({"epochs": 1, "steps": 1})
    progbar.on_epoch_begin(0)
    progbar.on_epoch_end(0, Logs({"per_class": jnp.array([0.5, 0.25]), "loss": jnp.float32(0.5)}))
    line = stream.getvalue().rstrip("\n")
    assert "per_class" not in line and line.endswith(" - loss: 0.5000")


@pytest.mark.parametrize(
    "seconds, text", [(0.2, "0s"), (5, "5s"), (59.4, "59s"), (65, "1:05"), (3725, "1:02:05")]
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    "done, total, text",
    [
        (1, 4, "1/4 [" + "=" * 7 + ">" + "." * 22 + "]"),
        (4, 4, "4/4 [" + "=" * 30 + "]"),
        (3, 10, " 3/10 [" + "=" * 9 + ">" + "." * 20 + "]"),  # count padded to width of 10
        (5, None, "5/Unknown"),
    ],
)
def test_format_bar(done, total, text):
    assert format_bar(done, total) == text

"""TensorBoard event files, read back by TensorBoard's own reader."""

import glob
import os

import numpy as np
import optax
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tests.conftest import blobs, mlp_forward

import elegy


def make_model(optimizer=None):
    return elegy.Model(
        mlp_forward,
        loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        optimizer=optimizer or optax.adam(1e-2),
    )


def read(run_dir):
    accumulator = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "histograms": 0})
    accumulator.Reload()
    return accumulator


def points(accumulator, tag):
    return [(event.step, event.value) for event in accumulator.Scalars(tag)]


def test_epoch_scalars_match_history_one_point_per_epoch(tmp_path):
    x, y = blobs(100)
    history = make_model().fit(
        x,
        y,
        epochs=3,
        batch_size=32,
        validation_split=0.2,
        verbose=0,
        callbacks=[elegy.callbacks.TensorBoard(tmp_path)],
    )
    train, validation = read(tmp_path / "train"), read(tmp_path / "validation")
    assert {"epoch_loss", "epoch_accuracy", "epoch_steps_per_second"} <= set(train.Tags()["scalars"])
    assert set(validation.Tags()["scalars"]) == {"epoch_loss", "epoch_accuracy"}
    for accumulator, prefix in ((train, ""), (validation, "val_")):
        for name in ("loss", "accuracy"):
            steps, values = zip(*points(accumulator, f"epoch_{name}"), strict=True)
            assert steps == (0, 1, 2)
            np.testing.assert_allclose(values, history.history[prefix + name], rtol=1e-6)


def test_batch_points_every_n_batches(tmp_path):
    x, y = blobs(100)  # 4 batches of 32 per epoch, 8 in all
    make_model().fit(
        x,
        y,
        epochs=2,
        batch_size=32,
        verbose=0,
        callbacks=[elegy.callbacks.TensorBoard(tmp_path, update_freq=3)],
    )
    batches = read(tmp_path / "train" / "batch")  # a run of its own: its steps count batches
    assert [step for step, _ in points(batches, "batch_loss")] == [3, 6]
    assert len(points(read(tmp_path / "train"), "epoch_loss")) == 2


def test_histograms_of_every_parameter_when_asked(tmp_path):
    x, y = blobs(64)
    make_model().fit(
        x, y, epochs=2, verbose=0, callbacks=[elegy.callbacks.TensorBoard(tmp_path, histogram_freq=1)]
    )
    tags = read(tmp_path / "train").Tags()["histograms"]
    assert sorted(tags) == ["mlp/linear_0/b", "mlp/linear_0/w", "mlp/linear_1/b", "mlp/linear_1/w"]


def test_the_learning_rate_of_a_schedule_decreases_epoch_by_epoch(tmp_path):
    x, y = blobs(64)
    schedule = optax.exponential_decay(1e-2, transition_steps=1, decay_rate=0.5)
    model = make_model(optax.inject_hyperparams(optax.adam)(learning_rate=schedule))
    history = model.fit(
        x, y, epochs=3, batch_size=32, verbose=0, callbacks=[elegy.callbacks.TensorBoard(tmp_path)]
    )
    logged = [value for _, value in points(read(tmp_path / "train"), "epoch_learning_rate")]
    # two steps per epoch: the last step of epoch e used schedule(2e + 1)
    np.testing.assert_allclose(logged, [float(schedule(2 * e + 1)) for e in range(3)], rtol=1e-6)
    np.testing.assert_allclose(history.history["learning_rate"], logged, rtol=1e-6)


def test_writers_are_flushed_each_epoch_and_closed_when_fit_fails(tmp_path):
    x, y = blobs(64)
    board = elegy.callbacks.TensorBoard(tmp_path)

    def fail_on_second_epoch(epoch, logs):
        if epoch == 1:
            raise RuntimeError("user code failed")

    with pytest.raises(RuntimeError, match="user code failed"):
        make_model().fit(
            x,
            y,
            epochs=3,
            verbose=0,
            callbacks=[board, elegy.callbacks.LambdaCallback(on_epoch_end=fail_on_second_epoch)],
        )
    assert board._writers == {}  # closed
    assert [step for step, _ in points(read(tmp_path / "train"), "epoch_loss")] == [0, 1]


def test_two_writers_in_the_same_second_do_not_share_a_file(tmp_path):
    x, y = blobs(64)
    boards = [elegy.callbacks.TensorBoard(tmp_path), elegy.callbacks.TensorBoard(tmp_path)]
    make_model().fit(x, y, epochs=1, verbose=0, callbacks=boards)
    assert len(glob.glob(os.path.join(tmp_path, "train", "events.out.tfevents.*"))) == 2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"update_freq": 0}, "update_freq must be 'epoch' or an integer >= 1"),
        ({"histogram_freq": -1}, "histogram_freq must be an integer >= 0"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        elegy.callbacks.TensorBoard("runs", **kwargs)


def test_write_hparams_records_the_configuration_as_text(tmp_path):
    x, y = blobs(64)
    make_model().fit(
        x,
        y,
        epochs=1,
        verbose=0,
        callbacks=[elegy.callbacks.TensorBoard(log_dir=tmp_path, write_hparams=True)],
    )
    accumulator = EventAccumulator(str(tmp_path / "train"), size_guidance={"tensors": 0})
    accumulator.Reload()
    assert "config/text_summary" in accumulator.Tags()["tensors"]
    text = accumulator.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "| seed | 42 |" in text and "| fit.epochs | 1 |" in text


def test_the_model_summary_is_written_once_as_text(tmp_path):
    x, y = blobs(64)
    model = make_model()
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[elegy.callbacks.TensorBoard(tmp_path)])
    accumulator = EventAccumulator(str(tmp_path / "train"), size_guidance={"tensors": 0})
    accumulator.Reload()
    events = accumulator.Tensors("model_summary/text_summary")
    assert len(events) == 1 and events[0].step == 0
    text = events[0].tensor_proto.string_val[0].decode()
    expected = model.summary(x[:16], print_fn=None)  # the batch the model was built with
    assert text == "\n".join("    " + line for line in expected.splitlines())
    assert "mlp/~/linear_0" in text and "Total params: 131" in text


def test_no_model_summary_when_switched_off(tmp_path):
    x, y = blobs(64)
    board = elegy.callbacks.TensorBoard(tmp_path, write_summary=False)
    make_model().fit(x, y, epochs=1, verbose=0, callbacks=[board])
    accumulator = EventAccumulator(str(tmp_path / "train"), size_guidance={"tensors": 0})
    accumulator.Reload()
    assert "model_summary/text_summary" not in accumulator.Tags()["tensors"]


@pytest.mark.parametrize("profile_batch", [3, (2, 5)])
def test_profile_batch_writes_a_trace_for_tensorboards_profile_tab(tmp_path, profile_batch):
    x, y = blobs(64)  # 4 batches of 16 per epoch
    board = elegy.callbacks.TensorBoard(tmp_path, profile_batch=profile_batch)
    make_model().fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[board])
    traces = glob.glob(os.path.join(tmp_path, "train", "plugins", "profile", "*", "*.xplane.pb"))
    assert len(traces) == 1 and os.path.getsize(traces[0]) > 0


def test_a_profile_range_cut_short_by_the_end_of_fit_is_still_closed(tmp_path):
    x, y = blobs(32)
    board = elegy.callbacks.TensorBoard(tmp_path, profile_batch=(2, 100))
    make_model().fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[board])
    assert glob.glob(os.path.join(tmp_path, "train", "plugins", "profile", "*", "*.xplane.pb"))
    import jax

    jax.profiler.start_trace(str(tmp_path / "again"))  # raises if a trace were still running
    jax.profiler.stop_trace()


@pytest.mark.parametrize("profile_batch", [-1, (3, 2), (0, 2), "2", 1.5, (1, 2, 3)])
def test_bad_profile_batch_is_refused(profile_batch):
    with pytest.raises(ValueError, match="profile_batch must be 0, a batch number >= 1 or a pair"):
        elegy.callbacks.TensorBoard("runs", profile_batch=profile_batch)

"""TensorBoard(hparams=..., write_hparams=True): the HParams plugin's records, read back with
TensorBoard's own event reader and parsed by the plugin's own metadata functions (the
live server's view of them is checked in test_tensorboard_server.py)."""

import optax
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import api_pb2, metadata
from tests.conftest import blobs, mlp_forward

import elegy
from elegy.callbacks import TensorBoard

X, Y = blobs(60)


def fit(logdir, learning_rate=1e-2, **options):
    model = elegy.Model(
        mlp_forward,
        loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        optimizer=optax.adam(learning_rate),
    )
    return model.fit(X, Y, batch_size=20, epochs=2, verbose=0, callbacks=[TensorBoard(logdir, **options)])


def session_records(run):
    content = EventAccumulator(str(run)).Reload().PluginTagToContent(metadata.PLUGIN_NAME)
    start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
    end = metadata.parse_session_end_info_plugin_data(content[metadata.SESSION_END_INFO_TAG])
    hparams = {name: getattr(value, value.WhichOneof("kind")) for name, value in start.hparams.items()}
    return hparams, start, end


def test_each_run_is_a_session_with_its_hyperparameters(tmp_path):
    for rate in (0.01, 0.1):
        fit(tmp_path / f"lr={rate}", rate, hparams={"learning_rate": rate, "optimizer": "adam", "bn": False})
    for rate in (0.01, 0.1):
        hparams, start, end = session_records(tmp_path / f"lr={rate}")
        assert hparams == {"learning_rate": rate, "optimizer": "adam", "bn": False}
        assert end.status == api_pb2.STATUS_SUCCESS
        assert start.start_time_secs <= end.end_time_secs
    # The session's metrics are the curves below it.
    assert "epoch_loss" in EventAccumulator(str(tmp_path / "lr=0.1" / "train")).Reload().Tags()["scalars"]


def test_write_hparams_takes_the_model_s_configuration(tmp_path):
    fit(tmp_path, write_hparams=True, hparams={"width": 16})
    hparams, _, _ = session_records(tmp_path)
    assert hparams["width"] == 16.0
    assert hparams["loss"] == "sparse_categorical_crossentropy" and hparams["metrics"] == "accuracy"
    assert hparams["fit.batch_size"] == 20.0 and hparams["fit.epochs"] == 2.0 and hparams["seed"] == 42.0


def test_without_hparams_no_session_is_written(tmp_path):
    fit(tmp_path)
    for run in (tmp_path, tmp_path / "train"):
        with pytest.raises(KeyError, match="hparams"):
            EventAccumulator(str(run)).Reload().PluginTagToContent(metadata.PLUGIN_NAME)


@pytest.mark.parametrize(
    ("hparams", "message"), [({"layers": [64, 64]}, r"hparams\['layers'\]"), ([1], "dict")]
)
def test_bad_hyperparameters_name_the_culprit(hparams, message):
    with pytest.raises(TypeError, match=message):
        TensorBoard("runs", hparams=hparams)


def test_numpy_booleans_and_optax_transformations_read_well():
    import numpy as np

    from elegy.callbacks.hparams import checked_hparams, model_hparams

    assert checked_hparams({"flag": np.True_}) == {"flag": True}
    model = elegy.Model(lambda x: x, loss="mse", optimizer=optax.adam(1e-3))
    assert model_hparams(model, {})["optimizer"] == type(optax.adam(1e-3)).__name__

"""model.save / elegy.load / save_weights / load_weights, checked bit for bit through fit."""

import pickle
import re
import subprocess
import sys
import textwrap
import warnings

import jax
import numpy as np
import optax
import pytest
from tests.conftest import blobs, bn_dropout_forward, mlp_forward

import elegy
from elegy.serialization import InvalidSaveError

SCE = elegy.losses.SparseCategoricalCrossentropy

OPTIMIZERS = {
    "adam": lambda: optax.adam(1e-2),
    "inject_hyperparams_with_schedule": lambda: optax.inject_hyperparams(optax.adam)(
        learning_rate=optax.exponential_decay(1e-2, transition_steps=3, decay_rate=0.5)
    ),
    "chain_clip_adamw_schedule": lambda: optax.chain(
        optax.clip_by_global_norm(1.0),
        optax.adamw(optax.warmup_cosine_decay_schedule(0.0, 1e-2, 4, 40), weight_decay=1e-3),
    ),
}


def make_model(module=bn_dropout_forward, optimizer="adam", **kwargs):
    return elegy.Model(
        module,
        loss=SCE(from_logits=True),
        metrics=["accuracy"],
        optimizer=OPTIMIZERS[optimizer](),
        **kwargs,
    )


def leaves_equal(a, b) -> bool:
    """Bitwise equality of every leaf, with identical tree structure."""
    if jax.tree_util.tree_structure(a) != jax.tree_util.tree_structure(b):
        return False
    pairs = zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True)
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in pairs)


@pytest.fixture(scope="module")
def trained():
    """A BatchNorm + dropout model with an inject_hyperparams schedule after 2 epochs."""
    x, y = blobs(100)
    model = make_model(optimizer="inject_hyperparams_with_schedule")
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    return model, x, y


def test_loaded_model_predicts_identically(trained, tmp_path):
    model, x, _ = trained
    model.save(tmp_path / "saved")
    loaded = elegy.load(tmp_path / "saved")
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_loaded_model_continues_training_bit_for_bit(optimizer, tmp_path):
    x, y = blobs(90)
    original = make_model(optimizer=optimizer)
    original.fit(x, y, batch_size=16, epochs=2, verbose=0)
    original.save(tmp_path / "saved")
    loaded = elegy.load(tmp_path / "saved")

    assert leaves_equal(dict(loaded.states), dict(original.states))
    expected = original.fit(x, y, batch_size=16, epochs=3, initial_epoch=2, verbose=0).history
    resumed = loaded.fit(x, y, batch_size=16, epochs=3, initial_epoch=2, verbose=0).history
    assert resumed == expected
    assert leaves_equal(dict(loaded.states), dict(original.states))


def test_save_holds_every_field_of_states(trained, tmp_path):
    model, _, _ = trained
    model.save_weights(tmp_path / "weights")
    restored = make_model(optimizer="inject_hyperparams_with_schedule")
    restored.init(*blobs(4))
    restored.load_weights(tmp_path / "weights")
    assert set(restored.states) == set(model.states)
    for field in model.states:
        assert leaves_equal(restored.states[field], model.states[field]), field
    assert int(restored.states.epoch) == 2
    assert restored.states.net_states  # BatchNorm moving averages travelled too


def test_save_does_not_change_the_model(trained, tmp_path):
    model, x, _ = trained
    before = jax.tree_util.tree_map(np.asarray, dict(model.states))
    history = model.history
    model.save(tmp_path / "saved")
    assert leaves_equal(dict(model.states), before)
    assert model.history is history


def test_saving_again_replaces_the_previous_version(trained, tmp_path):
    model, x, y = trained
    path = tmp_path / "saved"
    first = model.save(path)
    second = model.save(path)
    assert first != second and not first.exists() and second.exists()
    assert sorted(p.name for p in path.iterdir()) == ["LATEST", second.name]


def test_unbuilt_model_round_trips_and_initialises_from_the_seed(tmp_path):
    x, y = blobs(40)
    make_model(seed=7).save(tmp_path / "saved")
    loaded = elegy.load(tmp_path / "saved")
    assert not loaded.built
    fresh = make_model(seed=7)
    np.testing.assert_array_equal(loaded.predict(x), fresh.predict(x))


def test_load_in_a_new_process(tmp_path):
    """A model whose network is a lambda in __main__ (pickled by value) loads elsewhere."""
    script = textwrap.dedent(
        f"""
        import sys, numpy as np, haiku as hk, optax, elegy
        x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(8, 3)
        if sys.argv[1] == "save":
            model = elegy.Model(lambda x: hk.Linear(2)(x), loss="mse", optimizer=optax.sgd(0.1))
            model.fit(x, x[:, :2], epochs=2, verbose=0)
            model.save({str(tmp_path / "saved")!r})
            np.save({str(tmp_path / "expected.npy")!r}, model.predict(x))
        else:
            model = elegy.load({str(tmp_path / "saved")!r})
            np.testing.assert_array_equal(model.predict(x), np.load({str(tmp_path / "expected.npy")!r}))
            print("loaded ok")
        """
    )
    for mode in ("save", "load"):
        run = subprocess.run(
            [sys.executable, "-c", script, mode], capture_output=True, text=True, timeout=120
        )
        assert run.returncode == 0, run.stderr
    assert "loaded ok" in run.stdout


# ---------------------------------------------------------------- weights only
def test_load_weights_never_unpickles(trained, tmp_path, monkeypatch):
    model, x, _ = trained
    model.save(tmp_path / "saved")
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("load_weights unpickled something"))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("load_weights unpickled something"))
    other = make_model(optimizer="inject_hyperparams_with_schedule")
    other.init(*blobs(4))
    other.load_weights(tmp_path / "saved")  # a full save also serves weights
    np.testing.assert_array_equal(other.predict(x), model.predict(x))


def test_weights_only_save_contains_no_pickle(trained, tmp_path):
    model, _, _ = trained
    version = model.save_weights(tmp_path / "weights")
    assert not [p for p in version.rglob("*") if p.suffix in (".pkl", ".pickle")]
    with pytest.raises(InvalidSaveError, match="only weights.*load_weights"):
        elegy.load(tmp_path / "weights")


def test_load_weights_on_a_predict_only_model_skips_the_optimizer_with_a_warning(trained, tmp_path):
    model, x, _ = trained
    model.save_weights(tmp_path / "weights")
    predictor = make_model(optimizer="inject_hyperparams_with_schedule")
    predictor.predict(x[:2])
    with pytest.warns(UserWarning, match="optimizer_states.*model.init"):
        predictor.load_weights(tmp_path / "weights")
    np.testing.assert_array_equal(predictor.predict(x), model.predict(x))


def test_load_weights_names_the_mismatching_paths(trained, tmp_path):
    model, x, _ = trained
    model.save_weights(tmp_path / "weights")
    different = elegy.Model(mlp_forward, loss=SCE(from_logits=True), optimizer=optax.adam(1e-2))
    different.init(x[:4], np.zeros(4, np.int32))
    before = different.states
    with pytest.raises(ValueError) as error:
        different.load_weights(tmp_path / "weights")
    message = str(error.value)
    assert "['net_params']['mlp/~/linear_0']['w']: in this model, not in the save" in message
    assert "['net_params']['batch_norm']['scale']: in the save, not in this model" in message
    assert re.search(r"\(\d+ difference\(s\)\).*\.\.\. and \d+ more", message, re.S)
    assert different.states is before  # nothing was changed


def test_load_weights_names_a_shape_difference(tmp_path):
    x, y = blobs(20)
    narrow = elegy.Model(lambda x: elegy_mlp(x, 8), loss=SCE(from_logits=True), optimizer=optax.sgd(0.1))
    wide = elegy.Model(lambda x: elegy_mlp(x, 16), loss=SCE(from_logits=True), optimizer=optax.sgd(0.1))
    narrow.init(x, y)
    wide.init(x, y)
    narrow.save_weights(tmp_path / "weights")
    with pytest.raises(
        ValueError,
        match=r"\['net_params'\]\['mlp/~/linear_0'\]\['w'\]: saved float32\[4, 8\], this model has float32\[4, 16\]",
    ):
        wide.load_weights(tmp_path / "weights")


def elegy_mlp(x, width):
    import haiku as hk

    return hk.nets.MLP([width, 3])(x)


def test_load_weights_on_an_unbuilt_model_is_a_clear_error(trained, tmp_path):
    model, _, _ = trained
    model.save_weights(tmp_path / "weights")
    with pytest.raises(ValueError, match="not initialized.*model.init"):
        make_model().load_weights(tmp_path / "weights")


# ---------------------------------------------------------------- paths
def test_save_refuses_to_overwrite_a_file(trained, tmp_path):
    model, _, _ = trained
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    with pytest.raises(ValueError, match="path: .* is a file"):
        model.save(target)
    assert target.read_text() == "keep me"


def test_save_refuses_a_folder_that_holds_other_files(trained, tmp_path):
    model, _, _ = trained
    (tmp_path / "data.csv").write_text("1,2,3")
    with pytest.raises(ValueError, match="not an Elegy save.*refusing"):
        model.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv"]


def test_loading_a_missing_path_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="no save at"):
        elegy.load(tmp_path / "nothing")


def test_loading_a_folder_that_is_not_a_save(tmp_path):
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(InvalidSaveError, match="not an Elegy save"):
        elegy.load(tmp_path)


def test_no_warning_on_a_plain_round_trip(trained, tmp_path):
    model, _, _ = trained
    model.save(tmp_path / "saved")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        elegy.load(tmp_path / "saved")


def test_a_model_that_cannot_be_pickled_points_to_save_weights(tmp_path):
    import threading

    model = make_model()
    model.lock = threading.Lock()
    with pytest.raises(TypeError, match="cannot be pickled.*save_weights"):
        model.save(tmp_path / "saved")
    assert not (tmp_path / "saved" / "LATEST").exists()


def test_another_optimizer_is_named_with_the_way_to_load_the_network_alone(trained, tmp_path):
    model, x, y = trained
    model.save_weights(tmp_path / "weights")
    sgd = elegy.Model(
        bn_dropout_forward, loss=SCE(from_logits=True), metrics=["accuracy"], optimizer=optax.sgd(0.1)
    )
    sgd.init(x[:4], y[:4])
    with pytest.raises(ValueError, match="network's own fields match.*model.init\\(x\\)"):
        sgd.load_weights(tmp_path / "weights")
    network_only = elegy.Model(bn_dropout_forward, loss=SCE(from_logits=True), optimizer=optax.sgd(0.1))
    network_only.init(x[:4])
    with pytest.warns(UserWarning, match="not loaded"):
        network_only.load_weights(tmp_path / "weights")
    np.testing.assert_array_equal(network_only.predict(x), model.predict(x))

"""`model.export` for serving: read back by a process with jax and numpy alone."""

import json
import subprocess
import sys
import textwrap

import haiku as hk
import jax
import numpy as np
import optax
import pytest

import elegy
from elegy.serialization import InvalidSaveError


def forward(x, training):
    """A dict input and BatchNorm statistics: params and net states both exported."""
    h = hk.Linear(16)(jax.numpy.concatenate([x["image"], x["extra"]], axis=-1))
    h = hk.BatchNorm(True, True, 0.9)(h, is_training=training)
    return hk.Linear(3)(jax.nn.relu(h))


def data(rows, seed=0):
    rng = np.random.default_rng(seed)
    x = {
        "image": rng.normal(size=(rows, 6)).astype("float32"),
        "extra": rng.normal(size=(rows, 2)).astype("float32"),
    }
    return x, rng.integers(0, 3, rows)


@pytest.fixture(scope="module")
def trained():
    x, y = data(96)
    model = elegy.Model(
        forward,
        loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer=optax.adam(1e-2),
    )
    model.fit(x, y, batch_size=32, epochs=2, verbose=0)
    return model


# The loader of docs/saving.md, run where neither elegy nor haiku can be imported.
SERVING_PROCESS = textwrap.dedent(
    """
    import sys
    sys.modules["elegy"] = sys.modules["haiku"] = None  # importing either now fails
    import jax, numpy as np
    p, inputs, outputs = sys.argv[1:4]
    exp = jax.export.deserialize(open(p + "/predict.jaxexport", "rb").read())
    w = np.load(p + "/weights.npz", allow_pickle=False)
    xs = np.load(inputs, allow_pickle=False)
    results = {}
    for n in (1, 7, 64):
        x = {"image": xs["image"][:n], "extra": xs["extra"][:n]}
        results[str(n)] = np.asarray(exp.call([w[f"arr_{i}"] for i in range(len(w.files))], x))
    np.savez(outputs, **results)
    """
)


def test_a_process_without_elegy_or_haiku_predicts_what_predict_does(trained, tmp_path):
    folder = trained.export(tmp_path / "served")
    x, _ = data(64, seed=1)
    np.savez(tmp_path / "inputs.npz", **x)
    subprocess.run(
        [
            sys.executable,
            "-c",
            SERVING_PROCESS,
            str(folder),
            str(tmp_path / "inputs.npz"),
            str(tmp_path / "out.npz"),
        ],
        check=True,
        timeout=120,
    )
    served = np.load(tmp_path / "out.npz")
    for rows in (1, 7, 64):
        expected = trained.predict({k: v[:rows] for k, v in x.items()}, batch_size=rows)
        assert served[str(rows)].dtype == np.float32
        np.testing.assert_allclose(served[str(rows)], expected, atol=1e-6, rtol=0)


def test_the_weights_are_the_models_own_arrays_without_pickle(trained, tmp_path):
    folder = trained.export(tmp_path / "served")
    stored = np.load(folder / "weights.npz", allow_pickle=False)
    exported = [stored[f"arr_{i}"] for i in range(len(stored.files))]
    params = jax.tree_util.tree_leaves(jax.device_get(trained.states.net_params))
    net_states = jax.tree_util.tree_leaves(jax.device_get(trained.states.net_states))
    for leaf in params + net_states:  # every param and BatchNorm statistic, bit for bit
        assert any(a.shape == leaf.shape and np.array_equal(a, leaf) for a in exported)
    optimizer_leaves = jax.tree_util.tree_leaves(trained.states.optimizer_states)
    assert len(exported) < len(params) + len(net_states) + len(optimizer_leaves)  # no Adam moments


def test_load_exported_checks_the_hashes(trained, tmp_path):
    folder = trained.export(tmp_path / "served")
    x, _ = data(5, seed=2)
    np.testing.assert_allclose(elegy.load_exported(folder)(x), trained.predict(x), atol=1e-6)
    weights = dict(np.load(folder / "weights.npz"))
    weights["arr_0"] = weights["arr_0"] + 1.0
    np.savez(folder / "weights.npz", *[weights[f"arr_{i}"] for i in range(len(weights))])
    with pytest.raises(InvalidSaveError, match="altered: weights.npz"):
        elegy.load_exported(folder)


def test_a_new_export_replaces_an_old_one_but_never_other_files(trained, tmp_path):
    folder = trained.export(tmp_path / "served")
    first = json.loads((folder / "manifest.json").read_text())
    assert first["format"] == "elegy-export" and first["platforms"] == [jax.default_backend()]
    assert trained.export(folder) == folder  # replaced as a whole
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "predict.jaxexport", "weights.npz"]
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds other files"):
        trained.export(other)
    assert (other / "keep.txt").read_text() == "mine"


def test_an_unbuilt_model_cannot_be_exported(tmp_path):
    with pytest.raises(ValueError, match="has not been built"):
        elegy.Model(forward).export(tmp_path / "served")


def test_several_platforms_in_one_export(trained, tmp_path):
    folder = trained.export(tmp_path / "served", platforms=("cpu", "cuda"))
    exported = jax.export.deserialize(bytearray((folder / "predict.jaxexport").read_bytes()))
    assert exported.platforms == ("cpu", "cuda")
    x, _ = data(3, seed=3)
    np.testing.assert_allclose(elegy.load_exported(folder)(x), trained.predict(x), atol=1e-6)

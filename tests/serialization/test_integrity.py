"""Fault injection: an interrupted save never costs the previous one, a damaged save never
loads as a wrong model."""

import json
import shutil
import subprocess
import sys
import textwrap
import threading

import numpy as np
import optax
import pytest
from tests.conftest import blobs, mlp_forward

import elegy
from elegy.serialization import InvalidSaveError, arrays, store

X, Y = blobs(40)


def make_model(seed=0):
    model = elegy.Model(
        mlp_forward,
        loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer=optax.sgd(0.1),
        seed=seed,
    )
    model.init(X, Y)
    return model


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A saved model and its predictions, copied fresh for each test."""
    folder = tmp_path_factory.mktemp("pristine") / "saved"
    model = make_model(seed=0)
    model.save(folder)
    return folder, model.predict(X)


@pytest.fixture
def saved(pristine, tmp_path):
    folder, predictions = pristine
    copy = tmp_path / "saved"
    shutil.copytree(folder, copy)
    return copy, predictions


def current_version(path):
    return path / json.loads((path / "LATEST").read_text())["version"]


def largest_array_file(path):
    files = [f for f in (current_version(path) / "states" / "net_params").rglob("*") if f.is_file()]
    return max(files, key=lambda f: f.stat().st_size)


def assert_loads_as(path, predictions):
    np.testing.assert_array_equal(elegy.load(path).predict(X), predictions)


# ---------------------------------------------------------------- interrupted saves
def test_an_error_midway_through_writing_keeps_the_previous_save(saved, monkeypatch):
    path, predictions = saved
    real_save = arrays._orbax().Checkpointer.save
    calls = []

    def failing_save(self, *args, **kwargs):
        calls.append(args[0])
        if len(calls) == 3:  # a few fields are already on disk when the disk "fills up"
            raise OSError(28, "No space left on device")
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(arrays._orbax().Checkpointer, "save", failing_save)
    with pytest.raises(OSError, match="No space left"):
        make_model(seed=1).save(path)
    monkeypatch.undo()

    assert len(calls) == 3
    assert sorted(p.name for p in path.iterdir()) == ["LATEST", "v000001"]  # no half-written folder
    assert_loads_as(path, predictions)


def test_a_crash_before_the_switch_keeps_the_previous_save(saved, monkeypatch):
    path, predictions = saved

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(store, "_replace_atomically", crash)
    with pytest.raises(KeyboardInterrupt):
        make_model(seed=1).save(path)
    monkeypatch.undo()

    assert (path / "v000002").is_dir()  # complete, but never made current
    assert_loads_as(path, predictions)
    newer = make_model(seed=2)
    newer.save(path)  # the next save takes over and tidies up
    assert sorted(p.name for p in path.iterdir()) == ["LATEST", "v000003"]
    assert_loads_as(path, newer.predict(X))


def test_a_killed_process_leaves_the_previous_save_loadable(saved):
    """The writer process dies (no cleanup, no finally) halfway through its arrays."""
    path, predictions = saved
    script = textwrap.dedent(
        f"""
        import os, numpy as np, optax, elegy
        from elegy.serialization import arrays
        from tests.conftest import blobs, mlp_forward
        x, y = blobs(40)
        model = elegy.Model(mlp_forward, loss="sparse_categorical_crossentropy", optimizer=optax.sgd(0.1), seed=5)
        model.init(x, y)
        real_save = arrays._orbax().Checkpointer.save
        calls = []
        def dying_save(self, *args, **kwargs):
            calls.append(1)
            if len(calls) == 2:
                os._exit(9)
            return real_save(self, *args, **kwargs)
        arrays._orbax().Checkpointer.save = dying_save
        model.save({str(path)!r})
        """
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=".")
    assert run.returncode == 9, run.stderr
    leftovers = [p.name for p in path.iterdir() if p.name.startswith(".tmp-")]
    assert len(leftovers) == 1  # the dead writer's staging folder
    assert_loads_as(path, predictions)
    make_model(seed=3).save(path)
    assert not [p for p in path.iterdir() if p.name.startswith(".tmp-")]


# ---------------------------------------------------------------- damaged saves
def test_a_truncated_array_file_is_an_error(saved):
    path, _ = saved
    victim = largest_array_file(path)
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    with pytest.raises(InvalidSaveError, match="altered: states/net_params/"):
        elegy.load(path)
    model = make_model(seed=1)
    before = model.states
    with pytest.raises(InvalidSaveError, match="altered"):
        model.load_weights(path)
    assert model.states is before


def test_a_single_flipped_byte_is_an_error(saved):
    path, _ = saved
    victim = largest_array_file(path)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    with pytest.raises(InvalidSaveError, match="damaged or was modified"):
        elegy.load(path)


def test_a_missing_file_is_an_error(saved):
    path, _ = saved
    largest_array_file(path).unlink()
    with pytest.raises(InvalidSaveError, match="missing: states/net_params/"):
        elegy.load(path)


def test_an_added_file_is_an_error(saved):
    path, _ = saved
    (current_version(path) / "states" / "net_params" / "extra").write_bytes(b"\0")
    with pytest.raises(InvalidSaveError, match="unexpected: states/net_params/extra"):
        elegy.load(path)


def test_an_edited_manifest_is_an_error(saved):
    path, _ = saved
    manifest = current_version(path) / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"float32"', '"float16"', 1))
    with pytest.raises(InvalidSaveError, match="does not match the hash recorded in LATEST"):
        elegy.load(path)


def test_a_garbled_pointer_is_an_error(saved):
    path, _ = saved
    (path / "LATEST").write_bytes(b"\x00\xff garbage")
    with pytest.raises(InvalidSaveError, match="not valid JSON"):
        elegy.load(path)


def test_a_newer_format_version_is_refused(saved):
    path, _ = saved
    manifest_file = current_version(path) / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["format_version"] = store.FORMAT_VERSION + 1
    data = json.dumps(manifest).encode()
    manifest_file.write_bytes(data)
    pointer = json.loads((path / "LATEST").read_text())
    pointer["manifest_sha256"] = __import__("hashlib").sha256(data).hexdigest()
    (path / "LATEST").write_text(json.dumps(pointer))
    with pytest.raises(InvalidSaveError, match="format version 2; this Elegy reads version 1.*newer Elegy"):
        elegy.load(path)


# ---------------------------------------------------------------- found in review
def test_reading_while_another_thread_saves_never_fails(saved):
    path, _ = saved
    errors, done = [], threading.Event()

    def read_repeatedly():
        while not done.is_set():
            try:
                elegy.load(path)
            except Exception as error:  # noqa: BLE001 - any error is the finding
                errors.append(error)

    reader = threading.Thread(target=read_repeatedly)
    reader.start()
    try:
        for seed in range(6):
            make_model(seed=seed).save(path)
    finally:
        done.set()
        reader.join()
    assert errors == []


def test_a_crash_before_the_first_switch_does_not_block_the_folder(tmp_path, monkeypatch):
    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(store, "_replace_atomically", crash)
    with pytest.raises(KeyboardInterrupt):
        make_model().save(tmp_path / "fresh")
    monkeypatch.undo()
    assert [p.name for p in (tmp_path / "fresh").iterdir()] == ["v000001"]  # complete, never current
    model = make_model(seed=4)
    model.save(tmp_path / "fresh")
    assert_loads_as(tmp_path / "fresh", model.predict(X))


def test_a_hidden_file_from_a_file_manager_is_ignored(saved):
    path, predictions = saved
    (current_version(path) / ".DS_Store").write_bytes(b"finder")
    assert_loads_as(path, predictions)


def test_home_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    model = make_model()
    model.save("~/saved")
    assert (tmp_path / "saved" / "LATEST").exists()
    assert_loads_as("~/saved", model.predict(X))


def test_removing_a_save_leaves_nothing_behind(saved):
    path, _ = saved
    store.remove_save(path)
    assert sorted(p.name for p in path.parent.iterdir()) == []

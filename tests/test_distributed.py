"""elegy.distributed: argument checks here; the multi-device behaviour in subprocesses.

Several CPU devices need `XLA_FLAGS` before JAX starts, and several processes need
`jax.distributed`: both run in child processes, so neither leaks into this one.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import optax
import pytest
from jax.sharding import PartitionSpec as P
from tests.conftest import blobs, mlp_forward

import elegy
from elegy.data.batches import Batch, padded_rows

HERE = Path(__file__).parent
# (multi_thread_eigen off: with it, forced CPU devices on 2 cores can deadlock in an
# all-reduce, see benchmarks/distributed.py)
FORCED_DEVICES = "--xla_force_host_platform_device_count=4 --xla_cpu_multi_thread_eigen=false"
ROOT = HERE.parent


def child_environment(**extra: str) -> dict[str, str]:
    # (ROOT first, whatever the caller's PYTHONPATH already holds kept after it)
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "JAX_PLATFORMS": "cpu", **extra}
    env.pop("PYTEST_XDIST_WORKER", None)
    return env


# ---------------------------------------------------------------- on 4 forced CPU devices
@pytest.fixture(scope="module")
def four_device_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("four-devices")
    command = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
        "-o", "python_files=check_*.py", str(HERE / "multidevice" / "check_four_devices.py"),
    ]  # fmt: skip
    env = child_environment(XLA_FLAGS=FORCED_DEVICES, ELEGY_DISTRIBUTED_OUT=str(out))
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    return result, out


def test_four_device_checks_pass(four_device_run):
    """DataParallel and ModelParallel give the one-device numbers (see check_four_devices)."""
    result, _ = four_device_run
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "8 passed" in result.stdout, result.stdout[-2000:]


def test_a_save_from_four_devices_loads_on_one_and_predicts_the_same(four_device_run):
    result, out = four_device_run
    assert result.returncode == 0, result.stdout[-3000:]
    model = elegy.load(out / "model")
    assert model.distribution is None  # devices belong to the saving process
    x, _ = blobs(130)
    np.testing.assert_allclose(model.predict(x, batch_size=30), np.load(out / "predictions.npy"), atol=1e-6)


# ---------------------------------------------------------------- two processes
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_processes_train_like_one(tmp_path):
    """jax.distributed over 127.0.0.1: both processes end with the one-process parameters,
    only process 0 printed progress and wrote TensorBoard logs, and their joint save loads.
    Fed each its own share (`process_local`), they train and predict like one process on the
    whole data, and shares of different sizes are an error in both."""
    port, script = free_port(), HERE / "multidevice" / "two_processes.py"
    processes = [
        subprocess.Popen(
            [sys.executable, str(script), str(index), str(port), str(tmp_path)],
            env=child_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for index in range(2)
    ]
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=240)[0])
    finally:
        for process in processes:
            process.kill()
    for index, (process, output) in enumerate(zip(processes, outputs, strict=True)):
        assert process.returncode == 0, f"process {index}:\n{output[-4000:]}"

    def make_model():
        return elegy.Model(
            mlp_forward,
            loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
            optimizer=optax.adam(1e-2),
        )

    def assert_trained_like(reference, history, prefix):
        expected = {
            jax.tree_util.keystr(path): np.asarray(leaf)
            for path, leaf in jax.tree_util.tree_flatten_with_path(reference.states.net_params)[0]
        }
        for index in range(2):
            params = np.load(tmp_path / f"{prefix}params_{index}.npz")
            assert set(params.files) == set(expected)
            for name, value in expected.items():
                np.testing.assert_allclose(params[name], value, atol=1e-5, err_msg=f"process {index}: {name}")
            np.testing.assert_allclose(
                np.load(tmp_path / f"{prefix}loss_{index}.npy"), history.history["loss"], rtol=1e-5
            )

    x, y = blobs(130)
    reference = make_model()
    assert_trained_like(reference, reference.fit(x, y, batch_size=30, epochs=3, verbose=0), "")
    # The shares (every other row, in batches of 15) side by side: the batches of 30, in order.
    in_order = make_model()
    assert_trained_like(
        in_order, in_order.fit(x, y, batch_size=30, epochs=3, shuffle=False, verbose=0), "local_"
    )
    batches = [np.arange(start, min(start + 30, 130)) for start in range(0, 130, 30)]
    global_order = np.concatenate([np.concatenate([rows[0::2], rows[1::2]]) for rows in batches])
    for index in range(2):  # batch by batch: process 0's share (even rows), then process 1's
        np.testing.assert_allclose(
            np.load(tmp_path / f"local_predictions_{index}.npy"), in_order.predict(x)[global_order], atol=1e-5
        )
    for output in outputs:
        assert "uneven shares refused: x: every process must yield shares of the same size" in output
        assert "15 in process 0, 14 in process 1" in output
    assert "Epoch 3/3" in outputs[0] and "Epoch" not in outputs[1]
    saved = elegy.load(tmp_path / "saved")  # written by both processes together
    np.testing.assert_allclose(saved.predict(x), reference.predict(x), atol=1e-5)
    assert sorted(path.name for path in (tmp_path / "ckpt").iterdir()) == ["e2", "e3"]  # max_to_keep=2
    np.testing.assert_allclose(
        elegy.load(tmp_path / "ckpt" / "e3").predict(x), reference.predict(x), atol=1e-5
    )
    assert list((tmp_path / "logs").rglob("events.out.tfevents.*"))
    assert "tensorboard joined: True" in outputs[0] and "tensorboard joined: False" in outputs[1]


# ---------------------------------------------------------------- arguments (one device)
def test_data_parallel_covers_every_device_by_default():
    distribution = elegy.distributed.DataParallel()
    assert distribution.batch_shards == jax.device_count()
    assert distribution.mesh.axis_names == ("batch",)


def test_data_parallel_needs_a_device():
    with pytest.raises(ValueError, match="devices must name at least one device"):
        elegy.distributed.DataParallel(devices=[])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(mesh_shape=(1, 1), axis_names=("batch",)), "same length"),
        (dict(mesh_shape=(2, 2)), "needs 4 devices"),
        (dict(mesh_shape=(1, 1), layout={"w": P("tensor")}), r"names axes \['tensor'\]"),
        (dict(mesh_shape=(1, 1), layout={"w": "model"}), "PartitionSpec or a tuple"),
        (dict(mesh_shape=(1, 1), axis_names=("data", "model")), "batch_axis 'batch' is not an axis"),
    ],
)
def test_model_parallel_arguments_are_checked(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        elegy.distributed.ModelParallel(**kwargs)


def test_layout_matches_by_search_and_refuses_ambiguity():
    distribution = elegy.distributed.ModelParallel((1, 1), layout={"linear_0/w": (None, "model"), "/w$": P()})
    with pytest.raises(ValueError, match="matches several patterns"):
        distribution.param_spec("mlp/~/linear_0/w", (4, 8))
    exact = elegy.distributed.ModelParallel((1, 1), layout={"mlp/~/linear_0/w": P(None, "model"), "w": P()})
    assert exact.param_spec("mlp/~/linear_0/w", (4, 8)) == P(None, "model")  # an exact key wins
    assert exact.param_spec("mlp/~/linear_0/b", (8,)) == P()


def test_a_layout_that_does_not_divide_names_the_parameter():
    distribution = elegy.distributed.ModelParallel((1, 1), layout={"w": P(None, "model")})
    distribution.mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]).reshape(1, 1), ("batch", "model"))
    assert distribution.param_spec("mlp/w", (4, 3)) == P(None, "model")  # 1 shard divides anything
    assert distribution.param_spec("mlp/w", ()) == P()  # e.g. an optimizer's scalar count


def test_distribution_must_be_a_distribution():
    with pytest.raises(TypeError, match="distribution must be an elegy.distributed"):
        elegy.Model(mlp_forward, distribution="data_parallel")


def test_padded_rows_masks_the_added_rows():
    batch = Batch(np.arange(6.0).reshape(3, 2), np.arange(3), None, np.array([True, True, False]))
    padded = padded_rows(batch, 8)
    np.testing.assert_array_equal(padded.mask, [True, True, False, False, False, False, False, False])
    np.testing.assert_array_equal(padded.y, [0, 1, 2, 0, 1, 2, 0, 1])
    assert padded.sample_weight is None


def test_one_device_data_parallel_fit_equals_plain_fit():
    x, y = blobs(70)

    def run(distribution):
        model = elegy.Model(
            mlp_forward,
            loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
            optimizer=optax.sgd(0.1),
            distribution=distribution,
        )
        return model.fit(x, y, batch_size=16, epochs=2, verbose=0).history["loss"], model

    (plain, _), (distributed, model) = run(None), run(elegy.distributed.DataParallel())
    np.testing.assert_allclose(distributed, plain, rtol=1e-6)
    assert all(leaf.sharding.is_fully_replicated for leaf in jax.tree_util.tree_leaves(dict(model.states)))

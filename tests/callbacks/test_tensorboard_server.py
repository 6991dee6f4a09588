"""The real TensorBoard server finds the curves of a fit it did not see being written, and
its HParams dashboard lists the run with its hyperparameters and final metrics."""

import json
import socket
import subprocess
import sys
import time
import urllib.request

import optax
from tests.conftest import blobs, mlp_forward

import elegy


def free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str, deadline: float):
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return json.loads(response.read())
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.5)


def post_json(url: str, body: dict, deadline: float):
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    while True:
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return json.loads(response.read())
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.5)


def test_tensorboard_server_lists_train_and_validation_curves_and_the_hparams_session(tmp_path):
    x, y = blobs(80)
    model = elegy.Model(
        mlp_forward,
        loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        optimizer=optax.adam(1e-2),
    )
    board = elegy.callbacks.TensorBoard(tmp_path / "run", hparams={"learning_rate": 0.01, "width": 16})
    history = model.fit(x, y, epochs=2, validation_split=0.25, verbose=0, callbacks=[board])

    port = free_loopback_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tensorboard.main",
            "--logdir",
            str(tmp_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--reload_interval",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 90
        tags = {}
        while time.time() < deadline and not {"run/train", "run/validation"} <= set(tags):
            tags = get_json(f"{base}/data/plugin/scalars/tags", deadline)
            time.sleep(0.5)
        assert {"epoch_loss", "epoch_accuracy"} <= set(tags["run/train"])
        assert {"epoch_loss", "epoch_accuracy"} <= set(tags["run/validation"])
        points = get_json(f"{base}/data/plugin/scalars/scalars?run=run/validation&tag=epoch_loss", deadline)
        assert [step for _, step, _ in points] == [0, 1]

        statuses = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]
        request = {"allowedStatuses": statuses, "colParams": [], "startIndex": 0, "sliceSize": 10}
        (group,) = post_json(f"{base}/data/plugin/hparams/session_groups", request, deadline)["sessionGroups"]
        assert group["name"] == "run" and group["hparams"] == {"learning_rate": 0.01, "width": 16.0}
        assert group["sessions"][0]["status"] == "STATUS_SUCCESS"
        final = {(m["name"]["group"], m["name"]["tag"]): m["value"] for m in group["metricValues"]}
        assert abs(final["validation", "epoch_loss"] - history.history["val_loss"][-1]) < 1e-6
        assert abs(final["train", "epoch_accuracy"] - history.history["accuracy"][-1]) < 1e-6
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()

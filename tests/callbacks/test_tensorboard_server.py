"""The real TensorBoard server finds the curves of a fit it did not see being written."""

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


def test_tensorboard_server_lists_train_and_validation_curves(tmp_path):
    x, y = blobs(80)
    model = elegy.Model(
        mlp_forward,
        loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        optimizer=optax.adam(1e-2),
    )
    model.fit(
        x, y, epochs=2, validation_split=0.25, verbose=0, callbacks=[elegy.callbacks.TensorBoard(tmp_path)]
    )

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
        while time.time() < deadline and not {"train", "validation"} <= set(tags):
            tags = get_json(f"{base}/data/plugin/scalars/tags", deadline)
            time.sleep(0.5)
        assert {"epoch_loss", "epoch_accuracy"} <= set(tags["train"])
        assert {"epoch_loss", "epoch_accuracy"} <= set(tags["validation"])
        points = get_json(f"{base}/data/plugin/scalars/scalars?run=validation&tag=epoch_loss", deadline)
        assert [step for _, step, _ in points] == [0, 1]
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()

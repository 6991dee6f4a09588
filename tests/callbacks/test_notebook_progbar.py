"""The progress bar as a notebook user sees it: fit run in a real Jupyter kernel.

nbclient keeps a display's last content in the executed notebook, so the outputs show what
the bar ended as; the `update_display_data` messages it receives show it was live.
"""

import pathlib
import re
import textwrap
from collections import defaultdict

import nbformat
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[2]
FINAL_LINE = re.compile(r"^8/8 \[={30}\] - \d+s \d+ms/step .* - loss: \d\.\d{4} - accuracy: \d\.\d{4}$")

CELL = textwrap.dedent(
    """
    import os
    os.environ["JAX_PLATFORMS"] = "cpu"
    import time, numpy as np, optax, haiku as hk, elegy
    x = np.random.default_rng(0).normal(size=(256, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    slow = elegy.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: time.sleep(0.1))
    model = elegy.Model(lambda v: hk.nets.MLP([8, 2])(v),
                        loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
                        metrics=["accuracy"], optimizer=optax.adam(1e-2))
    model.fit(x, y, batch_size=32, epochs=3, verbose=1, callbacks=[slow]);
    """
)


class RecordingClient(NotebookClient):
    """Keeps each display's updates: nbclient folds them into the display's output."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.updates = defaultdict(list)

    def process_message(self, msg, cell, cell_index):
        if msg["msg_type"] == "update_display_data":
            content = msg["content"]
            self.updates[content["transient"]["display_id"]].append(content["data"]["text/plain"])
        return super().process_message(msg, cell, cell_index)


def test_fit_in_a_notebook_updates_one_display_per_epoch_in_place():
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CELL)])
    client = RecordingClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    )
    client.execute()
    outputs = notebook.cells[0].outputs

    assert [out.output_type for out in outputs] == ["stream", "display_data"] * 3  # header, bar
    headers = "".join(out.text for out in outputs if out.output_type == "stream")
    assert headers == "Epoch 1/3\nEpoch 2/3\nEpoch 3/3\n"  # no line per refresh
    finals = [out.data["text/plain"] for out in outputs if out.output_type == "display_data"]
    assert all(FINAL_LINE.match(line) for line in finals), finals
    assert "\r" not in "".join(finals)

    assert len(client.updates) == 3  # one display per epoch...
    for updates, final in zip(client.updates.values(), finals, strict=True):
        assert any(" - ETA: " in line for line in updates)  # ...redrawn while it trained
        assert updates[-1] == final

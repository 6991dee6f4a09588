"""The progress bar as a person sees it: fit run inside a real pseudo-terminal."""

import os
import pty
import re
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import time, numpy as np, optax, haiku as hk, elegy
    x = np.random.default_rng(0).normal(size=(256, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    slow = elegy.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: time.sleep(0.12))
    model = elegy.Model(lambda v: hk.nets.MLP([8, 2])(v),
                        loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
                        metrics=["accuracy"], optimizer=optax.adam(1e-2))
    model.fit(x, y, batch_size=32, epochs=2, verbose=1, callbacks=[slow])
    """
)


def run_in_terminal(script: str) -> str:
    main, replica = pty.openpty()
    process = subprocess.Popen([sys.executable, "-c", script], stdout=replica, stderr=subprocess.DEVNULL)
    os.close(replica)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the terminal closes when the process exits
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=120)
    os.close(main)
    return b"".join(chunks).decode()


def test_the_bar_redraws_in_place_with_eta_and_ends_each_epoch_on_its_own_line():
    screen = run_in_terminal(SCRIPT)
    assert "Epoch 1/2" in screen and "Epoch 2/2" in screen
    redraws = re.findall(r"\r\s*(\d+)/8 \[[=>.]{30}\] - ETA: \d+s", screen)
    assert len(redraws) >= 2  # redrawn in place, a few times per second
    finals = re.findall(r"8/8 \[={30}\] - \d+s \d+ms/step .* - loss: \d\.\d{4} - accuracy: \d\.\d{4}", screen)
    assert len(finals) == 2

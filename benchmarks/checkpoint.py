"""How long a checkpoint holds up training: ModelCheckpoint against Orbax's CheckpointManager.

For one model's States (an MLP 784-1024-1024-10 with Adam: 1.9 M parameters, 22 MB with
the optimizer's moments), each measured over `REPEATS` saves:

* `device_get`: copying the States to the host, the floor for any save that does not
  block on the disk;
* ModelCheckpoint: the time its hook takes inside `fit` (what the loop waits for: a copy
  of the States in device memory, since the next steps reuse their buffers, and a shallow
  copy of the model), and the time a complete save takes (Orbax writes, the model
  pickled, a SHA-256 of every file, fsync, the atomic switch), on its worker thread;
* `orbax.checkpoint.CheckpointManager(max_to_keep=2)` with asynchronous saves: the time
  `save` takes, and the time until `wait_until_finished` returns.

Run: `python benchmarks/checkpoint.py` (results in benchmarks/results/).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import haiku as hk
import jax
import numpy as np
import optax
import orbax.checkpoint as ocp

import elegy

REPEATS = 5


def make_model() -> elegy.Model:
    return elegy.Model(
        lambda x: hk.nets.MLP([1024, 1024, 10])(x),
        loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer=optax.adam(1e-3),
    )


class TimedCheckpoint(elegy.callbacks.ModelCheckpoint):
    """ModelCheckpoint, recording how long each epoch-end hook held up the loop."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.held: list[float] = []

    def on_epoch_end(self, epoch, logs=None):
        start = time.perf_counter()
        super().on_epoch_end(epoch, logs)
        self.held.append(time.perf_counter() - start)


def ms(values: list[float]) -> str:
    median, low, high = (1e3 * value for value in (statistics.median(values), min(values), max(values)))
    return f"median {median:7.1f} ms (min {low:.1f}, max {high:.1f})"


def main() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 784)).astype(np.float32)
    y = rng.integers(0, 10, size=64)
    model = make_model()
    model.fit(x, y, batch_size=64, epochs=1, verbose=0)
    states = model.states
    size = sum(np.asarray(leaf).nbytes for leaf in jax.tree_util.tree_leaves(states))
    print(f"States: {size / 1e6:.1f} MB; backend {jax.default_backend()}; {REPEATS} saves each")

    copies = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        jax.device_get(dict(states))
        copies.append(time.perf_counter() - start)
    print(f"device_get of the States:                {ms(copies)}")

    with tempfile.TemporaryDirectory() as folder:
        # One save per epoch, one batch per epoch: the hook's time is what training waits for.
        checkpoint = TimedCheckpoint(Path(folder) / "elegy" / "e{epoch}", max_to_keep=2)
        # Reading the epoch's logs waits for the step to finish; the loop does that for the
        # History and the progress bar anyway, so it is done before the timed hook.
        synced = elegy.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: dict(logs))
        finished = []
        for _ in range(REPEATS):
            model.fit(x, y, batch_size=64, epochs=1, verbose=0, callbacks=[synced, checkpoint])
            start = time.perf_counter()
            checkpoint._writer.wait()  # (fit already waited: this is ~0)
            finished.append(time.perf_counter() - start)
        writes = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            elegy.serialization.models.capture(model, weights_only=False)(Path(folder) / "direct")
            writes.append(time.perf_counter() - start)
        print(f"ModelCheckpoint hook inside fit:         {ms(checkpoint.held)}")
        print(f"one complete save (manifest, switch):    {ms(writes)}")

        options = ocp.CheckpointManagerOptions(max_to_keep=2, enable_async_checkpointing=True)
        manager = ocp.CheckpointManager(Path(folder) / "orbax", options=options)
        calls, waits = [], []
        for step in range(REPEATS):
            start = time.perf_counter()
            manager.save(step, args=ocp.args.StandardSave(dict(model.states)))
            calls.append(time.perf_counter() - start)
            start = time.perf_counter()
            manager.wait_until_finished()
            waits.append(time.perf_counter() - start)
        manager.close()
        print(f"CheckpointManager.save (async):          {ms(calls)}")
        print(f"  then until wait_until_finished:        {ms(waits)}")


if __name__ == "__main__":
    main()

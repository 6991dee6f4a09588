"""Grain pipelines fed to `fit` train exactly as their rows, in the order Grain reads them,
given to `fit` as arrays (`shuffle=False`) do; each epoch reads what a Grain user expects.

- A `MapDataset` has a `len()` (its batches) and is iterated afresh every epoch: Grain is
  deterministic, so every epoch gets the same order. `.batch(b).repeat(n)` after the
  shuffle, with `steps_per_epoch=len(batched)`, gives every epoch a new order and its own
  partial batch (Grain batches each of its epochs separately).
- A `DataLoader` is iterated afresh every epoch too, and one iteration reads every pass its
  sampler's `num_epochs` asks for: with `num_epochs=n > 1`, pass `steps_per_epoch` and
  `fit` reads the one stream, each epoch continuing where the last stopped.
"""

from collections import Counter
from collections.abc import Sequence

import jax
import numpy as np
import optax
import pytest
from tests.conftest import blobs, mlp_forward

import elegy

grain = pytest.importorskip("grain")

X, Y = blobs(45, seed=7)
BATCH = 10  # 45 rows: four full batches and a partial one of 5
SEED = 3


class Rows(Sequence):
    """The rows `(x, y)` as a random-access source that records which rows were read."""

    def __init__(self, x=X, y=Y):
        self.x, self.y, self.read = x, y, []

    def __len__(self):
        return len(self.x)

    def __getitem__(self, index):
        self.read.append(int(index))
        return self.x[index], self.y[index]


class EpochRows(elegy.callbacks.Callback):
    """The rows read in each epoch (exact for a source read to its end every epoch), and
    the number of training steps of each."""

    def __init__(self, rows):
        super().__init__()
        self.rows, self.per_epoch, self.steps = rows, [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.start, self.count = len(self.rows.read), 0

    def on_train_batch_end(self, batch, logs=None):
        self.count += 1

    def on_epoch_end(self, epoch, logs=None):
        self.per_epoch.append(sorted(self.rows.read[self.start :]))
        self.steps.append(self.count)


def make_model():
    return elegy.Model(
        mlp_forward,
        loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        optimizer=optax.adam(1e-2),
        seed=1,
    )


def fit_arrays(orders, x=X, y=Y):
    """The oracle: epoch `e` trains on the rows `orders[e]`, in that order, as arrays."""
    model, losses = make_model(), []
    for epoch, order in enumerate(orders):
        history = model.fit(
            x[order],
            y[order],
            batch_size=BATCH,
            epochs=epoch + 1,
            initial_epoch=epoch,
            shuffle=False,
            verbose=0,
        )
        losses += history.history["loss"]
    return model, losses


def assert_trained_alike(model, history, oracle):
    reference, losses = oracle
    jax.tree_util.tree_map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
        jax.device_get(model.states.net_params),
        jax.device_get(reference.states.net_params),
    )
    np.testing.assert_allclose(history.history["loss"], losses, rtol=1e-5)


def grain_order(dataset):
    """The row indices a Grain pipeline over `MapDataset.range` yields, in order."""
    return [int(i) for i in dataset]


@pytest.fixture(scope="module")
def three_epochs_in_grain_order():
    order = grain_order(grain.MapDataset.range(len(X)).shuffle(seed=SEED))
    return fit_arrays([order] * 3)


@pytest.mark.parametrize("records", ["tuples", "dicts"])
def test_a_map_dataset_trains_like_its_rows_as_arrays_every_epoch_in_the_same_order(
    records, three_epochs_in_grain_order
):
    rows = Rows()
    dataset = grain.MapDataset.source(rows).shuffle(seed=SEED)
    if records == "dicts":  # dict records, batched as dicts of arrays, then made (x, y)
        dataset = dataset.map(lambda row: {"features": row[0], "label": row[1]})
        dataset = dataset.batch(BATCH).map(lambda batch: (batch["features"], batch["label"]))
    else:
        dataset = dataset.batch(BATCH)
    epochs = EpochRows(rows)
    model = make_model()
    history = model.fit(dataset, epochs=3, verbose=0, callbacks=[epochs])

    assert_trained_alike(model, history, three_epochs_in_grain_order)
    assert epochs.steps == [5, 5, 5]  # len(dataset): the partial batch is a step, padded and masked
    assert epochs.per_epoch == [list(range(len(X)))] * 3  # every row once per epoch


def test_a_repeated_map_dataset_gives_each_epoch_a_new_order_and_its_own_partial_batch():
    rows = Rows()
    batched = grain.MapDataset.source(rows).shuffle(seed=SEED).batch(BATCH)
    epochs = EpochRows(rows)
    model = make_model()
    history = model.fit(
        batched.repeat(3), epochs=3, steps_per_epoch=len(batched), verbose=0, callbacks=[epochs]
    )

    stream = grain_order(grain.MapDataset.range(len(X)).shuffle(seed=SEED).repeat(3))
    orders = [stream[e * len(X) : (e + 1) * len(X)] for e in range(3)]
    assert len({tuple(order) for order in orders}) == 3  # (Grain reshuffles per epoch)
    assert_trained_alike(model, history, fit_arrays(orders))
    assert epochs.steps == [5, 5, 5]
    assert Counter(rows.read) == {row: 3 for row in range(len(X))}


def data_loader(rows, num_epochs, batch_size=BATCH):
    sampler = grain.samplers.IndexSampler(
        num_records=len(rows),
        shuffle=True,
        num_epochs=num_epochs,
        seed=SEED,
        shard_options=grain.sharding.NoSharding(),
    )
    return grain.DataLoader(
        data_source=rows, sampler=sampler, operations=[grain.transforms.Batch(batch_size)], worker_count=0
    ), sampler


def test_a_one_pass_data_loader_is_read_afresh_every_epoch():
    rows = Rows()
    loader, sampler = data_loader(rows, num_epochs=1)
    epochs = EpochRows(rows)
    model = make_model()
    history = model.fit(loader, epochs=2, verbose=0, callbacks=[epochs])

    order = [sampler[i].record_key for i in range(len(X))]
    assert_trained_alike(model, history, fit_arrays([order] * 2))
    assert epochs.steps == [5, 5]
    assert epochs.per_epoch == [list(range(len(X)))] * 2


def test_a_several_pass_data_loader_with_steps_per_epoch_is_one_stream_a_pass_an_epoch():
    x, y = X[:40], Y[:40]  # Grain batches a DataLoader's passes as one stream: 8 divides 40
    rows = Rows(x, y)
    loader, sampler = data_loader(rows, num_epochs=3, batch_size=8)
    model = make_model()
    history = model.fit(loader, epochs=3, steps_per_epoch=5, verbose=0)

    stream = [sampler[i].record_key for i in range(3 * 40)]
    orders = [stream[e * 40 : (e + 1) * 40] for e in range(3)]
    assert all(sorted(order) == list(range(40)) for order in orders)
    reference, losses = make_model(), []
    for epoch, order in enumerate(orders):
        losses += reference.fit(
            x[order], y[order], batch_size=8, epochs=epoch + 1, initial_epoch=epoch, shuffle=False, verbose=0
        ).history["loss"]
    assert_trained_alike(model, history, (reference, losses))
    assert Counter(rows.read) == {row: 3 for row in range(40)}  # 3 passes in all, not 3 per epoch


def test_without_steps_per_epoch_each_epoch_reads_every_pass_of_a_data_loader():
    rows = Rows()
    loader, _ = data_loader(rows, num_epochs=2)
    epochs = EpochRows(rows)
    make_model().fit(loader, epochs=2, verbose=0, callbacks=[epochs])
    assert epochs.steps == [9, 9]  # 90 rows a pass of the loader, batched across its passes
    assert epochs.per_epoch == [sorted(list(range(len(X))) * 2)] * 2

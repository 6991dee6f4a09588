"""Data sources: what fit/evaluate/predict iterate over, one epoch at a time.

`make_source` looks at what the user passed and returns an `ArraySource` (in-memory
arrays, sliced and shuffled here) or an `IterableSource` (generators, iterators, lists of
batches, data loaders). Both yield fixed-size `Batch`es with a mask of real rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import numpy as np

from elegy.data.batches import Batch, array_batches, padded_batch, take_rows
from elegy.data.structure import as_array_tree, num_samples, unpack_batch


def check_positive_int(value: Any, argument: str, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        expected = "a positive integer" + (" or None" if allow_none else "")
        raise ValueError(f"{argument} must be {expected}, got {value!r}")
    return int(value)


def is_batch_iterable(x: Any, y: Any) -> bool:
    """True when `x` is a source of batches rather than one (nested) input."""
    if isinstance(x, (str, bytes, tuple, dict)) or hasattr(x, "shape"):
        return False
    if isinstance(x, list):
        return y is None and bool(x) and isinstance(x[0], (tuple, list))
    return hasattr(x, "__iter__") or hasattr(x, "__next__")


class ArraySource:
    """Batches over in-memory arrays; the row order of each epoch derives from the seed."""

    def __init__(
        self, x, y, sample_weight, batch_size: int, shuffle: bool, seed: int, steps: int | None = None
    ):
        self.x = as_array_tree(x, "x")
        self.y = as_array_tree(y, "y")
        self.sample_weight = as_array_tree(sample_weight, "sample_weight")
        self.num_samples = num_samples(x=self.x, y=self.y, sample_weight=self.sample_weight)
        self.batch_size = min(batch_size, self.num_samples)  # no padding beyond the data
        self.shuffle = shuffle
        self.seed = seed
        full = math.ceil(self.num_samples / self.batch_size)
        self.steps_per_epoch: int | None = min(full, steps) if steps else full

    def epoch(self, epoch_index: int) -> Iterator[Batch]:
        if self.shuffle:
            order = np.random.default_rng([self.seed, epoch_index]).permutation(self.num_samples)
        else:
            order = np.arange(self.num_samples)
        order = order[: self.steps_per_epoch * self.batch_size]
        return array_batches(self.x, self.y, self.sample_weight, self.batch_size, order)


class IterableSource:
    """Batches from an iterable; partial batches are padded to the first batch's size.

    A re-iterable (list, data loader) is iterated afresh every epoch. A one-shot iterator
    is read until it ends, or for `steps` batches per epoch; one that is already empty
    when an epoch starts is an error, because its end cannot tell epochs apart.
    """

    def __init__(self, data: Any, steps: int | None = None, argument: str = "x"):
        self.data = data
        self.argument = argument
        self.one_shot = iter(data) is data if hasattr(data, "__iter__") else True
        self.steps_per_epoch: int | None = steps or (len(data) if hasattr(data, "__len__") else None)
        self._limit = steps
        self._batch_size: int | None = None
        self._iterator: Iterator | None = None

    def epoch(self, epoch_index: int) -> Iterator[Batch]:
        if self.one_shot:
            iterator = self.data if hasattr(self.data, "__next__") else iter(self.data)
        else:
            iterator = iter(self.data)
        count = 0
        for raw in iterator:
            yield self._to_batch(raw)
            count += 1
            if self._limit is not None and count >= self._limit:
                return
        if count == 0:
            raise ValueError(
                f"{self.argument} produced no batches this epoch: a one-shot iterator or "
                "generator is exhausted after one pass; pass steps_per_epoch (and make it "
                "yield enough batches) or a re-iterable such as a list or a data loader"
            )

    def _to_batch(self, raw: Any) -> Batch:
        x, y, sample_weight = unpack_batch(raw)
        x = as_array_tree(x, "x")
        y = as_array_tree(y, "y")
        sample_weight = as_array_tree(sample_weight, "sample_weight")
        rows = num_samples(x=x, y=y, sample_weight=sample_weight)
        if self._batch_size is None:
            self._batch_size = rows
        return padded_batch(x, y, sample_weight, max(rows, self._batch_size))


def make_source(
    x: Any,
    y: Any = None,
    sample_weight: Any = None,
    *,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    steps: int | None = None,
):
    """The right source for `x`; errors name the argument and what was received."""
    batch_size = check_positive_int(batch_size, "batch_size")
    steps = check_positive_int(steps, "steps", allow_none=True)
    if x is None:
        raise ValueError(
            "x is required: pass an array, a nested structure of arrays, or an iterable of batches"
        )
    if is_batch_iterable(x, y):
        if y is not None or sample_weight is not None:
            raise ValueError(
                "y and sample_weight must be None when x is an iterable of batches; "
                "yield (x, y) or (x, y, sample_weight) tuples instead"
            )
        return IterableSource(x, steps)
    return ArraySource(x, y, sample_weight, batch_size, shuffle, seed, steps)


def split_validation(x: Any, y: Any, sample_weight: Any, fraction: float):
    """Split arrays into (train, validation) triples, validation taken from the end.

    As in Keras, the split happens before any shuffling, so the same rows are held out
    every epoch.
    """
    if not isinstance(fraction, (int, float)) or not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation_split must be a float in [0, 1), got {fraction!r}")
    if is_batch_iterable(x, y):
        raise ValueError(
            "validation_split only works with array inputs; for an iterable of batches "
            "pass validation_data instead"
        )
    trees = [as_array_tree(t, n) for t, n in ((x, "x"), (y, "y"), (sample_weight, "sample_weight"))]
    n = num_samples(x=trees[0], y=trees[1], sample_weight=trees[2])
    # Decimal arithmetic: 10 * (1 - 0.9) is 0.99999... in binary floating point.
    cut = math.floor(n * (1 - Fraction(repr(float(fraction)))))
    if cut == 0 or cut == n:
        raise ValueError(
            f"validation_split={fraction} of {n} samples leaves {cut} for training and "
            f"{n - cut} for validation; both need at least one"
        )
    train = tuple(take_rows(t, slice(0, cut)) for t in trees)
    val = tuple(take_rows(t, slice(cut, n)) for t in trees)
    return train, val


__all__ = ["ArraySource", "IterableSource", "make_source", "split_validation"]

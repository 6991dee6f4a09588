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

import jax
import numpy as np

from elegy.arguments import check_int
from elegy.data.batches import Batch, LocalBatch, padded_batch, take_rows
from elegy.data.shares import ProcessLocal, check_shares_agree
from elegy.data.structure import batch_rows, checked_triple, unpack_batch

Span = slice | np.ndarray  # the rows of one batch: in sequence, or picked by index


def is_batch_iterable(x: Any, y: Any) -> bool:
    """True when `x` is a source of batches rather than one (nested) input."""
    if isinstance(x, (str, bytes, tuple, dict)) or hasattr(x, "shape"):
        return False
    if isinstance(x, list):
        return y is None and bool(x) and isinstance(x[0], (tuple, list))
    return hasattr(x, "__iter__") or hasattr(x, "__next__")


class ArraySource:
    """Batches over in-memory arrays; the row order of each pass derives from the seed.

    Without `steps`, epoch `e` is one pass over the data in the order of pass `e`. With
    `steps`, epochs are consecutive windows of `steps` batches over the endless sequence
    of passes, so every row is seen and epoch `e` depends only on `e` (as with Keras, an
    epoch continues where the previous one stopped).

    Examples:
        Six rows, shuffled, in batches of four: every row once per epoch, and the same
        order whenever epoch 0 is drawn again.

        >>> import numpy as np
        >>> from elegy.data import ArraySource
        >>> source = ArraySource(np.arange(6), None, None, batch_size=4, shuffle=True, seed=0)
        >>> batches = list(source.epoch(0))
        >>> source.steps_per_epoch, [len(batch.mask) for batch in batches], [b.num_real for b in batches]
        (2, [4, 4], [4, 2])
        >>> sorted(np.concatenate([batch.x[batch.mask] for batch in batches]).tolist())
        [0, 1, 2, 3, 4, 5]
        >>> all((a.x == b.x).all() for a, b in zip(source.epoch(0), batches))
        True
    """

    def __init__(
        self,
        x: Any,
        y: Any,
        sample_weight: Any,
        batch_size: int,
        shuffle: bool,
        seed: int,
        steps: int | None = None,
        names: tuple[str, str, str] = ("x", "y", "sample_weight"),
        drop_remainder: bool = False,
    ):
        self.x, self.y, self.sample_weight, self.num_samples = checked_triple(x, y, sample_weight, names)
        self.batch_size = min(batch_size, self.num_samples)  # no padding beyond the data
        self.shuffle = shuffle
        self.seed = seed
        rounding = math.floor if drop_remainder else math.ceil
        self.batches_per_pass = rounding(self.num_samples / self.batch_size)
        self.steps = steps
        self.steps_per_epoch: int | None = steps or self.batches_per_pass
        # Flattened once: per batch, one index of each array (no tree walk per step).
        arrays, treedef = jax.tree_util.tree_flatten((self.x, self.y, self.sample_weight))
        self._treedef: Any = treedef
        self._arrays = [np.asarray(a) for a in arrays]
        self._full_mask = np.ones(self.batch_size, bool)
        self._full_mask.flags.writeable = False  # one mask shared by every full batch

    def skip_epochs(self, count: int) -> None:
        """Nothing to do: epoch `e` is computed from `e` alone."""

    def _order(self, data_pass: int) -> np.ndarray:
        if self.shuffle:
            return np.random.default_rng([self.seed, data_pass]).permutation(self.num_samples)
        return np.arange(self.num_samples)

    def spans(self, epoch_index: int) -> Iterator[Span]:
        """Which rows each batch of epoch `epoch_index` takes: a slice for rows in
        sequence (a view of the arrays, no copy), else an index array of at most
        `batch_size` rows (the last batch of a pass may have fewer)."""
        size = self.batch_size
        if self.steps is None:
            rows = min(self.batches_per_pass * size, self.num_samples)
            order = self._order(epoch_index)[:rows] if self.shuffle else None
            for start in range(0, rows, size):
                stop = min(start + size, rows)
                yield slice(start, stop) if order is None else order[start:stop]
            return
        data_pass, order = None, None
        for position in range(epoch_index * self.steps, (epoch_index + 1) * self.steps):
            if position // self.batches_per_pass != data_pass:
                data_pass = position // self.batches_per_pass
                order = self._order(data_pass) if self.shuffle else None
            start = (position % self.batches_per_pass) * size
            stop = min(start + size, self.num_samples)
            yield slice(start, stop) if order is None else order[start:stop]

    def arrays(self) -> tuple[Any, Any, Any]:
        """`(x, y, sample_weight)`, every leaf a numpy array (None stays None)."""
        arrays: tuple[Any, Any, Any] = self._treedef.unflatten(self._arrays)
        return arrays

    def rows(self, index: Span) -> tuple[Any, Any, Any]:
        """`(x, y, sample_weight)` at the rows `index` (None stays None)."""
        rows: tuple[Any, Any, Any] = self._treedef.unflatten([a[index] for a in self._arrays])
        return rows

    def batch(self, index: Span) -> Batch:
        """The batch of the rows `index`, padded to `batch_size` when there are fewer."""
        x, y, sample_weight = self.rows(index)
        if len(self._full_mask) == batch_rows(x):
            return Batch(x, y, sample_weight, self._full_mask)
        return padded_batch(x, y, sample_weight, self.batch_size)

    def epoch(self, epoch_index: int) -> Iterator[Batch]:
        """The batches of epoch `epoch_index`, one at a time."""
        return map(self.batch, self.spans(epoch_index))


class IterableSource:
    """Batches from an iterable; partial batches are padded to the first batch's size.

    Without `steps`, a re-iterable (list, data loader) is iterated afresh every epoch and a
    one-shot iterator is read until it ends; one already empty when an epoch starts is an
    error, because its end cannot tell epochs apart. With `steps`, each epoch takes the
    next `steps` batches, continuing where the last epoch stopped; a re-iterable starts
    over when it runs out.

    With `process_local` (`elegy.data.process_local`), each batch is this process's share
    of the global batch: in a run of several processes it is yielded as a `LocalBatch`,
    after checking that the processes agree (`check_shares_agree`), and no later share may
    be larger than the first, which fixes the global batch size.

    Examples:
        A list of `(x, y)` batches whose last one is short: it is padded to 3 rows.

        >>> import numpy as np
        >>> from elegy.data import IterableSource
        >>> batches = [(np.ones((3, 2)), np.zeros(3)), (np.ones((1, 2)), np.zeros(1))]
        >>> source = IterableSource(batches)
        >>> source.steps_per_epoch, [(batch.x.shape, batch.num_real) for batch in source.epoch(0)]
        (2, [((3, 2), 3), ((3, 2), 1)])
        >>> len(list(source.epoch(1)))  # a list is read afresh every epoch
        2
    """

    def __init__(
        self,
        data: Any,
        steps: int | None = None,
        argument: str = "x",
        steps_argument: str = "steps",
        drop_remainder: bool = False,
        process_local: bool = False,
    ):
        self.data = data
        self.drop_remainder = drop_remainder
        self.process_local = process_local
        self.argument, self.steps_argument = argument, steps_argument
        self.one_shot = iter(data) is data if hasattr(data, "__iter__") else True
        self.steps_per_epoch: int | None = steps or known_length(data)
        self._limit = steps
        self._batch_size: int | None = None
        self._iterator: Iterator[Any] | None = None

    def _fresh_iterator(self) -> Iterator[Any]:
        return self.data if hasattr(self.data, "__next__") else iter(self.data)

    def epoch(self, epoch_index: int) -> Iterator[Batch]:
        """The batches of epoch `epoch_index`, one at a time."""
        count = 0
        if self._limit is None:
            for raw in self._fresh_iterator():
                batch = self._to_batch(raw)
                if batch is not None:
                    yield batch
                    count += 1
        else:
            if self._iterator is None:
                self._iterator = self._fresh_iterator()
            restarted = False
            while count < self._limit:
                raw = next(self._iterator, _END)
                if raw is _END:
                    if self.one_shot or restarted:  # nothing more, even after starting over
                        break
                    self._iterator, restarted = self._fresh_iterator(), True
                    continue
                restarted = False
                batch = self._to_batch(raw)
                if batch is not None:
                    yield batch
                    count += 1
        if count == 0:
            raise ValueError(
                f"{self.argument} produced no batches this epoch: a one-shot iterator or "
                f"generator is exhausted after one pass; pass {self.steps_argument} (and make "
                "it yield enough batches) or a re-iterable such as a list or a data loader"
            )

    def skip_epochs(self, count: int) -> None:
        """Draw and drop `count` epochs of a continuing stream (with `steps`), so that the
        next epoch is the one an uninterrupted run would see next; without `steps` every
        epoch starts the data afresh, so there is nothing to skip."""
        if self._limit is not None:
            for _ in range(count):
                for _ in self.epoch(0):
                    pass

    def _to_batch(self, raw: Any) -> Batch | None:
        """The padded batch, or None for a short batch that `drop_remainder` skips."""
        x, y, sample_weight, rows = checked_triple(*unpack_batch(raw))
        if self._batch_size is None:
            if self.process_local:
                check_shares_agree(self.argument, rows, None if self._limit else self.steps_per_epoch)
            self._batch_size = rows
        if self.process_local and rows > self._batch_size:
            raise ValueError(
                f"{self.argument}: a process_local share has {rows} rows, more than the first "
                f"share's {self._batch_size}; the first share fixes the global batch size, so "
                "later ones may only be shorter (a partial last batch)"
            )
        if self.drop_remainder and rows < self._batch_size:
            return None
        batch = padded_batch(x, y, sample_weight, max(rows, self._batch_size))
        return LocalBatch(*batch) if self.process_local and jax.process_count() > 1 else batch


_END = object()


def known_length(data: Any) -> int | None:
    """`len(data)`, the batches of one pass, or None where it is not known: no `__len__`,
    or one that raises TypeError (a `tf.data.Dataset` of infinite or unknown cardinality)."""
    if not hasattr(data, "__len__"):
        return None
    try:
        return len(data)
    except TypeError:
        return None


def make_source(
    x: Any,
    y: Any = None,
    sample_weight: Any = None,
    *,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    steps: int | None = None,
    names: tuple[str, str, str] = ("x", "y", "sample_weight"),
    steps_argument: str = "steps",
    drop_remainder: bool = False,
) -> ArraySource | IterableSource:
    """The right source for `x`; errors name the argument (`names`, `steps_argument`).

    Examples:
        >>> import numpy as np
        >>> from elegy.data import make_source
        >>> x, y = np.zeros((10, 2)), np.zeros(10)
        >>> type(make_source(x, y, batch_size=4)).__name__
        'ArraySource'
        >>> type(make_source([(x[:5], y[:5]), (x[5:], y[5:])], batch_size=4)).__name__
        'IterableSource'
    """
    batch_size = check_int(batch_size, "batch_size")
    steps = check_int(steps, steps_argument, allow_none=True)
    if x is None:
        raise ValueError(
            f"{names[0]} is required: pass an array, a nested structure of arrays, or an iterable of batches"
        )
    if is_batch_iterable(x, y):
        if y is not None or sample_weight is not None:
            raise ValueError(
                f"{names[1]} and {names[2]} must be None when {names[0]} is an iterable of "
                "batches; yield (x, y) or (x, y, sample_weight) tuples instead"
            )
        shares = isinstance(x, ProcessLocal)
        data = x.batches if shares else x
        return IterableSource(data, steps, names[0], steps_argument, drop_remainder, process_local=shares)
    return ArraySource(x, y, sample_weight, batch_size, shuffle, seed, steps, names, drop_remainder)


def validation_source(data: Any, batch_size: int, steps: int | None) -> ArraySource | IterableSource | None:
    """The source of `fit`'s `validation_data`: `(x, y[, sample_weight])` or an iterable
    of batches (None: no validation); errors name `validation_data` and `validation_steps`."""
    if data is None:
        return None
    if isinstance(data, tuple):
        if not 1 <= len(data) <= 3:
            raise ValueError(
                "validation_data must be (x, y) or (x, y, sample_weight) or an iterable "
                f"of batches; got a tuple of length {len(data)}"
            )
        vx, vy, vw = (list(data) + [None, None])[:3]
        names = ("validation_data[0]", "validation_data[1]", "validation_data[2]")
        return make_source(
            vx, vy, vw, batch_size=batch_size, steps=steps, names=names, steps_argument="validation_steps"
        )
    if is_batch_iterable(data, None):
        return make_source(
            data,
            batch_size=batch_size,
            steps=steps,
            steps_argument="validation_steps",
            names=("validation_data", "y", "sample_weight"),
        )
    raise TypeError(
        "validation_data must be a tuple (x, y[, sample_weight]) or an iterable of "
        f"batches, got {type(data).__name__}"
    )


def split_validation(
    x: Any, y: Any, sample_weight: Any, fraction: float
) -> tuple[tuple[Any, Any, Any], tuple[Any, Any, Any]]:
    """Split arrays into (train, validation) triples, validation taken from the end.

    As in Keras, the split happens before any shuffling, so the same rows are held out
    every epoch.

    Examples:
        >>> import numpy as np
        >>> from elegy.data import split_validation
        >>> (x, y, _), (val_x, val_y, val_w) = split_validation(np.arange(10), np.arange(10) * 2, None, 0.2)
        >>> x.tolist(), val_x.tolist(), val_y.tolist(), val_w
        ([0, 1, 2, 3, 4, 5, 6, 7], [8, 9], [16, 18], None)
    """
    if not isinstance(fraction, (int, float)) or not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation_split must be a float in [0, 1), got {fraction!r}")
    if is_batch_iterable(x, y):
        raise ValueError(
            "validation_split only works with array inputs; for an iterable of batches "
            "pass validation_data instead"
        )
    *trees, n = checked_triple(x, y, sample_weight)
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

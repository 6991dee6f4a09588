"""Batches as the compiled step receives them: fixed size, with a mask of real rows.

The last, partial batch is padded to the batch size by repeating its real rows, so the
step compiles once; `mask` marks the real rows. Padding happens here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import jax
import numpy as np


class Batch(NamedTuple):
    """One batch as a step receives it: `x`, `y`, `sample_weight` and `mask`.

    `mask` is True for real rows and False for the rows that only pad a partial batch;
    `num_real` counts the real rows.

    Examples:
        An average over the real rows only:

        >>> import numpy as np
        >>> from elegy.data import Batch
        >>> mask = np.array([True, True, False])  # the third row repeats the first
        >>> batch = Batch(x=np.array([1.0, 2.0, 1.0]), y=None, sample_weight=None, mask=mask)
        >>> batch.num_real, float((batch.x * batch.mask).sum() / batch.num_real)
        (2, 1.5)
    """

    x: Any
    y: Any | None
    sample_weight: Any | None
    mask: np.ndarray

    @property
    def num_real(self) -> int:
        return int(self.mask.sum())


def batch_rows(tree: Any) -> int:
    return int(np.shape(jax.tree_util.tree_leaves(tree)[0])[0])


def padded_batch(x: Any, y: Any, sample_weight: Any, size: int) -> Batch:
    """A Batch of exactly `size` rows: real rows first, then repeats of them.

    Examples:
        >>> import numpy as np
        >>> from elegy.data import padded_batch
        >>> batch = padded_batch(np.arange(3), np.arange(3) * 10, None, 5)
        >>> batch.x.tolist(), batch.y.tolist(), batch.mask.tolist()
        ([0, 1, 2, 0, 1], [0, 10, 20, 0, 10], [True, True, True, False, False])
    """
    return padded_rows(Batch(x, y, sample_weight, np.ones(batch_rows(x), bool)), size)


def padded_rows(batch: Batch, size: int) -> Batch:
    """`batch` extended to `size` rows by repeating its rows, the new ones masked out
    (a global batch made divisible by the number of devices it is split over)."""
    rows = len(batch.mask)
    if rows == size:
        return batch
    index = np.arange(size) % rows
    x, y, sample_weight = (take_rows(t, index) for t in (batch.x, batch.y, batch.sample_weight))
    return Batch(x, y, sample_weight, np.concatenate([batch.mask, np.zeros(size - rows, bool)]))


def array_batches(
    x: Any, y: Any, sample_weight: Any, batch_size: int, order: np.ndarray | int, group: int = 1
) -> Iterator[Batch]:
    """Batches over in-memory arrays, the last one padded: rows taken in `order`, or, when
    `order` is a row count, the first `order` rows in sequence (slices: no copy).

    With `group` > 1 (`steps_per_execution`), each run of `group` full batches comes as one
    Batch stacked on a new leading axis: one gather of its rows, or a reshaped view of
    them in sequence, instead of `group` gathers and a copy to stack them. What is left
    (fewer than `group` batches) comes one batch at a time.
    """
    sequential = isinstance(order, int)
    rows = order if sequential else len(order)
    # Flattened once: per batch, one index of each array (no tree walk per step).
    arrays, treedef = jax.tree_util.tree_flatten((x, y, sample_weight))
    arrays = [np.asarray(a) for a in arrays]

    def rows_at(index: Any) -> tuple[Any, Any, Any]:
        return treedef.unflatten([a[index] for a in arrays])

    span, grouped = group * batch_size, 0
    while group > 1 and grouped + span <= rows:
        index = slice(grouped, grouped + span) if sequential else order[grouped : grouped + span]
        yield stacked_rows(Batch(*rows_at(index), np.ones(span, bool)), group)
        grouped += span
    full = np.ones(batch_size, bool)
    full.flags.writeable = False  # one mask shared by every full batch
    for start in range(grouped, rows, batch_size):
        stop = min(start + batch_size, rows)
        index = slice(start, stop) if sequential else order[start:stop]
        if stop - start == batch_size:
            yield Batch(*rows_at(index), full)
        else:
            yield padded_batch(*rows_at(index), batch_size)


def stacked_rows(batch: Batch, group: int) -> Batch:
    """A batch of `group * n` rows as `group` batches of `n` on a new leading axis."""
    return jax.tree_util.tree_map(lambda a: a.reshape(group, -1, *a.shape[1:]), batch)


def is_stacked(batch: Batch) -> bool:
    """Whether a source already stacked several batches into this one (`array_batches`)."""
    return np.ndim(batch.mask) == 2


def take_rows(tree: Any, index: Any) -> Any:
    """The rows `index` (an index array or a slice) of every leaf; None stays None."""
    if tree is None:
        return None
    return jax.tree_util.tree_map(lambda a: np.asarray(a)[index], tree)

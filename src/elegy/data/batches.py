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
    """A Batch of exactly `size` rows: real rows first, then repeats of them."""
    rows = batch_rows(x)
    if rows == size:
        return Batch(x, y, sample_weight, np.ones(size, bool))
    index = np.arange(size) % rows
    return Batch(*(take_rows(t, index) for t in (x, y, sample_weight)), np.arange(size) < rows)


def array_batches(
    x: Any, y: Any, sample_weight: Any, batch_size: int, order: np.ndarray | int
) -> Iterator[Batch]:
    """Batches over in-memory arrays, the last one padded: rows taken in `order`, or, when
    `order` is a row count, the first `order` rows in sequence (slices: no copy)."""
    sequential = isinstance(order, int)
    rows = order if sequential else len(order)
    for start in range(0, rows, batch_size):
        stop = min(start + batch_size, rows)
        index = slice(start, stop) if sequential else order[start:stop]
        yield padded_batch(*(take_rows(t, index) for t in (x, y, sample_weight)), batch_size)


def take_rows(tree: Any, index: Any) -> Any:
    """The rows `index` (an index array or a slice) of every leaf; None stays None."""
    if tree is None:
        return None
    return jax.tree_util.tree_map(lambda a: np.asarray(a)[index], tree)

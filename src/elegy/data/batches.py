"""Batches as the compiled step receives them: fixed size, with a mask of real rows.

The last, partial batch is padded to the batch size by repeating its real rows, so the
step compiles once; `mask` marks the real rows. Padding happens here and nowhere else.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import numpy as np

from elegy.data.structure import batch_rows


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


class LocalBatch(Batch):
    """This process's rows of a global batch, as a `process_local` source yields them in
    a run of several processes: `Distribution.put_batch` joins the shares of every
    process into the global batch (in one process a share is the whole batch, and
    sources yield plain `Batch`es).

    Examples:
        >>> import numpy as np
        >>> from elegy.data import Batch, LocalBatch
        >>> share = LocalBatch(np.zeros((2, 3)), None, None, np.array([True, False]))
        >>> isinstance(share, Batch), share.num_real
        (True, 1)
    """

    __slots__ = ()


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


def padded_rows(batch: Batch, size: int, axis: int = 0) -> Batch:
    """`batch` extended to `size` rows by repeating its rows, the new ones masked out
    (a global batch made divisible by the number of devices it is split over); `axis`:
    the rows' axis (1 for batches stacked on a leading step axis)."""
    rows = batch.mask.shape[axis]
    if rows == size:
        return batch
    index = np.arange(size) % rows
    x, y, sample_weight = (take_rows(t, index, axis) for t in (batch.x, batch.y, batch.sample_weight))
    filler = np.zeros((*batch.mask.shape[:axis], size - rows), bool)
    return Batch(x, y, sample_weight, np.concatenate([batch.mask, filler], axis=axis))


def take_rows(tree: Any, index: Any, axis: int = 0) -> Any:
    """The rows `index` (an index array or a slice) of every leaf along `axis`; None
    stays None."""
    if tree is None:
        return None
    where = (slice(None),) * axis + (index,)
    return jax.tree_util.tree_map(lambda a: np.asarray(a)[where], tree)

"""Inputs -> fixed-size host batches with a mask of real rows.

Examples:
    Five rows in batches of two: the last batch repeats a real row, and its mask says so.

    >>> import numpy as np
    >>> from elegy.data import make_source
    >>> source = make_source(np.arange(5.0), np.arange(5), batch_size=2)
    >>> [(batch.x.tolist(), batch.mask.tolist()) for batch in source.epoch(0)]
    [([0.0, 1.0], [True, True]), ([2.0, 3.0], [True, True]), ([4.0, 4.0], [True, False])]
"""

from elegy.data.batches import Batch, LocalBatch, padded_batch
from elegy.data.shares import process_local
from elegy.data.sources import ArraySource, IterableSource, make_source, split_validation
from elegy.data.structure import unpack_batch

__all__ = [
    "ArraySource",
    "Batch",
    "IterableSource",
    "LocalBatch",
    "make_source",
    "padded_batch",
    "process_local",
    "split_validation",
    "unpack_batch",
]

"""Inputs -> fixed-size host batches with a mask of real rows."""

from elegy.data.batches import Batch, padded_batch
from elegy.data.sources import ArraySource, IterableSource, make_source, split_validation
from elegy.data.structure import unpack_batch

__all__ = [
    "ArraySource",
    "Batch",
    "IterableSource",
    "make_source",
    "padded_batch",
    "split_validation",
    "unpack_batch",
]

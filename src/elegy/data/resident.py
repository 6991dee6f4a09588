"""In-memory arrays on the device for a whole call: every batch gathered there.

A hand-written `lax.scan` loop is fast on an accelerator because its batches never leave
the device. When `x`, `y` and `sample_weight` fit (`fits_on_device`), `fit`, `evaluate`
and `predict` place them on the device once (`DeviceArrays`) and send, per epoch, only
the row index of every batch (`EpochRows`): the compiled step gathers its batch from
the placed arrays (`gathered`). No rows are sliced, stacked or copied on the host per
step.

On the CPU the data stay on the host unless asked (`data_on_device=True`): there the
device's memory is the host's, a batch of rows in sequence crosses without a copy, and
XLA's CPU gather is slower than numpy's indexing (for the benchmark's 784-300-10 MLP,
batch 64: 250 us a step with the batch gathered in the program, 190-205 us with it
sliced on the host).

The rows are those `ArraySource.spans` gives, padded as `ArraySource.batch` pads (the
real rows repeated, masked out), so a step sees the same batch wherever the data lives
and the results are the same bits.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import jax
import numpy as np

from elegy.data.batches import Batch
from elegy.data.prefetch import on_accelerator
from elegy.data.sources import ArraySource, Span

# The share of the device's free memory the data may take (on the CPU, of the host's
# available memory): the rest is for the model, its States and XLA's work space.
DEVICE_MEMORY_FRACTION = 0.5


class EpochRows(NamedTuple):
    """The rows of every batch of one epoch: `indices[i]` and `masks[i]` for batch `i`,
    on the device, and the masks on the host (for `predict`'s real rows)."""

    spans: list[Span]
    indices: jax.Array
    masks: jax.Array
    host_masks: np.ndarray

    def __len__(self) -> int:
        return len(self.spans)


class DeviceArrays:
    """The arrays of an `ArraySource`, placed on the default device once.

    Their number of rows is rounded up (`padded_length`, at most an eighth more) and the
    extra rows, zeros, are never gathered: the arrays' shape is part of every compiled
    step that reads them, and data sets of nearby sizes (a predict on 1000 rows, then on
    1003) then share one compiled program instead of compiling one each.
    """

    def __init__(self, source: ArraySource):
        self.source = source
        length = padded_length(source.num_samples)
        self.data: Any = jax.device_put(jax.tree_util.tree_map(lambda a: _padded(a, length), source.arrays()))

    def epoch(self, epoch_index: int) -> EpochRows:
        """The rows of the batches of epoch `epoch_index` (one small transfer)."""
        spans = list(self.source.spans(epoch_index))
        size = self.source.batch_size
        index = np.empty((len(spans), size), np.int32)
        mask = np.zeros((len(spans), size), bool)
        for i, span in enumerate(spans):
            rows = np.arange(span.start, span.stop) if isinstance(span, slice) else np.asarray(span)
            index[i] = rows[np.arange(size) % len(rows)]  # as `padded_batch` repeats them
            mask[i, : len(rows)] = True
        indices, masks = jax.device_put((index, mask))
        return EpochRows(spans, indices, masks, mask)

    def first(self, rows: EpochRows, position: int) -> Batch:
        """The batch at `position`, on the host (what initialization looks at)."""
        return self.source.batch(rows.spans[position])


def padded_length(rows: int) -> int:
    """`rows` rounded up to `m * 2**k` with `8 <= m < 16`: at most 1/8 more.

    Examples:
        >>> from elegy.data.resident import padded_length
        >>> [padded_length(n) for n in (5, 100, 1000, 1003, 60000)]
        [5, 104, 1024, 1024, 61440]
    """
    step = 1 << max(rows.bit_length() - 4, 0)
    return -(-rows // step) * step


def _padded(array: np.ndarray, length: int) -> np.ndarray:
    if len(array) == length:
        return array
    padded = np.zeros((length, *array.shape[1:]), array.dtype)
    padded[: len(array)] = array
    return padded


def gathered(data: Any, index: Any, mask: Any) -> Batch:
    """The batch of rows `index` of the placed `data` (inside a compiled step)."""
    x, y, sample_weight = jax.tree_util.tree_map(lambda leaf: leaf[index], data)
    return Batch(x, y, sample_weight, mask)


def device_arrays(source: Any, on_device: bool | None) -> DeviceArrays | None:
    """`source`'s arrays on the device, placed once per source, or None for the host
    path: `on_device` True forces the device (an error for data that is not arrays),
    False the host, None decides: on an accelerator, by `fits_on_device`; on the CPU, the
    host (see the module docstring)."""
    if on_device is False:
        return None
    if not isinstance(source, ArraySource):
        if on_device:
            raise ValueError(
                "data_on_device=True needs x (and y, sample_weight) as in-memory arrays; "
                f"got a {type(getattr(source, 'data', source)).__name__} of batches"
            )
        return None
    placed: DeviceArrays | None = getattr(source, "_on_device", None)
    if placed is None:
        if on_device is None and (not on_accelerator() or not fits_on_device(source)):
            return None
        placed = DeviceArrays(source)
        source._on_device = placed  # type: ignore[attr-defined]  # the source's lifetime: one call
    return placed


def fits_on_device(source: ArraySource, device: Any = None) -> bool:
    """Whether the source's arrays take at most `DEVICE_MEMORY_FRACTION` of the free memory."""
    needed = sum(leaf.nbytes for leaf in jax.tree_util.tree_leaves(source.arrays()))
    return bool(needed <= DEVICE_MEMORY_FRACTION * free_memory(device or jax.devices()[0]))


def free_memory(device: Any) -> int:
    """Bytes free on `device`; for a CPU device (no memory statistics), the host's."""
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")

"""Per-process shares of an iterable: each process reads only its own rows of every batch.

In a run of several processes (`jax.distributed`), `fit` given arrays builds in each
process only that process's rows of every global batch. An iterable cannot be split that
way: whatever it yields is a whole batch. `process_local(batches)` says instead that each
batch it yields is this process's share of the global batch, which is then the processes'
shares joined (`Distribution.put_batch`, with `jax.make_array_from_process_local_data`).

The processes must yield shares of the same size, batch for batch, and the same number
of batches per epoch: the first is checked at the first batch of each source, with one
gather across processes, and so is the second where every share has a `len()`. A share
that runs out early cannot be detected without a gather per step: the others would wait
in a collective forever.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils

__all__ = ["process_local"]


class ProcessLocal:
    """An iterable of batches marked as this process's shares (see `process_local`)."""

    def __init__(self, batches: Any):
        self.batches = batches

    def __iter__(self) -> Iterator[Any]:
        return iter(self.batches)

    def __repr__(self) -> str:
        return f"process_local({self.batches!r})"


def process_local(batches: Any) -> ProcessLocal:
    """Mark `batches` (any iterable of batches `fit` accepts) as yielding, in each
    process, this process's rows of the global batch.

    Why a marker on the data rather than an option of the distribution: the meaning
    belongs to one input, not to the run. The same `fit` may train on a loader that each
    process reads a share of and validate on arrays, which every process holds whole and
    of which each already builds only its own rows. The call site also shows how the
    data is split. In one process a share is the whole batch, so the marker changes
    nothing and the same script runs on a laptop and on a cluster.

    The global batch is the processes' shares side by side, each padded to a multiple of
    its process's devices (padding rows are masked out): with `P` processes yielding `b`
    rows each, a step sees `P * b` real rows. Every process must yield shares of the same
    size (checked at the first batch), at most the first one's size later on (checked at
    every batch), and the same number of batches per epoch (checked when every share has
    a `len()`; otherwise pass `steps_per_epoch`). `predict` returns the global
    predictions, batch by batch, every process's share in process order.

    Shares come from the loader: a Grain `MapDataset` sliced by process,
    `dataset[jax.process_index()::jax.process_count()]`, a Grain `DataLoader` whose
    sampler has `shard_options=grain.sharding.ShardByJaxProcess()`, or a generator over
    this process's files.

    Examples:
        In one process, the share is the global batch:

        >>> import numpy as np
        >>> from elegy.data import make_source, process_local
        >>> batches = [(np.ones((4, 2)), np.zeros(4)), (np.ones((2, 2)), np.zeros(2))]
        >>> source = make_source(process_local(batches), batch_size=32)
        >>> [(batch.x.shape, batch.num_real) for batch in source.epoch(0)]
        [((4, 2), 4), ((4, 2), 2)]
    """
    if isinstance(batches, ProcessLocal):
        return batches
    if isinstance(batches, (tuple, dict, str, bytes)) or hasattr(batches, "shape"):
        raise TypeError(
            "process_local takes an iterable of batches (a generator, a list of batches, a data "
            f"loader), got {type(batches).__name__}; arrays need no marker: from arrays each "
            "process already builds only its own rows of every global batch"
        )
    if not (hasattr(batches, "__iter__") or hasattr(batches, "__next__")):
        raise TypeError(f"process_local takes an iterable of batches, got {type(batches).__name__}")
    return ProcessLocal(batches)


def share_disagreement(argument: str, rows: Sequence[int], lengths: Sequence[int | None]) -> str | None:
    """Why the processes' shares cannot form one global batch (None: they can), given
    each process's rows in its first batch and its number of batches (None: unknown)."""
    if len(set(rows)) > 1:
        listing = ", ".join(f"{n} in process {i}" for i, n in enumerate(rows))
        return (
            f"{argument}: every process must yield shares of the same size (each is its rows of the "
            f"global batch); the first batches have {listing}"
        )
    known = [n for n in lengths if n is not None]
    if len(known) == len(lengths) and len(set(known)) > 1:
        listing = ", ".join(f"{n} in process {i}" for i, n in enumerate(known))
        return (
            f"{argument}: every process must run the same number of steps, but len() of the shares "
            f"is {listing}; give each process as many batches, or pass steps_per_epoch"
        )
    return None


def check_shares_agree(argument: str, rows: int, length: int | None) -> None:
    """Raise, in every process alike, when the processes' first batches differ in size or
    their shares in length (`share_disagreement`); one gather across processes."""
    if jax.process_count() == 1:
        return
    mine = np.array([rows, -1 if length is None else length], np.int64)
    gathered = np.asarray(multihost_utils.process_allgather(mine))
    problem = share_disagreement(
        argument, [int(r) for r in gathered[:, 0]], [None if n < 0 else int(n) for n in gathered[:, 1]]
    )
    if problem is not None:
        raise ValueError(problem)

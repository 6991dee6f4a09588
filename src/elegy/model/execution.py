"""The execution plan: which batches each call of a compiled step runs over, and back.

With `steps_per_execution=N`, N consecutive batches are stacked on a new leading axis,
sent to the device at once, and a `lax.scan` runs the step over them inside one compiled
call; the per-step outputs (logs, predictions) come back stacked. This module alone
decides how: sources only yield rows and batches, and nothing downstream looks at the
shape of a batch to find out what was decided. It owns

- grouping: a group starts at a position of the epoch that is a multiple of N (so a
  resumed epoch groups as the uninterrupted one did); what is left at the end, fewer than
  N batches, runs one by one through the single-step program (one more compilation, but
  no group of another size and no filler steps);
- stacking: for in-memory arrays, the rows of a whole group are taken with one index (a
  view, for rows in sequence) and reshaped, not gathered batch by batch and copied again;
- padding: a partial batch repeats its rows (`padded_batch`), and a distributed one is
  made divisible by its shards (`padded_rows`);
- placement on the device(s), and un-stacking what a fused call returned: one lazily
  fetched `Logs` per step, the outputs of each step, the last step's logs, and the real
  rows of every prediction.

Filler steps were tried and dropped: to complete the last group with batches that change
nothing, the scan must skip them with a `lax.cond`, and a `cond` inside a loop costs on
a GPU in every step of every group, not only in the last one (jax issues 5986 and 38145
report `cond` in a `scan` as slow on GPUs, and copies of the whole carry). On an H200,
32 fused training steps ran at 0.44x the speed of a hand-written scan with the `cond` and
0.50x without it for the benchmark's MLP, 0.31x and 0.44x for its CNN.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np

from elegy.callbacks.logs import Logs
from elegy.data.batches import Batch, LocalBatch, padded_rows
from elegy.data.prefetch import to_device
from elegy.data.resident import DeviceArrays, EpochRows
from elegy.data.sources import ArraySource, Span
from elegy.distributed import Distribution, to_host
from elegy.model import tuning
from elegy.model.tuning import GroupTuner, Planned


class Execution(NamedTuple):
    """The input of one compiled call: one batch (`count` 1), or `count` batches stacked on
    a new leading axis (`fused`)."""

    batches: Batch
    count: int  # type: ignore[assignment]  # (shadows tuple.count, which nothing here uses)
    planned: Planned | None = None  # under steps_per_execution="auto": what the tuner asked

    @property
    def fused(self) -> bool:
        return self.count > 1

    def to_device(self) -> Execution:
        """The arrays on the device (prefetching); `count` stays a Python int."""
        return self._replace(batches=jax.device_put(self.batches))

    def first(self) -> Batch:
        """The first batch alone (what initialization looks at)."""
        if not self.fused:
            return self.batches
        first: Batch = jax.tree_util.tree_map(lambda leaf: leaf[0], self.batches)
        return first

    @property
    def mask(self) -> Any:
        """The real rows of each batch (stacked when fused)."""
        return self.batches.mask


class OnDevice(NamedTuple):
    """The input of one compiled call over data on the device (`elegy.data.resident`):
    `planned.count` batches of the epoch's `rows` from `position`, run by the looped
    program (outputs stacked on a leading axis of `capacity` rows, the first `count`
    filled) or by the single step."""

    placed: DeviceArrays
    rows: EpochRows
    position: int
    planned: Planned
    capacity: int

    @property
    def count(self) -> int:  # type: ignore[override]  # (shadows tuple.count, unused here)
        return self.planned.count

    @property
    def fused(self) -> bool:
        return self.planned.looped

    @property
    def mask(self) -> np.ndarray:
        masks: np.ndarray = self.rows.host_masks
        return masks[self.position : self.position + self.count] if self.fused else masks[self.position]

    def first(self) -> Batch:
        return self.placed.first(self.rows, self.position)


AnyExecution = Execution | OnDevice  # what a compiled call runs over: host batches or rows on the device


class ExecutionPlan:
    """How the batches of an epoch become executions: `group` batches fused per call
    (1: none), over the devices of `distribution` (None: the default device).

    Examples:
        Seven batches of 16 rows (the last one partial), three steps per call: two fused
        groups, then the last batch alone.

        >>> import numpy as np
        >>> from elegy.data import ArraySource
        >>> from elegy.model.execution import ExecutionPlan
        >>> source = ArraySource(np.zeros((100, 2)), None, None, batch_size=16, shuffle=False, seed=0)
        >>> [(e.count, e.batches.x.shape) for e in ExecutionPlan(3).executions(source, 0)]
        [(3, (3, 16, 2)), (3, (3, 16, 2)), (1, (16, 2))]
        >>> [e.count for e in ExecutionPlan(3).executions(source, 0, skip=2)]  # resumed at batch 2
        [1, 3, 1]
    """

    def __init__(
        self,
        group: int = 1,
        distribution: Distribution | None = None,
        placed: DeviceArrays | None = None,
        tuner: GroupTuner | None = None,
    ):
        self.group = group
        self.distribution = distribution
        self.placed = placed  # the source's arrays on the device, or None: the host path
        self.tuned = tuner is not None  # (on the host: arrays grouped as the tuner plans)
        self.tuner = tuner or GroupTuner.decided(group, capacity=group)

    @property
    def chosen(self) -> int | None:
        """The steps per call this plan settled on (None while the tuner searches)."""
        return self.tuner.chosen if self.tuned else self.group

    def executions(self, source: Any, epoch: int, skip: int = 0) -> Iterable[AnyExecution]:
        """What each compiled call runs over epoch `epoch` of `source`, after its first
        `skip` batches, on its way to the device."""
        if self.placed is not None:
            return self._device_executions(epoch, skip)
        # Single batches go with the step's own dispatch; stacked groups are worth a
        # transfer ahead of time in the background (see `to_device`).
        background = self.group > 1
        distribution = self.distribution
        if self.tuned and isinstance(source, ArraySource):  # (never prefetched: planned one by one)
            return self._tuned_array_executions(source, epoch, skip)
        if distribution is None:
            if isinstance(source, ArraySource):
                planned = self._array_executions(source, epoch, skip)
            else:
                planned = self._grouped(itertools.islice(source.epoch(epoch), skip, None), skip)
            return to_device(planned, transfer=Execution.to_device, background=background)
        # Rows padded to a multiple of the batch shards (mask False), each batch placed
        # across the mesh: every process transfers its own rows.
        batches = (
            padded_for(distribution, batch) for batch in itertools.islice(source.epoch(epoch), skip, None)
        )
        return to_device(
            self._grouped(batches, skip),
            transfer=distribution.put_execution,
            always=True,
            background=background,
        )

    def _device_executions(self, epoch: int, skip: int) -> Iterator[OnDevice]:
        """Calls over the placed arrays, as many steps each as the tuner plans (asked
        after the previous call ran, so that it has been timed)."""
        assert self.placed is not None
        rows, position = self.placed.epoch(epoch), skip
        while position < len(rows):
            planned = self.tuner.next(len(rows) - position, len(rows))
            yield OnDevice(self.placed, rows, position, planned, self.tuner.capacity)
            position += planned.count

    def _tuned_array_executions(self, source: ArraySource, epoch: int, skip: int) -> Iterator[Execution]:
        """Batches from the host in the groups the tuner plans (asked after the previous
        call ran): one batch, or a stacked group of the one fused size it times."""
        spans, position = list(source.spans(epoch)), skip
        while position < len(spans):
            planned = self.tuner.next(len(spans) - position, len(spans))
            if planned.looped:
                yield self._stacked_spans(source, spans[position : position + planned.count])._replace(
                    planned=planned
                )
            else:
                yield Execution(source.batch(spans[position]), 1, planned)
            position += planned.count

    @staticmethod
    def _stacked_spans(source: ArraySource, group: Sequence[Span]) -> Execution:
        """The batches of consecutive spans stacked: full ones taken with one index."""
        if all(_full(span, source) for span in group):
            rows = source.rows(_joined(group))
            return Execution(
                _stacked(Batch(*rows, np.ones(len(group) * source.batch_size, bool)), len(group)), len(group)
            )
        return _stacked_batches([source.batch(span) for span in group])

    def run(
        self, compiled: Any, entry: str, states: Any, execution: AnyExecution, *arguments: Any
    ) -> tuple[Any, Any]:
        """`compiled.execute(entry, states, execution, *arguments)`, timed or probed
        for the tuner where it planned so (see `elegy.model.tuning`)."""
        planned = execution.planned
        if planned is None or not (planned.timed or planned.probe):
            result: tuple[Any, Any] = compiled.execute(entry, states, execution, *arguments)
            return result
        if planned.probe:  # the fused program against the single step (when it has compiled)
            on_device = isinstance(execution, OnDevice)
            if on_device:  # one step, single and looped
                fused: AnyExecution = execution._replace(planned=Planned(1, looped=True))
                result = compiled.execute(entry, states, execution, *arguments)
            else:  # a group from the host, fused and step by step
                assert isinstance(execution, Execution)
                fused, result = execution, _one_by_one(compiled, entry, states, execution, arguments)
            if self.tuner.compiling is None:  # the steps go on while it compiles (over fits)
                self.tuner.compiling = compiled.compile_ahead(
                    entry, states, fused, *arguments, background=tuning.COMPILE_IN_BACKGROUND
                )
            if self.tuner.compiling.done():
                self.tuner.compiling.result()  # (an error compiling is raised here)
                again = compiled.execute(entry, states, fused, *arguments)
                self.tuner.probed(
                    same_bits(result, _first_step(again, entry == "train") if on_device else again)
                )
            return result
        started = self.tuner.clock()
        result = jax.block_until_ready(compiled.execute(entry, states, execution, *arguments))  # type: ignore[no-untyped-call]
        self.tuner.timed(planned, self.tuner.clock() - started)
        return result

    def _array_executions(self, source: ArraySource, epoch: int, skip: int) -> Iterator[Execution]:
        """Groups of full batches taken with one index each, the rest batch by batch."""
        spans, size, position = list(source.spans(epoch)), self.group, skip
        while position < len(spans):
            group = spans[position : position + size]
            if size > 1 and position % size == 0 and len(group) == size:
                yield self._stacked_spans(source, group)  # (a partial batch: each padded, then stacked)
                position += size
            else:
                yield Execution(source.batch(spans[position]), 1)
                position += 1

    def _grouped(self, batches: Iterable[Batch], first_position: int) -> Iterator[Execution]:
        """Batches one by one, or stacked `group` at a time from aligned positions."""
        size, group = self.group, list[Batch]()
        for position, batch in enumerate(batches, start=first_position):
            if size == 1 or (not group and position % size):
                yield Execution(batch, 1)
                continue
            group.append(batch)
            if len(group) == size:
                yield _stacked_batches(group)
                group = []
        for batch in group:
            yield Execution(batch, 1)


def _stacked_batches(batches: Sequence[Batch]) -> Execution:
    return Execution(jax.tree_util.tree_map(lambda *leaves: np.stack(leaves), *batches), len(batches))


def _full(span: Span, source: ArraySource) -> bool:
    length = span.stop - span.start if isinstance(span, slice) else len(span)
    return length == source.batch_size


def _joined(spans: Sequence[Span]) -> Span:
    """One index for the rows of consecutive spans: a slice (a view) when they follow
    each other, else one index array."""
    slices = [s for s in spans if isinstance(s, slice)]
    if len(slices) == len(spans):
        if all(a.stop == b.start for a, b in zip(slices[:-1], slices[1:], strict=True)):
            return slice(slices[0].start, slices[-1].stop)
    return np.concatenate([np.arange(s.start, s.stop) if isinstance(s, slice) else s for s in spans])


def padded_for(distribution: Distribution, batch: Batch) -> Batch:
    """A global batch padded to a multiple of the batch shards; a process's share
    (`LocalBatch`) is left to its placement, which pads it for that process's devices."""
    if isinstance(batch, LocalBatch):
        return batch
    return padded_rows(batch, distribution.padded_size(len(batch.mask)))


def _stacked(batch: Batch, group: int) -> Batch:
    """A batch of `group * n` rows as `group` batches of `n` on a new leading axis."""
    stacked: Batch = jax.tree_util.tree_map(lambda a: a.reshape(group, -1, *a.shape[1:]), batch)
    return stacked


# ---------------------------------------------------------------- what came back
def _one_by_one(
    compiled: Any, entry: str, states: Any, execution: Execution, arguments: tuple[Any, ...]
) -> tuple[Any, Any]:
    """A fused execution's steps run by the single step, returned as the fused call
    returns them: the outputs stacked (a training step's `halted` flag passed on)."""
    outputs = []
    for batch in step_outputs(execution.batches, execution):
        output, states = compiled.execute(entry, states, Execution(batch, 1), *arguments)
        if entry == "train":  # (logs, halted): the flag goes on to the next step
            arguments = (arguments[0], output[1])
        outputs.append(output)
    if entry == "train":
        logs = jax.tree_util.tree_map(lambda *rows: jax.numpy.stack(rows), *[output[0] for output in outputs])
        return (logs, arguments[1]), states
    return jax.tree_util.tree_map(lambda *rows: jax.numpy.stack(rows), *outputs), states


def _first_step(looped: tuple[Any, Any], training: bool) -> tuple[Any, Any]:
    """A looped call's result as a single step returns it: its first row of outputs.
    (`training`, not the outputs' type, says they are (logs, halted): predictions may be
    a tuple too.)"""
    stacked, states = looped
    if training:
        return (jax.tree_util.tree_map(lambda leaf: leaf[0], stacked[0]), stacked[1]), states
    return jax.tree_util.tree_map(lambda leaf: leaf[0], stacked), states


def same_bits(a: tuple[Any, Any], b: tuple[Any, Any]) -> bool:
    """Whether two calls returned the same outputs and States, bit for bit."""
    (outputs, states), (other_outputs, other_states) = a, b
    a, b = jax.device_get(((outputs, states.leaves()[1]), (other_outputs, other_states.leaves()[1])))
    if jax.tree_util.tree_structure(a) != jax.tree_util.tree_structure(b):  # type: ignore[operator]
        return False
    return all(
        np.asarray(x).dtype == np.asarray(y).dtype
        and np.shape(x) == np.shape(y)
        and np.asarray(x).tobytes() == np.asarray(y).tobytes()
        for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True)
    )


def step_outputs(outputs: Any, execution: AnyExecution) -> list[Any]:
    """The outputs of each step of an execution (device arrays, not fetched)."""
    if not execution.fused:
        return [outputs]
    return [jax.tree_util.tree_map(lambda leaf, i=i: leaf[i], outputs) for i in range(execution.count)]


def step_logs(logs: Any, execution: AnyExecution, order: Sequence[str] | None) -> list[Logs]:
    """One Logs per step of the execution; reading any of them fetches all, in one transfer."""
    if not execution.fused:
        return [Logs(logs, order)]

    def fetch() -> dict[str, Any]:
        fetched: dict[str, Any] = jax.device_get(dict(logs))
        return fetched

    transfer = functools.cache(fetch)

    def row(i: int) -> Callable[[], dict[str, Any]]:
        return lambda: {name: value[i] for name, value in transfer().items()}

    return [Logs(logs, order, source=row(i)) for i in range(execution.count)]


def last_step(outputs: Any, execution: AnyExecution) -> Any:
    """The outputs of the execution's last step, still on the device. (Picked once, after
    a loop: indexing stacked logs on the device after every execution cost an op per
    log.)"""
    if not execution.fused:
        return outputs
    return jax.tree_util.tree_map(lambda stacked: stacked[execution.count - 1], outputs)


def real_rows(outputs: list[tuple[Any, AnyExecution]]) -> Any:
    """The predictions of the real rows of every batch, as one numpy tree.

    Everything is fetched in one transfer. The rows of all batches are joined first and
    the real ones picked with one boolean index per leaf, not sliced batch by batch: per
    batch Python cost a tenth of a predict step.
    """
    host = to_host([(y_pred, execution.mask) for y_pred, execution in outputs])
    pieces, masks = [], []
    for (y_pred, mask), (_, execution) in zip(host, outputs, strict=True):
        if execution.fused:  # stacked steps (the first `count` filled): their rows in a row
            y_pred, mask = jax.tree_util.tree_map(
                lambda a, n=execution.count: a[:n].reshape(-1, *a.shape[2:]), (y_pred, mask)
            )
        pieces.append(y_pred)
        masks.append(mask)
    real = np.concatenate(masks).astype(bool)
    return jax.tree_util.tree_map(lambda *leaves: np.concatenate(leaves)[real], *pieces)

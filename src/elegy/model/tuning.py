"""`steps_per_execution="auto"`: how many steps each compiled call runs, found by measuring.

Fusing steps into one call saves the host's dispatch of every step but the first; on XLA's
CPU backend a convolution inside a loop runs an order of magnitude slower than alone (and
computes other bits). No rule about layer types says which wins: the tuner measures it,
once per model and entry point, on the first executions of a fit with its data on the
device (`elegy.data.resident`), where every group size is the same compiled program, the
count of steps a run-time argument.

Timing noise must never change a result, so the clock only chooses among programs that
compute the same bits:

1. the single step alone, compiled (not timed), then timed twice;
2. the probe: the looped program (compiled here, not timed) runs one step from the same
   States as the single step; unless the two agree bit for bit, the choice is 1, without
   a clock;
3. groups of 2, 4, 8, ... steps, each timed twice (the faster counts), while a group runs
   at least `MIN_GAIN` times as many steps per second as the best so far and an execution
   stays under `MAX_EXECUTION_SECONDS`, so callbacks and the progress bar stay live.

Where the batches come from the host (`any_size=False`: on the CPU by default, see
`elegy.data.resident`), a fused program has one group size, stacked on the host, and
each size is a compilation of its own: the only candidate is the largest power of two
(at most `HOST_GROUP`) whose execution the single step's time says stays under the limit.
The probe runs that group fused and step by step from the same States and compares the
bits; then the group is timed against the single step.

The fused program the probe needs compiles in a thread of its own, started by the first
probe (which then runs its steps one by one), while the single step goes on training
(`COMPILE_IN_BACKGROUND`); the next probe runs once it is compiled. The search costs the
first epoch little more than the probe's steps, and a short fit may end before it does.

A timed execution waits for its results (a host sync, in the first executions of the
first fit only). The choice is kept by the model, recorded by `BackupAndRestore`, and
reused by every later fit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple

MAX_EXECUTION_SECONDS = 0.5  # longest a fused call may take: callbacks see batches this often
MIN_GAIN = 1.03  # a larger group must run this many times as many steps per second
MAX_GROUP = 64  # the most steps one call runs (the size of its stacked outputs)
TIMINGS_PER_SIZE = 2  # executions timed per candidate; the fastest counts
HOST_GROUP = 32  # the largest candidate for batches stacked on the host
# The probe's fused program compiles in a thread while the single step goes on training;
# False: in the loop's thread, the probe waiting for it (tests that count steps use it).
COMPILE_IN_BACKGROUND = True


class Planned(NamedTuple):
    """What the next execution runs: `count` steps, in the looped program or as the
    single step, and whether it is timed or is the probe."""

    count: int  # type: ignore[assignment]  # (shadows tuple.count, which nothing here uses)
    looped: bool
    timed: bool = False
    probe: bool = False


class GroupTuner:
    """The search for one entry point's group size (see the module docstring).

    Examples:
        With a clock under which a group of `n` steps takes `1 + n` ms: a step alone
        takes 2 ms, in a group of 8 about 1.1 ms, so the tuner grows the group to the
        largest size that still gains 3%.

        >>> from elegy.model.tuning import GroupTuner
        >>> tuner = GroupTuner()
        >>> while tuner.chosen is None:
        ...     planned = tuner.next(remaining=1000)
        ...     if planned.probe:
        ...         tuner.probed(identical=True)
        ...     elif planned.timed:
        ...         tuner.timed(planned, (1 + planned.count) / 1000)
        >>> tuner.chosen
        32
    """

    def __init__(
        self, capacity: int = MAX_GROUP, clock: Callable[[], float] = time.perf_counter, any_size: bool = True
    ):
        self.capacity = capacity
        self.clock = clock
        self.any_size = any_size  # one program runs any group size (data on the device)
        self.compiling: Any = None  # the future of the fused program the probe waits for
        self.chosen: int | None = None
        self._stage = "compile"  # compile -> single -> probe -> grow; chosen ends it
        self._size = 1  # the candidate being timed
        self._timings: list[float] = []  # of the candidate
        self._best = (1, math.inf)  # (group size, seconds per step)

    @classmethod
    def decided(cls, chosen: int, capacity: int = MAX_GROUP) -> GroupTuner:
        """A tuner whose choice is already made (a resumed run's, or an explicit integer)."""
        tuner = cls(capacity)
        tuner.chosen = chosen
        return tuner

    @property
    def candidate(self) -> int | None:
        """The group size being timed now (None when none is)."""
        if self.chosen is not None or self._stage in ("compile", "probe"):
            return None
        return self._size

    def next(self, remaining: int, epoch_steps: int | None = None) -> Planned:
        """The next execution, with `remaining` of the epoch's `epoch_steps` steps left
        (a group longer than an epoch is never a candidate)."""
        if self._stage in ("grow", "probe") and self.chosen is None:
            self._fit_epoch(epoch_steps or remaining)
        if self.chosen is not None:
            if self.chosen > remaining and not self.any_size:  # the host's last batches: one by one
                return Planned(1, looped=False)
            return Planned(min(self.chosen, remaining), looped=self.chosen > 1)
        if self._stage == "compile":
            self._stage = "single"
            return Planned(1, looped=False)
        if self._stage == "single":
            return Planned(1, looped=False, timed=True)
        if remaining < self._size:  # too few steps left for this size: run them untimed
            return Planned(remaining, looped=True) if self.any_size else Planned(1, looped=False)
        if self._stage == "probe":
            if self.compiling is not None and not self.compiling.done():  # single steps meanwhile
                return Planned(1, looped=False)
            return Planned(self._size, looped=not self.any_size, probe=True)
        return Planned(self._size, looped=True, timed=True)

    def _fit_epoch(self, epoch_steps: int) -> None:
        """No candidate longer than an epoch: on the device, the search ends at the
        best so far; from the host, the one candidate shrinks to fit (or there is none)."""
        if self._size <= epoch_steps:
            return
        if self.any_size:
            self.chosen = self._best[0]
            return
        self._size = self.capacity = 1 << (epoch_steps.bit_length() - 1)
        if self._size < 2:
            self.chosen = 1

    def probed(self, identical: bool) -> None:
        """The looped program did (or did not) compute the single step's bits."""
        if not identical or self.capacity < 2:
            self.chosen = 1
        else:
            self._stage = "grow"
            self._size = 2 if self.any_size else self._size

    def timed(self, planned: Planned, seconds: float) -> None:
        """A timed execution of `planned` took `seconds`."""
        self._timings.append(seconds)
        if len(self._timings) < TIMINGS_PER_SIZE:
            return
        fastest, size = min(self._timings), planned.count
        self._timings = []
        if self._stage == "single":
            self._best, self._stage = (1, fastest), "probe"
            if not self.any_size:  # the one candidate, and the only size a program has
                steps = max(MAX_EXECUTION_SECONDS / (2 * fastest), 1)
                self._size = self.capacity = min(
                    self.capacity, HOST_GROUP, 1 << (int(steps).bit_length() - 1)
                )
                if self._size < 2:
                    self.chosen = 1
            return
        per_step = fastest / size
        if per_step * MIN_GAIN <= self._best[1]:
            self._best = (size, per_step)
            if 2 * fastest <= MAX_EXECUTION_SECONDS and 2 * size <= self.capacity:
                self._size = 2 * size
                return
        self.chosen = self._best[0]

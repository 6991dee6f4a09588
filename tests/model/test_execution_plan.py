"""The execution plan: which batches each compiled call runs, checked against the
ungrouped batches of the same epoch (the oracle: what one step at a time would see)."""

import jax
import numpy as np
import pytest

from elegy.data import ArraySource, IterableSource
from elegy.model.execution import ExecutionPlan

X = np.arange(230, dtype=np.float32).reshape(115, 2)
Y = np.arange(115)


def unstacked(executions):
    """Every step's batch, in order, and the count of each execution."""
    steps = []
    for execution in executions:
        if execution.fused:
            steps += [
                jax.tree_util.tree_map(lambda a, i=i: np.asarray(a)[i], execution.batches)
                for i in range(execution.count)
            ]
        else:
            steps.append(execution.batches)
    return steps


def assert_same_batches(got, expected):
    assert len(got) == len(expected)
    for batch, oracle in zip(got, expected, strict=True):
        for leaf, want in zip(batch, oracle, strict=True):
            np.testing.assert_array_equal(leaf, want)


@pytest.mark.parametrize("shuffle", [False, True])
def test_an_array_epoch_stacks_runs_of_full_batches(shuffle):
    """One gather per group, no per-batch copies; the batches are the ungrouped ones."""
    source = ArraySource(X, Y, None, batch_size=16, shuffle=shuffle, seed=3)
    singles = list(source.epoch(4))
    executions = list(ExecutionPlan(3).executions(source, 4))
    assert len(singles) == 8  # the last one padded
    assert [e.count for e in executions] == [3, 3, 1, 1]  # 2 groups of 3, then 2 more
    assert_same_batches(unstacked(executions), singles)
    if not shuffle:  # rows in sequence are a view of the user's array
        assert np.shares_memory(executions[0].batches.x, X)


@pytest.mark.parametrize(
    ("skip", "counts"), [(1, [1, 1, 3, 1, 1]), (2, [1, 3, 1, 1]), (3, [3, 1, 1]), (4, [1] * 4)]
)
def test_a_resumed_epoch_keeps_the_grouping_of_the_whole_epoch(skip, counts):
    """Groups start at multiples of the group size, so a run resumed at batch `skip`
    fuses the same steps an uninterrupted one fuses (it used to run them one by one)."""
    source = ArraySource(X, Y, None, batch_size=16, shuffle=True, seed=3)
    executions = list(ExecutionPlan(3).executions(source, 0, skip=skip))
    assert [e.count for e in executions] == counts  # the group of batches 3, 4, 5 whenever it is whole
    assert_same_batches(unstacked(executions), list(source.epoch(0))[skip:])


def test_windows_over_passes_group_across_the_end_of_a_pass():
    """With `steps`, an epoch's window may cross from one pass to the next: a group that
    spans both joins rows that do not follow each other, and a partial batch in an
    aligned group is padded and stacked."""
    x, y = X[:40], Y[:40]  # 3 batches of 16 per pass, the third partial
    for shuffle in (False, True):
        source = ArraySource(x, y, None, batch_size=16, shuffle=shuffle, seed=1, steps=4)
        for epoch in range(3):
            executions = list(ExecutionPlan(2).executions(source, epoch))
            assert [e.count for e in executions] == [2, 2]
            assert_same_batches(unstacked(executions), list(source.epoch(epoch)))


def test_an_iterable_is_stacked_from_aligned_positions():
    batches = [(X[i : i + 10], Y[i : i + 10]) for i in range(0, 70, 10)]  # 7 batches
    source = IterableSource(batches)
    executions = list(ExecutionPlan(3).executions(source, 0, skip=1))
    assert [e.count for e in executions] == [1, 1, 3, 1]
    assert_same_batches(unstacked(executions), list(source.epoch(0))[1:])


def test_one_step_per_call_never_stacks():
    source = ArraySource(X, Y, None, batch_size=16, shuffle=True, seed=0)
    executions = list(ExecutionPlan(1).executions(source, 0))
    assert {e.count for e in executions} == {1}
    assert_same_batches(unstacked(executions), list(source.epoch(0)))

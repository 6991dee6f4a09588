"""Unit tests for elegy.data: make_source, ArraySource, IterableSource, padding, splits.

Inputs are built so that every row carries its own index (x[i] == i, y[i] == 10 * i), which
makes the oracle for "which rows did a batch hold" a plain numpy computation.
"""

import math
from collections import namedtuple
from fractions import Fraction

import numpy as np
import pytest

from elegy.data import (
    ArraySource,
    Batch,
    IterableSource,
    make_source,
    padded_batch,
    split_validation,
    unpack_batch,
)


def indexed(n):
    """x (n, 2) with x[i] == [i, i]; y == 10 * i; sample_weight == i / 100."""
    ids = np.arange(n)
    return (
        np.stack([ids, ids], axis=1).astype(np.float32),
        (10 * ids).astype(np.int64),
        (ids / 100).astype(np.float32),
    )


def real_ids(batches):
    """The row ids of the real (unmasked) rows of each batch, in order."""
    return [b.x[b.mask, 0].astype(int) for b in batches]


def source_order(source, epoch):
    return np.concatenate(real_ids(source.epoch(epoch)))


# --- ArraySource via make_source -------------------------------------------------------


def test_make_source_with_arrays_returns_array_source():
    x, y, _ = indexed(5)
    assert isinstance(make_source(x, y, batch_size=2), ArraySource)


def test_nested_x_batches_keep_the_structure_and_rows_aligned():
    n = 5
    ids = np.arange(n)
    x = {
        "image": np.stack([ids] * 3, axis=1).astype(np.float32),
        "extra": (ids.astype(np.int32), (2 * ids)[:, None].astype(np.float32)),
    }
    source = make_source(x, ids * 10, batch_size=2, shuffle=True, seed=3)
    for batch in source.epoch(0):
        assert set(batch.x) == {"image", "extra"}
        assert isinstance(batch.x["extra"], tuple) and len(batch.x["extra"]) == 2
        rows = batch.x["extra"][0]
        np.testing.assert_array_equal(batch.x["image"], np.stack([rows] * 3, axis=1))
        np.testing.assert_array_equal(batch.x["extra"][1][:, 0], 2 * rows)
        np.testing.assert_array_equal(batch.y, 10 * rows)


@pytest.mark.parametrize("shuffle", [False, True], ids=["ordered", "shuffled"])
@pytest.mark.parametrize("n, batch_size", [(10, 3), (9, 3), (4, 8), (1, 1)])
def test_every_sample_seen_exactly_once_per_epoch(n, batch_size, shuffle):
    x, y, w = indexed(n)
    source = make_source(x, y, w, batch_size=batch_size, shuffle=shuffle, seed=1)
    for epoch in range(2):
        seen = source_order(source, epoch)
        np.testing.assert_array_equal(np.sort(seen), np.arange(n))


@pytest.mark.parametrize("n, batch_size, rows, count", [(10, 3, 3, 4), (9, 3, 3, 3), (7, 7, 7, 1)])
def test_batches_have_fixed_size_and_count(n, batch_size, rows, count):
    x, y, w = indexed(n)
    source = make_source(x, y, w, batch_size=batch_size)
    batches = list(source.epoch(0))
    assert len(batches) == count == source.steps_per_epoch
    for b in batches:
        assert b.x.shape == (rows, 2) and b.y.shape == (rows,)
        assert b.sample_weight.shape == (rows,) and b.mask.shape == (rows,)


def test_batch_size_larger_than_the_data_gives_one_unpadded_batch():
    x, y, w = indexed(4)
    source = make_source(x, y, w, batch_size=8)
    batches = list(source.epoch(0))
    assert source.steps_per_epoch == 1 and len(batches) == 1
    np.testing.assert_array_equal(batches[0].x, x)
    np.testing.assert_array_equal(batches[0].mask, [True] * 4)


def test_unshuffled_batches_follow_row_order():
    x, y, _ = indexed(7)
    seen = real_ids(make_source(x, y, batch_size=3).epoch(0))
    assert [s.tolist() for s in seen] == [[0, 1, 2], [3, 4, 5], [6]]


def test_partial_last_batch_is_padded_by_repeating_its_real_rows():
    x, y, w = indexed(7)
    last = list(make_source(x, y, w, batch_size=3).epoch(0))[-1]
    np.testing.assert_array_equal(last.mask, [True, False, False])
    assert last.num_real == 1
    np.testing.assert_array_equal(last.x, [[6, 6]] * 3)
    np.testing.assert_array_equal(last.y, [60] * 3)
    np.testing.assert_allclose(last.sample_weight, [0.06] * 3)


def test_padded_rows_are_copies_of_real_rows_and_stay_aligned_when_shuffled():
    x, y, w = indexed(11)
    for batch in make_source(x, y, w, batch_size=4, shuffle=True, seed=5).epoch(2):
        ids = batch.x[:, 0].astype(int)
        real = set(ids[batch.mask].tolist())
        assert set(ids[~batch.mask].tolist()) <= real
        np.testing.assert_array_equal(batch.y, 10 * ids)
        np.testing.assert_allclose(batch.sample_weight, ids / 100, rtol=1e-6)
        assert batch.mask[: batch.num_real].all() and not batch.mask[batch.num_real :].any()


def test_shuffle_order_is_reproducible_for_same_seed_and_epoch():
    x, y, _ = indexed(20)
    a = make_source(x, y, batch_size=6, shuffle=True, seed=7)
    b = make_source(x, y, batch_size=6, shuffle=True, seed=7)
    np.testing.assert_array_equal(source_order(a, 3), source_order(b, 3))
    np.testing.assert_array_equal(source_order(a, 3), source_order(a, 3))


def test_shuffle_order_differs_across_epochs():
    x, y, _ = indexed(20)
    source = make_source(x, y, batch_size=6, shuffle=True, seed=7)
    orders = {tuple(source_order(source, epoch)) for epoch in range(4)}
    assert len(orders) == 4


def test_shuffle_order_differs_across_seeds():
    x, y, _ = indexed(20)
    orders = {
        tuple(source_order(make_source(x, y, batch_size=6, shuffle=True, seed=seed), 0)) for seed in range(4)
    }
    assert len(orders) == 4


def test_shuffle_actually_permutes():
    x, y, _ = indexed(20)
    order = source_order(make_source(x, y, batch_size=6, shuffle=True, seed=0), 0)
    assert not np.array_equal(order, np.arange(20))


@pytest.mark.parametrize("steps, expected_batches", [(1, 1), (2, 2), (4, 4), (10, 10)])
def test_steps_limits_batches_per_epoch(steps, expected_batches):
    x, y, _ = indexed(10)  # ceil(10 / 3) == 4 batches in a full epoch
    source = make_source(x, y, batch_size=3, steps=steps)
    batches = list(source.epoch(0))
    assert source.steps_per_epoch == expected_batches == len(batches)
    seen = np.concatenate(real_ids(batches))
    one_pass = [np.arange(start, min(start + 3, 10)) for start in range(0, 10, 3)]
    expected = np.concatenate([one_pass[k % len(one_pass)] for k in range(expected_batches)])
    np.testing.assert_array_equal(seen, expected)  # past the data's end it starts a new pass


def test_steps_continue_where_the_previous_epoch_stopped():
    x, y, _ = indexed(10)
    source = make_source(x, y, batch_size=3, steps=3, shuffle=True, seed=4)
    first_two_epochs = np.concatenate(real_ids(list(source.epoch(0)) + list(source.epoch(1))))
    # 6 batches = one whole pass (4 batches, every row once) + 2 batches of the next pass
    assert sorted(first_two_epochs[:10]) == list(range(10))
    full = make_source(x, y, batch_size=3, shuffle=True, seed=4)
    np.testing.assert_array_equal(first_two_epochs[:10], np.concatenate(real_ids(list(full.epoch(0)))))
    np.testing.assert_array_equal(first_two_epochs[10:], np.concatenate(real_ids(list(full.epoch(1))))[:6])


# --- argument errors -------------------------------------------------------------------


def test_length_mismatch_error_names_both_lengths():
    with pytest.raises(ValueError) as info:
        make_source(np.zeros((7, 2)), np.zeros(6), batch_size=2)
    message = str(info.value)
    assert "x has 7" in message and "y has 6" in message


def test_nested_length_mismatch_error_names_the_leaves():
    with pytest.raises(ValueError) as info:
        make_source({"a": np.zeros(5), "b": np.zeros(3)}, batch_size=2)
    message = str(info.value)
    assert "x['a'] has 5" in message and "x['b'] has 3" in message


def test_sample_weight_length_mismatch_error_names_it():
    with pytest.raises(ValueError, match="sample_weight has 4"):
        make_source(np.zeros(5), np.zeros(5), np.zeros(4), batch_size=2)


@pytest.mark.parametrize("batch_size", [0, -3, 2.5, True, None, "8"])
def test_invalid_batch_size_raises_naming_batch_size(batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        make_source(np.zeros(4), batch_size=batch_size)


@pytest.mark.parametrize("steps", [0, -1, 1.5])
def test_invalid_steps_raises_naming_steps(steps):
    with pytest.raises(ValueError, match="steps"):
        make_source(np.zeros(4), batch_size=2, steps=steps)


def test_string_x_raises_type_error_naming_x():
    with pytest.raises(TypeError, match=r"^x must be an array"):
        make_source("hello", batch_size=2)


def test_string_leaf_in_nested_x_names_its_path():
    with pytest.raises(TypeError, match=r"x\['text'\]"):
        make_source({"text": "hello", "ids": np.zeros(3)}, batch_size=2)


def test_string_array_x_raises_type_error_naming_dtype():
    with pytest.raises(TypeError, match="x has dtype <U"):
        make_source(np.array(["a", "b"]), batch_size=2)


def test_missing_x_raises():
    with pytest.raises(ValueError, match="x is required"):
        make_source(None, batch_size=2)


# --- IterableSource ----------------------------------------------------------------------


def list_of_batches(sizes, with_weight=False):
    batches, start = [], 0
    for size in sizes:
        x, y, w = (a[start : start + size] for a in indexed(sum(sizes)))
        batches.append((x, y, w) if with_weight else (x, y))
        start += size
    return batches


def test_list_of_tuples_becomes_iterable_source_with_known_length():
    source = make_source(list_of_batches([2, 2, 2]), batch_size=32)
    assert isinstance(source, IterableSource)
    assert source.steps_per_epoch == 3


def test_list_of_tuples_is_reiterated_every_epoch():
    data = list_of_batches([3, 3, 2])
    source = make_source(data, batch_size=32)
    for epoch in range(3):
        batches = list(source.epoch(epoch))
        assert len(batches) == 3
        np.testing.assert_array_equal(np.concatenate(real_ids(batches)), np.arange(8))
        for batch, (_x, y) in zip(batches, data, strict=True):
            np.testing.assert_array_equal(batch.y[batch.mask], y)


def test_list_of_lists_like_a_data_loader_is_a_batch_iterable():
    data = [list(pair) for pair in list_of_batches([2, 1])]
    batches = list(make_source(data, batch_size=32).epoch(0))
    np.testing.assert_array_equal(batches[0].y, [0, 10])
    np.testing.assert_array_equal(batches[1].mask, [True, False])


def test_reiterable_loader_object_restarts_each_epoch_and_reports_its_length():
    class Loader:
        def __init__(self, batches):
            self.batches = batches

        def __len__(self):
            return len(self.batches)

        def __iter__(self):
            return iter(self.batches)

    source = make_source(Loader(list_of_batches([2, 2, 1])), batch_size=32)
    assert source.steps_per_epoch == 3
    for epoch in range(2):
        np.testing.assert_array_equal(source_order(source, epoch), np.arange(5))


def test_steps_limit_on_list_continues_and_starts_over_when_it_runs_out():
    source = make_source(list_of_batches([2, 2, 2]), batch_size=32, steps=2)
    assert source.steps_per_epoch == 2
    # rows 0-5 in three batches; epochs of two batches walk through them, then start over
    expected = [[0, 1, 2, 3], [4, 5, 0, 1], [2, 3, 4, 5]]
    for epoch, rows in enumerate(expected):
        np.testing.assert_array_equal(source_order(source, epoch), rows)


def test_iterable_partial_last_batch_padded_to_first_batch_size_with_mask():
    batches = list(make_source(list_of_batches([4, 4, 2]), batch_size=32).epoch(0))
    assert [b.x.shape[0] for b in batches] == [4, 4, 4]
    last = batches[-1]
    np.testing.assert_array_equal(last.mask, [True, True, False, False])
    np.testing.assert_array_equal(last.x[:, 0], [8, 9, 8, 9])
    np.testing.assert_array_equal(last.y, [80, 90, 80, 90])


def test_iterable_of_triples_carries_sample_weight():
    batches = list(make_source(list_of_batches([2, 1], with_weight=True), batch_size=32).epoch(0))
    np.testing.assert_allclose(batches[0].sample_weight, [0.0, 0.01])
    np.testing.assert_allclose(batches[1].sample_weight, [0.02, 0.02])


def test_generator_of_x_only_batches_has_no_targets():
    source = make_source((np.full((2, 3), i, np.float32) for i in range(2)), batch_size=32)
    batches = list(source.epoch(0))
    assert len(batches) == 2
    assert all(b.y is None and b.sample_weight is None for b in batches)
    np.testing.assert_array_equal(batches[1].x, np.ones((2, 3)))


def test_generator_exhausted_at_later_epoch_raises_clear_error():
    source = make_source(iter(list_of_batches([2, 2])), batch_size=32, steps_argument="steps_per_epoch")
    assert len(list(source.epoch(0))) == 2
    with pytest.raises(ValueError) as info:
        list(source.epoch(1))
    message = str(info.value)
    assert "no batches" in message and "steps_per_epoch" in message


def test_generator_with_steps_continues_where_previous_epoch_stopped():
    source = make_source((b for b in list_of_batches([1, 1, 1, 1])), batch_size=32, steps=2)
    assert source.steps_per_epoch == 2
    first = np.concatenate(real_ids(source.epoch(0)))
    second = np.concatenate(real_ids(source.epoch(1)))
    np.testing.assert_array_equal(first, [0, 1])
    np.testing.assert_array_equal(second, [2, 3])
    with pytest.raises(ValueError, match="no batches"):
        list(source.epoch(2))


def test_iterable_with_separate_y_raises():
    with pytest.raises(ValueError, match="y and sample_weight must be None"):
        make_source(iter(list_of_batches([2])), np.zeros(2), batch_size=2)


def test_iterable_batch_with_length_mismatch_raises_naming_lengths():
    source = make_source([(np.zeros((3, 2)), np.zeros(2))], batch_size=32)
    with pytest.raises(ValueError) as info:
        list(source.epoch(0))
    assert "x has 3" in str(info.value) and "y has 2" in str(info.value)


# --- padded_batch ----------------------------------------------------------------------


def test_padded_batch_repeats_rows_cyclically_and_masks_them():
    x, y, _ = indexed(3)
    batch = padded_batch(x, y, None, 5)
    assert isinstance(batch, Batch)
    np.testing.assert_array_equal(batch.x[:, 0], [0, 1, 2, 0, 1])
    np.testing.assert_array_equal(batch.y, [0, 10, 20, 0, 10])
    np.testing.assert_array_equal(batch.mask, [True, True, True, False, False])
    assert batch.sample_weight is None and batch.num_real == 3


def test_padded_batch_of_full_size_is_all_real():
    x, y, w = indexed(4)
    batch = padded_batch(x, y, w, 4)
    np.testing.assert_array_equal(batch.x, x)
    np.testing.assert_array_equal(batch.mask, [True] * 4)


# --- split_validation --------------------------------------------------------------------


def exact_train_rows(n, fraction):
    """floor(n * (1 - fraction)) in exact decimal arithmetic."""
    return math.floor(n * (1 - Fraction(str(fraction))))


@pytest.mark.parametrize("n, fraction", [(10, 0.2), (10, 0.25), (7, 0.3), (100, 0.1), (5, 0.5)])
def test_split_validation_takes_the_last_fraction_of_rows(n, fraction):
    x, y, w = indexed(n)
    (tx, ty, tw), (vx, vy, vw) = split_validation(x, y, w, fraction)
    cut = exact_train_rows(n, fraction)
    np.testing.assert_array_equal(tx, x[:cut])
    np.testing.assert_array_equal(ty, y[:cut])
    np.testing.assert_array_equal(tw, w[:cut])
    np.testing.assert_array_equal(vx, x[cut:])
    np.testing.assert_array_equal(vy, y[cut:])
    np.testing.assert_array_equal(vw, w[cut:])


@pytest.mark.parametrize("n, fraction", [(10, 0.9), (10, 0.8), (5, 0.8), (90, 0.3)])
def test_split_validation_fraction_not_exact_in_binary_keeps_exact_row_count(n, fraction):
    # e.g. 10 * (1 - 0.9) is exactly 1 training row, but 10 * (1.0 - 0.9) == 0.9999999999999998
    x, y, _ = indexed(n)
    (tx, ty, _), (vx, vy, _) = split_validation(x, y, None, fraction)
    cut = exact_train_rows(n, fraction)
    np.testing.assert_array_equal(tx, x[:cut])
    np.testing.assert_array_equal(vx, x[cut:])


def test_split_validation_splits_nested_x_and_keeps_none():
    n = 10
    x = {"a": np.arange(n), "b": (np.arange(n) * 2,)}
    (tx, ty, tw), (vx, vy, vw) = split_validation(x, None, None, 0.3)
    np.testing.assert_array_equal(tx["a"], np.arange(7))
    np.testing.assert_array_equal(vx["b"][0], 2 * np.arange(7, 10))
    assert ty is None and tw is None and vy is None and vw is None


@pytest.mark.parametrize("fraction", [1.0, -0.1, 1.5, "0.2", None])
def test_split_validation_rejects_fractions_outside_unit_interval(fraction):
    with pytest.raises(ValueError, match="validation_split"):
        split_validation(np.zeros(10), np.zeros(10), None, fraction)


def test_split_validation_that_leaves_no_training_rows_raises():
    with pytest.raises(ValueError, match="0 for training"):
        split_validation(np.zeros(1), np.zeros(1), None, 0.5)


def test_split_validation_of_iterable_raises():
    with pytest.raises(ValueError, match="validation_data"):
        split_validation(iter(list_of_batches([2])), None, None, 0.2)


# --- unpack_batch -----------------------------------------------------------------------

X, Y, W = np.zeros((2, 1)), np.ones(2), np.full(2, 0.5)
Pair = namedtuple("Pair", ["left", "right"])
NAMED = Pair(X, Y)
FOUR_LIST = [X, X, X, X]
DICT = {"a": X}


@pytest.mark.parametrize(
    "batch, expected",
    [
        (X, (X, None, None)),
        ((X,), (X, None, None)),
        ((X, Y), (X, Y, None)),
        ((X, Y, W), (X, Y, W)),
        ([X], (X, None, None)),
        ([X, Y], (X, Y, None)),
        ([X, Y, W], (X, Y, W)),
        (DICT, (DICT, None, None)),
        (NAMED, (NAMED, None, None)),
        (FOUR_LIST, (FOUR_LIST, None, None)),
    ],
    ids=["x", "tuple1", "tuple2", "tuple3", "list1", "list2", "list3", "dict", "namedtuple", "list4"],
)
def test_unpack_batch(batch, expected):
    result = unpack_batch(batch)
    assert len(result) == 3
    for got, want in zip(result, expected, strict=True):
        assert got is want


@pytest.mark.parametrize("batch", [(X, Y, W, W), ()], ids=["tuple4", "empty-tuple"])
def test_unpack_batch_rejects_tuples_of_wrong_length(batch):
    with pytest.raises(ValueError, match=f"length {len(batch)}"):
        unpack_batch(batch)

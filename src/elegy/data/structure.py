"""Checks on user data structures: array leaves only, one length across the structure.

Errors name the argument (`x`, `y`, `sample_weight`, ...) and what was received.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np


def as_array_tree(value: Any, argument: str) -> Any:
    """Every leaf of a nested dict/tuple/list as a numpy array with a batch axis."""
    if value is None:
        return None
    paths_and_leaves = jax.tree_util.tree_leaves_with_path(value)
    if not paths_and_leaves:
        raise ValueError(f"{argument} is empty: it contains no arrays")
    return jax.tree_util.tree_map_with_path(
        lambda path, leaf: _as_array(leaf, argument + jax.tree_util.keystr(path)), value
    )


def _as_array(leaf: Any, where: str) -> np.ndarray:
    if isinstance(leaf, (str, bytes)):
        raise TypeError(f"{where} must be an array (numpy or jax), got a {type(leaf).__name__}: {leaf!r:.40}")
    if not hasattr(leaf, "shape") or not hasattr(leaf, "dtype"):
        raise TypeError(
            f"{where} must be an array (numpy or jax) or a nested dict/tuple/list of arrays, "
            f"got {type(leaf).__name__}"
        )
    array = np.asarray(leaf)
    if array.ndim == 0:
        raise ValueError(f"{where} is a scalar; expected an array whose first axis indexes samples")
    if array.dtype.kind in "OUS" or array.dtype.fields is not None:  # bfloat16 is kind "V"
        raise TypeError(f"{where} has dtype {array.dtype}; expected a numeric or boolean array")
    return array


def batch_rows(tree: Any) -> int:
    """The leading (batch) dimension of the first array of a pytree (numpy, jax or a
    tracer)."""
    return int(np.shape(jax.tree_util.tree_leaves(tree)[0])[0])


def lengths(tree: Any, argument: str) -> dict[str, int]:
    """The first-axis length of each leaf, keyed by its path (`x['image']`)."""
    return {
        argument + jax.tree_util.keystr(path): int(np.shape(leaf)[0])
        for path, leaf in jax.tree_util.tree_leaves_with_path(tree)
    }


def num_samples(**named_trees: Any) -> int:
    """The common number of samples of every leaf of every tree; an error lists mismatches."""
    found: dict[str, int] = {}
    for argument, tree in named_trees.items():
        if tree is not None:
            found.update(lengths(tree, argument))
    distinct = sorted(set(found.values()))
    if len(distinct) > 1:
        listing = ", ".join(f"{k} has {v}" for k, v in found.items())
        raise ValueError(f"all inputs must have the same number of samples (first axis): {listing}")
    if not distinct or distinct[0] == 0:
        raise ValueError(f"no samples: {', '.join(named_trees)} hold 0 rows")
    return distinct[0]


def checked_triple(
    x: Any, y: Any, sample_weight: Any, names: tuple[str, str, str] = ("x", "y", "sample_weight")
) -> tuple[Any, Any, Any, int]:
    """(x, y, sample_weight) as array trees, and their common number of rows.

    `names` are the arguments errors name (`validation_data[0]`, ...).
    """
    trees = tuple(as_array_tree(tree, name) for tree, name in zip((x, y, sample_weight), names, strict=True))
    rows = num_samples(**dict(zip(names, trees, strict=True)))
    return (*trees, rows)


def unpack_batch(batch: Any) -> tuple[Any, Any | None, Any | None]:
    """`x`, `(x,)`, `(x, y)`, `(x, y, sample_weight)` -> (x, y, sample_weight).

    A list of length 1 to 3 (what a torch DataLoader yields) means the same tuple.

    Examples:
        >>> from elegy.data import unpack_batch
        >>> unpack_batch(("x", "y")), unpack_batch(["x", "y", "w"]), unpack_batch("x")
        (('x', 'y', None), ('x', 'y', 'w'), ('x', None, None))
    """
    if isinstance(batch, (tuple, list)) and not _is_namedtuple(batch):
        if isinstance(batch, list) and not 1 <= len(batch) <= 3:
            return batch, None, None
        if not 1 <= len(batch) <= 3:
            raise ValueError(
                "a batch must be x, (x,), (x, y) or (x, y, sample_weight); "
                f"got a tuple of length {len(batch)}"
            )
        padded: list[Any] = list(batch) + [None] * (3 - len(batch))
        return padded[0], padded[1], padded[2]
    return batch, None, None


def _is_namedtuple(value: Any) -> bool:
    return isinstance(value, tuple) and hasattr(value, "_fields")

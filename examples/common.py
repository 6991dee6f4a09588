"""What the examples share: the shuffled digits, the train/validation split, the `--smoke`
and `--epochs` options, and the machine-readable `result:` line they all end with.

An example runs as `python examples/<name>.py`, which puts this folder on `sys.path`, so it
imports these with `from common import ...`. Only numpy, argparse and scikit-learn here:
what an example shows about Elegy stays in the example.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.datasets import load_digits


def load_shuffled_digits(seed: int = 0, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1797 8x8 digits as float32 rows of 64 pixels in [0, 1] and int32
    labels, in a seeded random order; only the first `limit` rows of that order if given.

    The data ship with scikit-learn, so nothing is downloaded. Shuffling matters: the
    bundled rows come grouped by the people who wrote the digits, and validation rows
    taken from the end (as `split` and `validation_split` do) would otherwise be written
    by other people than the training rows.
    """
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)  # the raw pixels are integers 0..16
    y = digits.target.astype(np.int32)
    order = np.random.default_rng(seed).permutation(len(x))[:limit]
    return x[order], y[order]


def split(
    x: np.ndarray, y: np.ndarray, validation_fraction: float
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(x_train, y_train), (x_val, y_val): the validation rows are the last ones."""
    cut = len(x) - int(round(len(x) * validation_fraction))
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


class ExampleParser(argparse.ArgumentParser):
    """An `ArgumentParser` that starts with the options every example has: `--smoke`, a run
    of a few seconds (what the tests run), `--epochs`, whose default depends on it, and
    `--seed` (default 0), from which the example's data and model derive.

    After parsing, `args.epochs` is always set: the given value, else `smoke_epochs` with
    `--smoke` and `full_epochs` without.
    """

    def __init__(self, *, full_epochs: int, smoke_epochs: int, smoke_help: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.full_epochs, self.smoke_epochs = full_epochs, smoke_epochs
        self.add_argument("--smoke", action="store_true", help=smoke_help)
        self.add_argument(
            "--epochs", type=int, default=None, help=f"default: {full_epochs} (smoke: {smoke_epochs})"
        )
        self.add_argument("--seed", type=int, default=0)

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        parsed = super().parse_args(args, namespace)
        if parsed.epochs is None:
            parsed.epochs = self.smoke_epochs if parsed.smoke else self.full_epochs
        return parsed


def result_line(values: Mapping[str, float], digits: int = 6) -> str:
    """`result: name=value ...`, one line that scripts and tests can parse: whole numbers
    as they are, other numbers to `digits` significant digits."""
    return "result: " + " ".join(
        f"{name}={value}" if isinstance(value, int) else f"{name}={value:.{digits}g}"
        for name, value in values.items()
    )

"""Checks of the arguments users pass: each error names the argument and what it expects."""

from __future__ import annotations

from typing import Any, Literal, overload

import numpy as np


@overload
def check_int(value: Any, argument: str, minimum: int = 1, allow_none: Literal[False] = False) -> int: ...
@overload
def check_int(value: Any, argument: str, minimum: int = 1, *, allow_none: bool) -> int | None: ...


def check_int(value: Any, argument: str, minimum: int = 1, allow_none: bool = False) -> int | None:
    """`value` as a Python int if it is an integer (not a bool) of at least `minimum`.

    Examples:
        >>> check_int(np.int64(3), "epochs")
        3
        >>> check_int(0, "epochs")
        Traceback (most recent call last):
        ...
        ValueError: epochs must be an integer >= 1, got 0
        >>> check_int(None, "steps", allow_none=True) is None
        True
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        expected = f"an integer >= {minimum}" + (" or None" if allow_none else "")
        raise ValueError(f"{argument} must be {expected}, got {value!r}")
    return int(value)


def check_frequency(value: Any, argument: str) -> str | int:
    """`"epoch"`, or a number of batches (an integer >= 1): how often a callback acts."""
    if value == "epoch":
        return "epoch"
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{argument} must be 'epoch' or an integer >= 1, got {value!r}")
    return int(value)


def check_verbose(verbose: Any) -> int:
    """Keras's `verbose`: 0 (silent), 1 (progress bar), 2 (a line per epoch) or "auto" (1)."""
    if verbose == "auto":
        return 1
    if verbose not in (0, 1, 2) or isinstance(verbose, bool):
        raise ValueError(f"verbose must be 0, 1, 2 or 'auto', got {verbose!r}")
    return int(verbose)


def check_fraction(value: Any, argument: str) -> float:
    """A real number strictly between 0 and 1 (a decay, a momentum), as a float.

    Examples:
        >>> check_fraction(0.999, "ema_decay")
        0.999
        >>> check_fraction(1, "ema_decay")
        Traceback (most recent call last):
        ...
        ValueError: ema_decay must be a number strictly between 0 and 1, got 1
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not 0 < value < 1
    ):
        raise ValueError(f"{argument} must be a number strictly between 0 and 1, got {value!r}")
    return float(value)

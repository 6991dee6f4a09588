"""Log names, decided in one place.

`loss` is the total; each loss term is its snake_case name with `_loss` added once;
metrics keep their own name; validation logs get `val_`; two terms that would share a name
get `_1`, `_2`, ... suffixes instead of silently overwriting each other.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from typing import Any

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake_case(name: str) -> str:
    """`SparseCategoricalCrossentropy` -> `sparse_categorical_crossentropy`."""
    name = _CAMEL_BOUNDARY.sub("_", name.strip()).lower()
    return re.sub(r"[^0-9a-z]+", "_", name).strip("_") or "unnamed"


def callable_name(fn: Callable[..., Any]) -> str:
    """A readable snake_case name for a function, a `functools.partial` or a callable object
    (`<lambda>` becomes `lambda`)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    return snake_case(getattr(fn, "__name__", None) or type(fn).__name__)


def loss_log_name(name: str) -> str:
    """Snake case with `_loss` added once: `mse` -> `mse_loss`, `kl_loss` stays."""
    name = snake_case(name)
    return name if name == "loss" or name.endswith("_loss") else f"{name}_loss"


def unique_names(names: Iterable[str], taken: Iterable[str] = ()) -> list[str]:
    """Suffix repeats with `_1`, `_2`, ... so that no two names (nor a taken one) collide."""
    seen = set(taken)
    result = []
    for name in names:
        candidate, n = name, 0
        while candidate in seen:
            n += 1
            candidate = f"{name}_{n}"
        seen.add(candidate)
        result.append(candidate)
    return result


# Validation logs are the training logs' names after this prefix (Keras's own).
VALIDATION_PREFIX = "val_"


def is_validation_name(name: str) -> bool:
    """Whether a log name is that of a validation log: `val_loss` is, `loss` is not."""
    return name.startswith(VALIDATION_PREFIX)

"""Resolving what a user passes as a loss or metric: an object, a name, or a function."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def resolve(
    identifier: Any,
    *,
    argument: str,
    base: type[T],
    by_name: Mapping[str, Callable[..., T]],
    wrap: Callable[[Callable[..., Any]], T],
) -> T:
    """`identifier` itself if it is a `base`, the class registered under a name
    (instantiated with that name, so logs use the user's spelling), or `wrap(function)`.
    Anything else is an error naming `argument` and, for unknown names, the known ones."""
    if isinstance(identifier, base):
        return identifier
    if isinstance(identifier, str):
        if identifier not in by_name:
            raise ValueError(
                f"{argument}: unknown {base.__name__.lower()} name {identifier!r}; "
                f"known names: {sorted(by_name)}"
            )
        return by_name[identifier](name=identifier)
    if callable(identifier):
        return wrap(identifier)
    raise TypeError(
        f"{argument}: expected an elegy.{base.__module__.split('.')[1]}.{base.__name__}, a name "
        f"or a function (y_true, y_pred), got {type(identifier).__name__}"
    )

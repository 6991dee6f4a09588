"""Calling a user's step with only the arguments it declares.

A step override names what it uses (`def test_step(self, x, y_true, states)`) and the
framework passes exactly those. Signatures are inspected once per function and cached;
the call itself happens while tracing, so compiled steps pay nothing for it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any


@functools.cache
def _declared(fn: Callable[..., Any]) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    """(all named parameters, the required ones, whether it takes **kwargs)."""
    params = inspect.signature(fn).parameters.values()
    names, required, var_keyword = [], [], False
    for p in params:
        if p.kind is p.VAR_KEYWORD:
            var_keyword = True
        elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            names.append(p.name)
            if p.default is p.empty:
                required.append(p.name)
    return tuple(names), tuple(required), var_keyword


def _signature_of(fn: Callable[..., Any]) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    """`_declared` for any callable; unhashable ones (dataclass instances) skip the cache."""
    try:
        return _declared(fn)
    except TypeError:
        return _declared.__wrapped__(fn)


def declared_parameters(fn: Callable[..., Any]) -> tuple[str, ...]:
    """Names of the parameters `fn` accepts by keyword (`self` excluded for methods)."""
    names = _signature_of(_unbound(fn))[0]
    return names[1:] if inspect.ismethod(fn) else names


def inject(fn: Callable[..., Any], available: Mapping[str, Any], *, what: str | None = None) -> Any:
    """Call `fn` with the entries of `available` whose names it declares.

    A function with `**kwargs` receives everything. A required parameter that is not
    available is an error that names it and lists what could have been passed.
    """
    target = _unbound(fn)
    names, required, var_keyword = _signature_of(target)
    if inspect.ismethod(fn) and names:
        names, required = names[1:], tuple(n for n in required if n != names[0])
    missing = [n for n in required if n not in available]
    if missing:
        label = what or getattr(fn, "__qualname__", repr(fn))
        raise TypeError(
            f"{label} declares parameter(s) {missing} that the framework cannot provide; "
            f"it can provide: {sorted(available)}"
        )
    if var_keyword:
        return fn(**available)
    return fn(**{n: available[n] for n in names if n in available})


def call_with_context(
    fn: Callable[..., Any], y_true: Any, y_pred: Any, context: Mapping[str, Any], what: str
) -> Any:
    """Call a loss or metric function the way Keras users and Elegy users both expect.

    A function that names any of `y_true`, `y_pred` or a context entry (`x`, `states`, ...)
    receives exactly what it declares; any other function, such as `lambda t, p: ...`,
    is called positionally as `fn(y_true, y_pred)`.
    """
    names = declared_parameters(fn)
    positional = not {"y_true", "y_pred", *context} & set(names)
    if (positional or "y_true" in names) and y_true is None:
        raise ValueError(
            f"{what} needs targets but y is None: pass y to fit/evaluate (or yield (x, y) batches)"
        )
    if positional:
        return fn(y_true, y_pred)
    return inject(fn, {"y_true": y_true, "y_pred": y_pred, **context}, what=what)


def _unbound(fn: Callable[..., Any]) -> Callable[..., Any]:
    return fn.__func__ if inspect.ismethod(fn) else fn

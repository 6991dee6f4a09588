"""Turning what a Haiku user already has into pure `init`/`apply` functions.

Accepted forms, all normalised to an `hk.TransformedWithState`:

* a forward function `def forward(x[, training]): ...` that builds modules inside;
* an `hk.Module` subclass, or a callable with no required positional parameter that
  returns a module (`lambda: MyNet(10)`, `functools.partial(MyNet, n=10)`);
* an `hk.Transformed` or `hk.TransformedWithState`, with or without `hk.without_apply_rng`
  (Haiku keeps the forward function's signature, so the `training` flag still reaches it).

A forward function (or a module's `__call__`) that declares `training` or `is_training`
receives True in fit/train steps and False in evaluate/predict.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import haiku as hk

from elegy.hooks import collecting

TRAINING_FLAG_NAMES = ("training", "is_training")


@dataclasses.dataclass(frozen=True)
class PureModule:
    """A transformed module, the keyword (if any) that carries the training flag, and
    whether its `apply` takes an rng (`hk.without_apply_rng` removes it).

    `forward` is the function that was transformed when Elegy transformed it (None for a
    user's own `hk.Transformed`): tools that re-transform it, like the model summary,
    can then fix the training flag as a Python bool.
    """

    transformed: hk.TransformedWithState
    training_flag: str | None
    apply_takes_rng: bool = True
    forward: Callable[..., Any] | None = None

    def init(self, key: Any, x: Any, training: bool) -> tuple[hk.MutableParams, hk.MutableState]:
        # The forward pass that init runs is not a step: auxiliary values it reports are
        # dropped here, and the following apply reports them once.
        with collecting():
            return self.transformed.init(key, x, **self.flag(training))

    def apply(self, params: Any, state: Any, key: Any, x: Any, training: bool) -> tuple[Any, hk.MutableState]:
        rng = (key,) if self.apply_takes_rng else ()
        return self.transformed.apply(params, state, *rng, x, **self.flag(training))

    def flag(self, training: bool) -> dict[str, bool]:
        """The keyword arguments that pass the training flag to the network, if it takes one."""
        return {self.training_flag: training} if self.training_flag else {}


def to_pure_module(module: Any) -> PureModule:
    """Normalise any accepted module form; raise a TypeError naming `module` otherwise."""
    if isinstance(module, (hk.Transformed, hk.TransformedWithState)):
        return _from_transformed(module)
    if isinstance(module, hk.Module):
        raise TypeError(
            "module: got an hk.Module instance, which Haiku cannot create outside a "
            "transform; pass its class or a factory instead, e.g. "
            f"`module=lambda: {type(module).__name__}(...)`"
        )
    if not callable(module):
        raise TypeError(
            "module must be a Haiku forward function, an hk.Module subclass or factory, "
            f"or an hk.Transformed(WithState); got {type(module).__name__}"
        )
    if _is_factory(module):
        return _from_factory(module)
    return PureModule(hk.transform_with_state(module), _training_flag(module), forward=module)


def _from_transformed(module: hk.Transformed | hk.TransformedWithState) -> PureModule:
    """Haiku keeps the forward function's signature on `init` and `apply`, so the training
    flag and the presence of `rng` can be read from them."""
    takes_rng = "rng" in _parameters(module.apply)
    with_state = module if isinstance(module, hk.TransformedWithState) else hk.with_empty_state(module)
    return PureModule(with_state, _training_flag(module.init), takes_rng)


def _parameters(fn: Callable[..., Any]) -> tuple[str, ...]:
    try:
        return tuple(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return ()


def _is_factory(fn: Callable[..., Any]) -> bool:
    """An hk.Module subclass, or any callable with no required positional parameter."""
    if inspect.isclass(fn):
        return issubclass(fn, hk.Module)
    return _required_positional(fn) == 0


def _from_factory(factory: Callable[..., Any]) -> PureModule:
    def forward(x: Any, training: bool) -> Any:
        module = factory()
        if not callable(module):
            raise TypeError(
                f"module: the factory {factory!r} returned {type(module).__name__}, "
                "expected an hk.Module (or another callable network)"
            )
        flag = _training_flag(module.__call__)
        return module(x, **({flag: training} if flag else {}))

    return PureModule(hk.transform_with_state(forward), "training", forward=forward)


def _training_flag(fn: Callable[..., Any]) -> str | None:
    params = _parameters(fn)
    return next((n for n in TRAINING_FLAG_NAMES if n in params), None)


def _required_positional(fn: Callable[..., Any]) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 1
    return sum(
        1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    )

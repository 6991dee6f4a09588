"""Errors that name `x` when the network cannot read it, raised while JAX traces the step.

Two mistakes otherwise surface deep inside Haiku or the user's forward function:

* integer inputs to a module whose parameters are floating point. Haiku creates a
  module's parameters in its input's dtype, so `hk.Linear` on `int64` rows fails in its
  initializer with "data type not inexact". Elegy does not cast `x` (integer inputs are
  exactly what `hk.Embed` wants), so it says which module got which dtype, and how to cast;
* a dict `x` without a key the forward function reads: a bare `KeyError: 'image'`
  becomes one that lists the keys `x` has.

Both checks run at trace time only, so they cost nothing per step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import haiku as hk
import jax
import jax.numpy as jnp

# Modules whose parameters take their input's dtype and must be floating point.
FLOATING_MODULES: tuple[type[hk.Module], ...] = (
    hk.Linear,
    hk.ConvND,
    hk.ConvNDTranspose,
    hk.DepthwiseConv1D,
    hk.DepthwiseConv2D,
    hk.DepthwiseConv3D,
    hk.BatchNorm,
    hk.LayerNorm,
    hk.GroupNorm,
    hk.RMSNorm,
    hk.InstanceNorm,
)


@contextlib.contextmanager
def naming_input_errors(x: Any, initializing: bool) -> Iterator[None]:
    """Run the network inside this: a floating-point module failing on integer inputs
    (while it creates its parameters) and a missing dict key become errors naming `x`."""
    checks = _no_integer_inputs(x) if initializing else contextlib.nullcontext()
    try:
        with checks:
            yield
    except KeyError as error:
        missing = error.args[0] if len(error.args) == 1 else None
        given = _dict_keys(x)
        if given and isinstance(missing, str) and missing not in given:
            raise KeyError(
                f"the network looked up the key {missing!r}, which x does not have "
                f"(x's keys: {sorted(given)})"
            ) from error
        raise


def _no_integer_inputs(x: Any) -> Any:
    def check(next_call: Callable[..., Any], args: Any, kwargs: Any, context: Any) -> Any:
        try:
            return next_call(*args, **kwargs)
        except (TypeError, ValueError) as error:  # only a real failure: a LayerNorm without
            # scale or offset creates no parameters and reads integers fine
            inputs = args[0] if args else next(iter(kwargs.values()), None)
            dtype = getattr(inputs, "dtype", None)
            floating = context.method_name == "__call__" and isinstance(context.module, FLOATING_MODULES)
            if floating and dtype is not None and not jnp.issubdtype(dtype, jnp.inexact):
                raise TypeError(_integer_input_message(context.module, inputs, x)) from error
            raise

    return hk.intercept_methods(check)


def _integer_input_message(module: hk.Module, inputs: Any, x: Any) -> str:
    received = f"{inputs.dtype}{list(inputs.shape)}"
    integer_leaves = [
        (jax.tree_util.keystr(path), leaf.dtype)
        for path, leaf in jax.tree_util.tree_flatten_with_path(x)[0]
        if hasattr(leaf, "dtype") and not jnp.issubdtype(leaf.dtype, jnp.inexact)
    ]
    origin = ", ".join(f"x{path} is {dtype}" for path, dtype in integer_leaves)
    return (
        f"{type(module).__name__} {module.module_name!r} received integer inputs ({received}), "
        "but Haiku creates its parameters in its inputs' dtype, which must be floating point. "
        + (f"{origin}: cast it, e.g. x.astype('float32')" if origin else "Cast them to float32")
        + " (elegy does not cast x itself: integer inputs are right for hk.Embed)"
    )


def _dict_keys(x: Any) -> set[str]:
    """The keys of every dict in `x` (nested ones too), read off its leaves' paths."""
    paths = jax.tree_util.tree_flatten_with_path(x, is_leaf=lambda leaf: leaf is None)[0]
    return {
        entry.key
        for path, _ in paths
        for entry in path
        if isinstance(entry, jax.tree_util.DictKey) and isinstance(entry.key, str)
    }

"""Mixed precision: `Model(dtype_policy=...)`, a `jmp.Policy` applied around the network.

    "float32"          everything in float32 (the default)
    "mixed_bfloat16"   params stored in float32, the forward pass in bfloat16,
                       predictions (and so losses and metrics) in float32
    "mixed_float16"    the same in float16, with dynamic loss scaling
    a jmp.Policy       as given; loss scaling when its compute dtype is float16

The forward pass sees the policy whatever its modules are: the params are cast to the
compute dtype before Haiku's `apply`, and a method interceptor (Haiku's own mechanism,
the one `hk.mixed_precision` uses) casts the floating-point inputs of every module call
to it. The exception is normalization (`FULL_PRECISION_MODULES`: BatchNorm, LayerNorm
and the like), which computes in float32 and hands the compute dtype on, as Keras's
normalization layers do: 16-bit variances can come out negative. Module state such as
BatchNorm's averages stays in the dtype it was created in.
Gradients flow back through the casts, so they and the optimizer update are float32.

float16's range is small: a loss whose gradients underflow or overflow is scaled first
(`jmp.DynamicLossScale`, kept in `States.loss_scale` as `{"scale", "finite_steps"}`, so
it is saved and restored with the rest). A step whose scaled gradients are not all
finite is skipped (params and optimizer state unchanged) and the scale halved; after 2000
finite steps it doubles.
A custom `grad_step` or `train_step` gets the same behaviour from `scaled_loss`,
`unscaled_grads` and `if_finite` below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import haiku as hk
import jax
import jax.numpy as jnp
import jmp

from elegy.states import States

LOSS_SCALE = "loss_scale"  # the States field
# Normalizations compute in float32 under every policy, as Keras's do: a variance taken as
# mean(x**2) - mean(x)**2 in 16 bits can come out negative, and its rsqrt NaN.
FULL_PRECISION_MODULES = (hk.BatchNorm, hk.LayerNorm, hk.GroupNorm, hk.RMSNorm, hk.InstanceNorm)
INITIAL_LOSS_SCALE = 2.0**15  # jmp's and Keras's starting point for float16
POLICIES = {
    "float32": None,
    "mixed_bfloat16": jmp.Policy(jnp.float32, jnp.bfloat16, jnp.float32),
    "mixed_float16": jmp.Policy(jnp.float32, jnp.float16, jnp.float32),
}


@dataclass(frozen=True)
class Precision:
    """A checked `dtype_policy`: the jmp policy (None for float32 throughout) and
    whether training scales the loss."""

    policy: jmp.Policy | None
    loss_scaling: bool


def checked_policy(value: Any) -> Precision:
    """`dtype_policy`: one of `POLICIES`' names or a `jmp.Policy`."""
    if isinstance(value, jmp.Policy):
        policy = value
    elif isinstance(value, str) and value in POLICIES:
        policy = POLICIES[value]
    else:
        names = ", ".join(repr(name) for name in POLICIES)
        raise ValueError(f"dtype_policy must be one of {names} or a jmp.Policy, got {value!r}")
    return Precision(policy, policy is not None and jnp.dtype(policy.compute_dtype) == jnp.float16)


def applied(
    precision: Precision,
    apply: Callable[..., tuple[Any, Any]],
    params: Any,
    net_states: Any,
    rng: Any,
    x: Any,
    training: bool,
) -> tuple[Any, Any]:
    """`apply(params, net_states, rng, x, training) -> (y_pred, net_states)` under the
    policy: params and every module's inputs in the compute dtype, the predictions in
    the output dtype."""
    policy = precision.policy
    if policy is None:
        return apply(params, net_states, rng, x, training)
    with _inputs_cast_to(policy.compute_dtype):
        y_pred, net_states = apply(
            policy.cast_to_compute(params), net_states, rng, policy.cast_to_compute(x), training
        )
    return policy.cast_to_output(y_pred), net_states


def _inputs_cast_to(dtype: Any) -> Any:
    inside_normalization = False

    def cast_inputs(next_call: Callable[..., Any], args: Any, kwargs: Any, context: Any) -> Any:
        nonlocal inside_normalization
        if inside_normalization:  # (its own submodules, such as BatchNorm's averages)
            return next_call(*args, **kwargs)
        if not isinstance(context.module, FULL_PRECISION_MODULES):
            return next_call(*_floating_cast(args, dtype), **_floating_cast(kwargs, dtype))
        inside_normalization = True
        try:
            out = next_call(*_floating_cast(args, jnp.float32), **_floating_cast(kwargs, jnp.float32))
        finally:
            inside_normalization = False
        return _floating_cast(out, dtype) if context.method_name == "__call__" else out

    return hk.intercept_methods(cast_inputs)


def _floating_cast(tree: Any, dtype: Any) -> Any:
    def cast(leaf: Any) -> Any:
        if hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jnp.floating):
            return leaf.astype(dtype)
        return leaf

    return jax.tree_util.tree_map(cast, tree)


# ---------------------------------------------------------------- loss scaling
# In States as a plain dict of arrays ({"scale", "finite_steps"}), which every saver and
# tree utility handles; jmp's DynamicLossScale is rebuilt from it where it is used.
PERIOD, FACTOR = 2000, 2  # jmp's defaults: double after this many finite steps, halve on one that is not


def initial_loss_scale(precision: Precision) -> dict[str, Any] | None:
    """The scale a new model starts with (None without loss scaling)."""
    if not precision.loss_scaling:
        return None
    return {"scale": jnp.asarray(INITIAL_LOSS_SCALE, jnp.float32), "finite_steps": jnp.zeros((), jnp.int32)}


def _dynamic(states: States) -> jmp.DynamicLossScale | None:
    stored = states.get(LOSS_SCALE)
    if stored is None:
        return None
    return jmp.DynamicLossScale(stored["scale"], stored["finite_steps"], period=PERIOD, factor=FACTOR)


def scaled_loss(loss: Any, states: States) -> Any:
    """`loss` times the States' loss scale (unchanged without one): differentiate this."""
    scale = _dynamic(states)
    return loss if scale is None else scale.scale(loss)


def unscaled_grads(grads: Any, states: States) -> Any:
    """The gradients of `scaled_loss`, divided back by the scale, in float32."""
    scale = _dynamic(states)
    return grads if scale is None else scale.unscale(grads)


def if_finite(grads: Any, updated: States, given: States) -> States:
    """After an update computed from `grads`: `updated` if every gradient is finite, else
    `given`'s params and optimizer state; the loss scale adjusted either way."""
    if _dynamic(given) is None:
        return updated
    finite = jmp.all_finite(grads)
    kept = {
        name: jmp.select_tree(finite, updated.get(name), given.get(name))
        for name in ("net_params", "optimizer_states")
        if name in given
    }
    return with_adjusted_scale(finite, updated.update(**kept), given)


def finite_gradients(grads: Any, states: States) -> Any:
    """Whether every gradient is finite, under loss scaling (always True without: there a
    non-finite step halts training, see `elegy.model.step_wrappers.guarded`)."""
    if _dynamic(states) is None:
        return jnp.asarray(True)
    return jmp.all_finite(grads)


def with_adjusted_scale(finite: Any, updated: States, given: States) -> States:
    """`updated` with `given`'s loss scale halved if the step's gradients were not
    `finite`, or counted towards doubling if they were (unchanged without a scale)."""
    scale = _dynamic(given)
    if scale is None:
        return updated
    adjusted = scale.adjust(finite)
    return updated.update(**{LOSS_SCALE: {"scale": adjusted.loss_scale, "finite_steps": adjusted.counter}})

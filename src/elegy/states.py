"""`States`, the one value that carries everything a training step changes, and `RNGSeq`.

A step never mutates the model: it receives a `States`, returns a new one, and the loops
store it. Keeping every changing quantity in a single immutable pytree is what lets a
step be compiled with `jax.jit`, fused with `lax.scan`, donated, sharded and checkpointed
without knowing what is inside.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from elegy import prng

__all__ = ["States", "RNGSeq", "snapshot"]


@jax.tree_util.register_pytree_with_keys_class
class RNGSeq:
    """A sequence of PRNG keys: each `next()` returns a key never returned before.

    `next()` advances the sequence in place, so within one step several consumers that
    share the same `RNGSeq` (for example the `rng` a step declares and `states.rng`, which
    are the same object) never receive the same key. Storing it back with
    `states.update(rng=rng)` is allowed but not required: the framework advances
    `States.rng` before every step on its own.

    Examples:
        >>> rng = RNGSeq(0)
        >>> k1, k2 = rng.next(), rng.next()
        >>> bool((k1 != k2).any())
        True
    """

    __slots__ = ("key",)

    def __init__(self, key: Any):
        if isinstance(key, (int, np.integer)):
            key = jax.random.PRNGKey(int(key))
        self.key = key

    def next(self) -> jax.Array:
        """Return a fresh key and advance the sequence."""
        fresh: jax.Array
        self.key, fresh = prng.split(self.key)
        return fresh

    def split(self) -> RNGSeq:
        """Return an independent sequence, advancing this one; neither repeats the other."""
        return RNGSeq(self.next())

    def tree_flatten(self) -> tuple[tuple[Any], None]:  # the fast path, taken by every jitted call
        return (self.key,), None

    def tree_flatten_with_keys(self) -> tuple[tuple[tuple[jax.tree_util.GetAttrKey, Any]], None]:
        # Keyed, so saved leaves and mismatch errors name their path (`['rng'].key`).
        return ((jax.tree_util.GetAttrKey("key"), self.key),), None

    @classmethod
    def tree_unflatten(cls, _aux: Any, children: Sequence[Any]) -> RNGSeq:
        obj = object.__new__(cls)
        obj.key = children[0]
        return obj

    def __repr__(self) -> str:
        return f"RNGSeq(key={self.key!r})"


@jax.tree_util.register_pytree_with_keys_class
class States(Mapping[str, Any]):
    """An immutable mapping of named fields that is also a JAX pytree.

    The default steps use `net_params`, `net_states` (e.g. BatchNorm statistics),
    `metrics_states`, `optimizer_states` and `rng`; a user's step may add any field of its
    own with `update`. Fields are read as attributes (`states.net_params`) or items.

    Examples:
        >>> s = States(net_params=None).update(net_params={"w": 1.0}, step=0)
        >>> s.net_params, s.step
        ({'w': 1.0}, 0)
        >>> s.maybe_update(step=5).step   # only fills missing or None fields
        0
    """

    # `_flat` holds the leaves and structure of States that a compiled step returned, until
    # someone looks inside (see `from_leaves`); `_named` the fields once they exist.
    __slots__ = ("_named", "_flat")

    def __init__(self, fields: Mapping[str, Any] | None = None, /, **kwargs: Any):
        merged = dict(fields or {})
        merged.update(kwargs)
        for name in merged:
            if not isinstance(name, str) or not name.isidentifier():
                raise TypeError(f"States field names must be identifiers, got {name!r}")
        object.__setattr__(self, "_named", merged)
        object.__setattr__(self, "_flat", None)

    @classmethod
    def from_leaves(cls, treedef: Any, leaves: list[Any]) -> States:
        """States made of `leaves` in the structure `treedef`, built only when first read.

        The training loop hands the States a compiled step returned straight to the next
        step: as long as nothing reads them in between, they stay the flat list of leaves
        the step produced (`leaves()`), and no step pays for rebuilding them and flattening
        them again, a cost that grows with the number of leaves. The first read builds the
        fields and forgets the list, so a container changed in place after that is seen.

        Examples:
            >>> import jax
            >>> leaves, treedef = jax.tree_util.tree_flatten(States(step=1, net_params={"w": 2.0}))
            >>> lazy = States.from_leaves(treedef, leaves)
            >>> lazy.leaves()[1] is leaves   # unread: the very list it was given
            True
            >>> lazy.net_params, lazy.step
            ({'w': 2.0}, 1)
        """
        obj = object.__new__(cls)
        object.__setattr__(obj, "_named", None)
        object.__setattr__(obj, "_flat", (treedef, leaves))
        return obj

    def leaves(self) -> tuple[Any, list[Any]]:
        """`(treedef, leaves)`: as a compiled step returned them, if nothing has read these
        States since, else flattened now.

        Examples:
            >>> treedef, leaves = States(step=1, net_params={"w": 2.0}).leaves()
            >>> leaves  # fields in sorted order, each flattened
            [2.0, 1]
        """
        flat: tuple[Any, list[Any]] | None = object.__getattribute__(self, "_flat")
        if flat is not None:
            return flat
        leaves, treedef = jax.tree_util.tree_flatten(self)
        return treedef, leaves

    @property
    def _fields(self) -> dict[str, Any]:
        named: dict[str, Any] | None = object.__getattribute__(self, "_named")
        if named is None:
            treedef, leaves = object.__getattribute__(self, "_flat")
            named = object.__getattribute__(treedef.unflatten(leaves), "_named")
            object.__setattr__(self, "_named", named)
            object.__setattr__(self, "_flat", None)
        return named

    def update(self, **fields: Any) -> States:
        """Return a new States with `fields` set (added or replaced)."""
        return States(self._fields, **fields)

    def maybe_update(self, **fields: Any) -> States:
        """Return a new States where only the fields that are missing or None are set."""
        missing = {k: v for k, v in fields.items() if self._fields.get(k) is None}
        return self.update(**missing) if missing else self

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in States.__slots__:  # (never a field lookup)
            raise AttributeError(name)
        fields = self._fields
        try:
            return fields[name]
        except KeyError:
            present = ", ".join(sorted(fields)) or "none"
            raise AttributeError(
                f"States has no field {name!r}; fields present: {present}. Add one with states.update(...)"
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"States is immutable: use states.update({name}=...)")

    def __getitem__(self, name: str) -> Any:
        return self._fields[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={_describe(v)}" for k, v in self._fields.items())
        return f"States({inner})"

    def __eq__(self, other: object) -> bool:
        return self is other

    __hash__ = object.__hash__

    def __reduce__(self) -> tuple[type[States], tuple[dict[str, Any]]]:
        return (States, (self._fields,))

    def tree_flatten(self) -> tuple[tuple[Any, ...], tuple[str, ...]]:
        # the fast path, taken by every jitted call: no key objects
        names = tuple(sorted(self._fields))
        return tuple(self._fields[n] for n in names), names

    def tree_flatten_with_keys(self) -> tuple[tuple[tuple[jax.tree_util.DictKey, Any], ...], tuple[str, ...]]:
        names = tuple(sorted(self._fields))
        return tuple((jax.tree_util.DictKey(n), self._fields[n]) for n in names), names

    @classmethod
    def tree_unflatten(cls, names: Iterable[str], children: Iterable[Any]) -> States:
        obj = object.__new__(cls)
        object.__setattr__(obj, "_named", dict(zip(names, children, strict=True)))
        object.__setattr__(obj, "_flat", None)
        return obj


def _describe(value: Any) -> str:
    """A short summary for repr: leaf shapes rather than whole arrays."""
    if value is None:
        return "None"
    leaves = jax.tree_util.tree_leaves(value)
    if len(leaves) == 1 and leaves[0] is value:
        shape = getattr(value, "shape", None)
        return f"{type(value).__name__}{list(shape)}" if shape is not None else repr(value)
    return f"<{type(value).__name__} with {len(leaves)} leaves>"


# Folded into the training rng's key to start the evaluation stream (the bytes of "eval").
EVALUATION_STREAM = 0x6576616C


def initial_states(seed: int) -> States:
    """The States every model starts from: two rng streams derived from `seed`, epoch 0.

    `rng` feeds the training steps; `eval_rng` the evaluation and prediction steps, so that
    evaluating (validation inside `fit` included) never changes what training draws.
    `epoch` counts the epochs trained so far; shuffling derives from it and the seed, so a
    second `fit` gets fresh orders and a resumed run the same ones.
    """
    key = jax.random.PRNGKey(seed)
    return States(
        net_params=None,
        net_states=None,
        metrics_states=None,
        optimizer_states=None,
        rng=RNGSeq(key),
        eval_rng=evaluation_rng(key),
        epoch=np.asarray(0, np.int32),
    )


def evaluation_rng(training_key: Any) -> RNGSeq:
    """The start of the evaluation stream of a training rng whose key is `training_key`."""
    return RNGSeq(prng.fold_in(training_key, EVALUATION_STREAM))


def on_evaluation_stream(states: States) -> States:
    """`states` as an evaluation step receives them: `rng` is the evaluation stream
    (`eval_rng`, started from `rng` if the States have none), advanced."""
    stream = states.get("eval_rng") or evaluation_rng(states.rng.key)
    return advance_rng(states.update(rng=stream))


def off_evaluation_stream(returned: States, given: States) -> States:
    """The States an evaluation step `returned`, its rng stored back as `eval_rng` and the
    training `rng` of the States it was `given`, untouched."""
    return returned.update(rng=given.rng, eval_rng=returned.rng)


def advance_rng(states: States) -> States:
    """Give the step a fresh sequence derived from `states.rng`.

    Called by the framework before every step, so each step sees new keys whether or not
    the previous step stored its `rng` back.
    """
    return states.update(rng=RNGSeq(prng.fold_in(states.rng.key, 1)))


def snapshot(tree: Any) -> Any:
    """A copy of `tree` whose arrays live in buffers of their own.

    Training never deletes arrays of `model.states` a user holds, so keeping States needs
    no copy; a snapshot is for code that deletes or donates buffers itself (a jitted
    function of yours with `donate_argnums`) and must keep the values.

    Examples:
        Deleting the original's buffer, as a donating function does, leaves the copy intact;
        leaves that are not jax arrays are kept as they are:

        >>> import jax.numpy as jnp
        >>> tree = {"w": jnp.ones(2), "step": 3}
        >>> copy = snapshot(tree)
        >>> tree["w"].delete()
        >>> tree["w"].is_deleted(), copy["w"].tolist(), copy["step"]
        (True, [1.0, 1.0], 3)
    """
    return jax.tree_util.tree_map(lambda leaf: leaf.copy() if isinstance(leaf, jax.Array) else leaf, tree)

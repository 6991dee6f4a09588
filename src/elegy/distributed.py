"""Distribution: how a Model spreads its steps over several devices, on one host or many.

Elegy adds no parallel layer of its own. A distribution is a `jax.sharding.Mesh` and a
`NamedSharding` for every array: batches are split along their first axis over the mesh's
`batch` axis, the States are replicated or laid out by parameter path, and `jax.jit`
(GSPMD) partitions the one compiled step and inserts the collectives. Losses, gradients and
metric states are therefore reduced over the whole global batch: every logged number is the
global one, equal to the single-device run's.

A global batch that does not divide by the number of batch shards (and the ragged last
batch) is padded with rows whose `mask` is False, so any batch size works and nothing
recompiles. Across several processes (after `jax.distributed.initialize()`), each process
builds only its own rows of every global batch and `jax.make_array_from_process_local_data`
assembles the global array; an iterable marked `elegy.data.process_local` yields in each
process only that process's rows (`LocalBatch`), and the processes' shares side by side
are the global batch.

The names follow `keras.distribution`: `DataParallel` and `ModelParallel`.

Examples:
    Data parallelism over every device (one, on a laptop). A batch of 10 rows is padded to a
    multiple of the number of shards, and the predictions of the real rows come back:

    >>> import elegy, haiku as hk, jax, numpy as np
    >>> distribution = elegy.distributed.DataParallel()
    >>> distribution.mesh.axis_names, distribution.batch_shards == len(jax.devices())
    (('batch',), True)
    >>> distribution.padded_size(10) % distribution.batch_shards
    0
    >>> model = elegy.Model(lambda x: hk.Linear(2)(x), distribution=distribution)
    >>> model.predict(np.ones((10, 3), np.float32), batch_size=10, verbose=0).shape
    (10, 2)
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from elegy.data.batches import Batch, LocalBatch, padded_rows

__all__ = ["DataParallel", "Distribution", "ModelParallel"]

BATCH_AXIS = "batch"


class Distribution:
    """A mesh of devices and the layout of batches and States on it (base class).

    Subclasses choose the mesh and, through `param_spec`, how each parameter is split.

    Examples:
        A layout that splits every kernel's columns over the devices that split the batch
        and replicates everything else; `states_sharding` applies it to a States:

        >>> import elegy, jax, numpy as np
        >>> from jax.sharding import Mesh, PartitionSpec
        >>> class SplitKernels(Distribution):
        ...     def param_spec(self, path, shape):
        ...         return PartitionSpec(None, "batch") if path.endswith("/w") else PartitionSpec()
        >>> distribution = SplitKernels(Mesh(np.array(jax.devices()), ("batch",)))
        >>> params = {"linear": {"w": np.zeros((3, 8)), "b": np.zeros(8)}}
        >>> layout = distribution.states_sharding(elegy.States(net_params=params, epoch=np.int32(0)))
        >>> tuple(layout["net_params"]["linear"]["w"].spec), tuple(layout["net_params"]["linear"]["b"].spec)
        ((None, 'batch'), ())
        >>> layout["epoch"].spec == distribution.replicated.spec
        True
    """

    def __init__(self, mesh: Mesh, batch_axis: str = BATCH_AXIS):
        if batch_axis not in mesh.axis_names:
            raise ValueError(f"batch_axis {batch_axis!r} is not an axis of the mesh {mesh.axis_names}")
        self.mesh = mesh
        self.batch_axis = batch_axis

    # ---------------------------------------------------------------- batches
    @property
    def batch_shards(self) -> int:
        """How many pieces each global batch is split into."""
        return int(self.mesh.shape[self.batch_axis])

    def padded_size(self, rows: int) -> int:
        """The smallest multiple of `batch_shards` that holds `rows` rows."""
        return -(-rows // self.batch_shards) * self.batch_shards

    def batch_sharding(self, stacked: bool = False) -> NamedSharding:
        """Rows over the batch axis; a stacked execution keeps its leading step axis whole."""
        spec = PartitionSpec(None, self.batch_axis) if stacked else PartitionSpec(self.batch_axis)
        return NamedSharding(self.mesh, spec)

    def put_batch(self, batch: Batch, stacked: bool = False) -> Batch:
        """A host batch (global rows, padded to `padded_size`) as global device arrays;
        `stacked`: batches of an execution stacked on a leading step axis.

        In a multi-process run each process transfers only its own rows; a `LocalBatch`
        holds only them (see `put_share`).
        """
        sharding = self.batch_sharding(stacked)
        if jax.process_count() == 1:
            return jax.device_put(batch, sharding)
        axis = 1 if stacked else 0
        if isinstance(batch, LocalBatch):
            return self.put_share(batch, sharding, axis)

        def assemble(leaf: Any) -> jax.Array:
            leaf = np.asarray(leaf)
            return jax.make_array_from_process_local_data(sharding, process_rows(leaf, axis), leaf.shape)

        return jax.tree_util.tree_map(assemble, batch)

    @functools.cached_property
    def process_batch_shards(self) -> int:
        """How many of the batch axis's shards this process's devices hold (looked up once:
        a walk over every device of a large mesh would cost every step)."""
        position = self.mesh.axis_names.index(self.batch_axis)
        mine = jax.process_index()
        held = {
            index[position]
            for index, device in np.ndenumerate(self.mesh.devices)
            if device.process_index == mine
        }
        return len(held)

    def put_share(self, batch: LocalBatch, sharding: NamedSharding, axis: int) -> Batch:
        """This process's share of a global batch, padded to a multiple of the batch shards
        its devices hold (padding rows masked out), joined with the other processes' into
        the global batch: every process's shares side by side, in the mesh's order."""
        shards = self.process_batch_shards
        if shards * jax.process_count() != self.batch_shards:
            raise ValueError(
                f"process_local data needs every process to hold its own, equal part of the mesh's "
                f"{self.batch_axis!r} axis; here process {jax.process_index()} holds {shards} of its "
                f"{self.batch_shards} shards over {jax.process_count()} processes (feed arrays, or an "
                "iterable of whole global batches, instead)"
            )
        rows = batch.mask.shape[axis]
        size = -(-rows // shards) * shards
        share = padded_rows(batch, size, axis)
        global_rows = size * jax.process_count()

        def assemble(leaf: Any) -> jax.Array:
            leaf = np.asarray(leaf)
            shape = (*leaf.shape[:axis], global_rows, *leaf.shape[axis + 1 :])
            return jax.make_array_from_process_local_data(sharding, leaf, shape)

        placed: Batch = jax.tree_util.tree_map(assemble, share)
        return placed

    # ---------------------------------------------------------------- states
    def param_spec(self, path: str, shape: tuple[int, ...]) -> PartitionSpec:
        """How the parameter (or optimizer-state leaf) at `path` is split; default: whole."""
        return PartitionSpec()

    def states_sharding(self, states: Mapping[str, Any]) -> Any:
        """A NamedSharding for every leaf of `states` (same structure).

        Network params, and the optimizer-state leaves that mirror them (Adam's `mu` and
        `nu` hold the same dict keys), follow `param_spec`; everything else is replicated.
        """

        def sharding(path: Any, leaf: Any) -> NamedSharding:
            field = getattr(path[0], "key", None) if path else None
            if field not in ("net_params", "optimizer_states"):
                return self.replicated
            return NamedSharding(self.mesh, self.param_spec(param_path(path[1:]), np.shape(leaf)))

        return jax.tree_util.tree_map_with_path(sharding, dict(states))

    def put_states(self, states: Any) -> Any:
        """`states` placed in their layout (the first placement after initialization)."""
        return type(states)(jax.device_put(dict(states), self.states_sharding(states)))

    def constrain_states(self, states: Any, unchanged_from: Any = None) -> Any:
        """Inside a traced step: the States pinned to their layout, so every step's output
        has its input's sharding (and the next call does not compile again). Leaves that
        are `unchanged_from`'s own stay untouched (forwarded, not copied)."""
        given = set(map(id, jax.tree_util.tree_leaves(dict(unchanged_from or {}))))

        def pinned(leaf: Any, sharding: NamedSharding) -> Any:
            return leaf if id(leaf) in given else jax.lax.with_sharding_constraint(leaf, sharding)

        return type(states)(jax.tree_util.tree_map(pinned, dict(states), self.states_sharding(states)))

    def put_execution(self, execution: Any) -> Any:
        """An `Execution` (one batch or stacked ones) placed across the mesh."""
        return execution._replace(batches=self.put_batch(execution.batches, stacked=execution.fused))

    @property
    def replicated(self) -> NamedSharding:
        """A whole copy on every device."""
        return NamedSharding(self.mesh, PartitionSpec())

    def __repr__(self) -> str:
        shape = ", ".join(f"{name}={size}" for name, size in self.mesh.shape.items())
        return f"{type(self).__name__}({shape})"


class DataParallel(Distribution):
    """Every device holds the whole model and a slice of each batch.

    A 1-D mesh (axis `"batch"`) over `devices` (default: every device of every process).
    Pass it as `elegy.Model(..., distribution=DataParallel())`.

    Examples:
        >>> import elegy
        >>> elegy.distributed.DataParallel().batch_shards == len(jax.devices())
        True
    """

    def __init__(self, devices: Sequence[Any] | None = None):
        devices = list(jax.devices() if devices is None else devices)
        if not devices:
            raise ValueError("devices must name at least one device, got an empty sequence")
        super().__init__(Mesh(np.array(devices), (BATCH_AXIS,)))


class ModelParallel(Distribution):
    """A `(batch, model)` mesh: batches split over `batch`, parameters laid out by path.

    `layout` maps regular expressions over Haiku parameter paths (module name and
    parameter name joined by `/`, e.g. `"mlp/~/linear_0/w"`) to `PartitionSpec`s (or
    tuples of axis names). A path matches a key that equals it or that `re.search` finds
    in it; two matching patterns are an error. Unmatched parameters are replicated. The
    optimizer state of a parameter gets the same layout. Parameters are created in their
    layout by the compiled initialization, never whole on one device.

    Examples:
        >>> import elegy
        >>> from jax.sharding import PartitionSpec as P
        >>> distribution = elegy.distributed.ModelParallel(
        ...     (1, len(jax.devices())), layout={"linear_0/w": P(None, "model")}
        ... )
        >>> distribution.param_spec("mlp/~/linear_0/w", (4, 8 * len(jax.devices()))) == P(None, "model")
        True
    """

    def __init__(
        self,
        mesh_shape: Sequence[int],
        axis_names: Sequence[str] = (BATCH_AXIS, "model"),
        layout: Mapping[str, Any] | None = None,
        devices: Sequence[Any] | None = None,
    ):
        mesh_shape, axis_names = tuple(mesh_shape), tuple(axis_names)
        if len(mesh_shape) != len(axis_names):
            raise ValueError(f"mesh_shape {mesh_shape} and axis_names {axis_names} must have the same length")
        devices = list(jax.devices() if devices is None else devices)
        if int(np.prod(mesh_shape)) != len(devices):
            raise ValueError(
                f"mesh_shape {mesh_shape} needs {int(np.prod(mesh_shape))} devices, "
                f"but {len(devices)} are available"
            )
        super().__init__(Mesh(np.array(devices).reshape(mesh_shape), axis_names))
        self.layout = {pattern: _as_spec(spec, pattern) for pattern, spec in (layout or {}).items()}
        for pattern, spec in self.layout.items():
            unknown = [axis for axis in _spec_axes(spec) if axis not in axis_names]
            if unknown:
                raise ValueError(f"layout[{pattern!r}] names axes {unknown} that the mesh {axis_names} lacks")

    def param_spec(self, path: str, shape: tuple[int, ...]) -> PartitionSpec:
        spec = self._matching_spec(path)
        if spec is None or len(spec) > len(shape):
            # Unmatched, or an optimizer-state scalar under a matched path: replicated.
            return PartitionSpec()
        for size, axes in zip(shape, spec, strict=False):
            shards = int(np.prod([self.mesh.shape[a] for a in _entry_axes(axes)]))
            if size % shards:
                raise ValueError(
                    f"layout: parameter {path!r} of shape {shape} cannot be split as {spec}: "
                    f"{size} does not divide into {shards} shards"
                )
        return spec

    def _matching_spec(self, path: str) -> PartitionSpec | None:
        if path in self.layout:
            return self.layout[path]
        found = [pattern for pattern in self.layout if re.search(pattern, path)]
        if len(found) > 1:
            raise ValueError(
                f"layout: parameter {path!r} matches several patterns {found}; make them exclusive"
            )
        return self.layout[found[0]] if found else None


def param_path(path: Sequence[Any]) -> str:
    """A leaf's dict keys joined by `/`: `"mlp/~/linear_0/w"` for the parameter and for
    its optimizer-state leaves (whose other path entries are tuple indices and attributes)."""
    return "/".join(str(entry.key) for entry in path if isinstance(entry, jax.tree_util.DictKey))


def process_rows(leaf: np.ndarray, axis: int = 0) -> np.ndarray:
    """This process's contiguous share of a global batch's rows (all of them in one process)."""
    count, index = jax.process_count(), jax.process_index()
    share = leaf.shape[axis] // count
    return np.take(leaf, np.arange(index * share, (index + 1) * share), axis=axis)


def is_primary_process() -> bool:
    """Whether this is process 0: the one that prints, logs, and writes the files every
    process shares."""
    return jax.process_index() == 0


def to_host(tree: Any) -> Any:
    """`tree` as numpy arrays, whole: in a multi-process run, gathered from every process
    (an array split over several hosts has no single host copy to fetch)."""
    if jax.process_count() == 1:
        return jax.device_get(tree)
    return multihost_utils.process_allgather(tree, tiled=True)


def _as_spec(spec: Any, pattern: str) -> PartitionSpec:
    if isinstance(spec, PartitionSpec):
        return spec
    if isinstance(spec, (tuple, list)):
        return PartitionSpec(*spec)
    raise TypeError(f"layout[{pattern!r}] must be a PartitionSpec or a tuple of axis names, got {spec!r}")


def _entry_axes(entry: Any) -> tuple[str, ...]:
    if entry is None:
        return ()
    return tuple(entry) if isinstance(entry, (tuple, list)) else (entry,)


def _spec_axes(spec: PartitionSpec) -> list[str]:
    return [axis for entry in spec for axis in _entry_axes(entry)]

"""The compiled entry points: what the loops call, one pure function per kind of call.

An entry point runs one of the model's steps over a batch (or over several stacked ones,
fused into a `lax.scan`) as `(States, Batch, class_weight) -> (outputs, States)`:

    entry       step         initializing  training   writes its new States
    init        train_step   True          True       in new buffers
    init_pred   pred_step    True          True       in new buffers
    train       train_step   False         True       over retired buffers (donated)
    test        test_step    False         False      only the changed leaves, new
    pred        pred_step    False         False      only the changed leaves, new

`CompiledSteps` owns everything about them: the jit (and its donation and compiler
options), the cache of compiled functions, the note when one traces again with other
inputs, and the order of the logs each entry produced while it traced.
"""

from __future__ import annotations

import concurrent.futures
import warnings
from collections.abc import Callable
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from elegy import hooks
from elegy.data.batches import Batch
from elegy.data.resident import gathered
from elegy.distributed import Distribution
from elegy.model import ema
from elegy.model.buffers import RetiredBuffers
from elegy.model.context import log_order, running_step
from elegy.model.execution import Execution, OnDevice
from elegy.model.forwarding import over_leaves, with_states
from elegy.model.retrace import RetraceWarning, changes, message, signature
from elegy.states import States, advance_rng, off_evaluation_stream, on_evaluation_stream

# What each entry point runs: (step method, initializing, training).
ENTRY_POINTS = {
    "init": ("train_step", True, True),
    "init_pred": ("pred_step", True, True),
    "train": ("train_step", False, True),
    "test": ("test_step", False, False),
    "pred": ("pred_step", False, False),
}

# Compilations ahead of time (see `CompiledSteps.compile_ahead`), one at a time.
_COMPILER = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="elegy-compile")

Step = Callable[..., tuple[Any, States]]  # (States, Batch, class_weight[, halted]) -> (outputs, States)


class SteppedModel(Protocol):
    """What the entry points use of a model: its steps and how they run."""

    run_eagerly: bool
    distribution: Distribution | None
    _buffers: RetiredBuffers

    @property
    def ema_decay(self) -> float | None: ...

    @property
    def evaluate_with_ema(self) -> bool: ...

    def call_step(self, name: str, **available: Any) -> Any: ...


class CompiledSteps:
    """The entry points of one model, compiled on first use and kept.

    `steps(entry)` is the function for one batch, `steps(entry, fused=True)` the one over
    stacked batches; both are jitted unless the model runs eagerly.
    """

    def __init__(self, model: SteppedModel):
        self._model = model
        self._cache: dict[tuple[str, bool, bool | str], Step] = {}
        self._signatures: dict[str, dict[str, str]] = {}  # each entry's last traced inputs
        self._log_orders: dict[str, tuple[str, ...]] = {}
        self.warn_on_retrace = False  # set by fit once every step has compiled

    def __call__(self, entry: str, fused: bool = False) -> Step:
        key = (entry, self._model.run_eagerly, fused)
        step = self._cache.get(key)
        if step is None:
            step = self._cache[key] = self._build(entry, fused)
        return step

    def keys(self) -> set[tuple[str, bool, bool | str]]:
        """(entry, run_eagerly, fused) of every function built so far; for those over
        data on the device, "on_device:<capacity>" in place of `fused`."""
        return set(self._cache)

    def on_device(self, entry: str, capacity: int = 0) -> Step:
        """The function of `entry` over data on the device: the single step
        (`capacity` 0), `(states, data, index, mask, position, class_weight[, halted])`,
        or the looped one, `(states, data, index, mask, position, count, ...)`, which runs
        `count` steps (at most `capacity`) and returns their outputs stacked."""
        key = (entry, self._model.run_eagerly, f"on_device:{capacity}")
        step = self._cache.get(key)
        if step is None:
            step = self._cache[key] = self._build(entry, fused=False, capacity=capacity, on_device=True)
        return step

    def execute(
        self, entry: str, states: States, execution: Execution | OnDevice, *arguments: Any
    ) -> tuple[Any, States]:
        """Run `entry` on an execution: `(outputs, states)`, the outputs stacked when fused.
        `arguments` follow the batches: `class_weight`, and for "train" `halted`."""
        step, inputs = self._step_for(entry, execution, arguments)
        return step(states, *inputs)

    def compile_ahead(
        self,
        entry: str,
        states: States,
        execution: Execution | OnDevice,
        *arguments: Any,
        background: bool = True,
    ) -> concurrent.futures.Future[Any]:
        """Trace and lower what `execute` would run here, and compile it in a thread of
        its own: steps already compiled go on meanwhile, and `execute`, once the future
        is done, finds it compiled. (Tracing runs the user's steps' Python: it stays in
        this thread. The compilation is XLA's, without the GIL.)"""
        step, inputs = self._step_for(entry, execution, arguments)
        treedef, leaves = states.leaves()
        spare = (leaves,) if entry == "train" else ()  # (the buffers a training step writes over)
        lowered = step.jitted.lower(treedef, leaves, *spare, *inputs)  # type: ignore[attr-defined]
        if background:
            return _COMPILER.submit(lowered.compile)
        done: concurrent.futures.Future[Any] = concurrent.futures.Future()
        done.set_result(lowered.compile())
        return done

    def _step_for(
        self, entry: str, execution: Execution | OnDevice, arguments: tuple[Any, ...]
    ) -> tuple[Step, tuple[Any, ...]]:
        """The function that runs `entry` on `execution`, and its inputs after the States."""
        if not isinstance(execution, OnDevice):
            return self(entry, execution.fused), (execution.batches, *arguments)
        rows, at = execution.rows, np.int32(execution.position)
        on_rows = (execution.placed.data, rows.indices, rows.masks, at)
        if execution.fused:
            return self.on_device(entry, execution.capacity), (
                *on_rows,
                np.int32(execution.count),
                *arguments,
            )
        return self.on_device(entry), (*on_rows, *arguments)

    def log_order(self, entry: str) -> tuple[str, ...] | None:
        """The order in which `entry`'s steps produced their logs (None before it ran)."""
        return self._log_orders.get(entry)

    def _build(self, entry: str, fused: bool, capacity: int = 0, on_device: bool = False) -> Step:
        def run(states: States, batch: Batch, class_weight: Any) -> tuple[Any, States]:
            return self._run(entry, states, batch, class_weight)

        training = entry == "train"
        step: Callable[..., tuple[Any, States]] = guarded(run) if training else run
        if self._model.run_eagerly:
            # The same arrays a compiled step sees: jax arrays, dtypes canonicalized.
            return lambda states, batch, *rest: step(states, *jax.device_put((batch, *rest)))
        if on_device:
            step = looped(step, capacity, training) if capacity else gathering(step)
        elif fused:
            step = scanned_guarded(step) if training else scanned(step)
        body = over_leaves(step, changed_only=not training)
        if not training:
            jitted = jax.jit(body, static_argnums=0, compiler_options=compiler_options(entry))
            return with_states(jitted, changed_only=True)

        def writing_over(treedef: Any, leaves: list[Any], spare: list[Any], *rest: Any) -> Any:
            return body(treedef, leaves, *rest)  # the new States go where `spare` was

        jitted = jax.jit(
            writing_over,
            static_argnums=0,
            donate_argnums=2,  # never the States read: see elegy.model.buffers
            keep_unused=True,
            compiler_options=compiler_options(entry),
        )
        return with_states(jitted, changed_only=False, buffers=self._model._buffers)

    def _run(self, entry: str, states: States, batch: Batch, class_weight: Any) -> tuple[Any, States]:
        """The body of an entry point (while JAX traces it, unless run eagerly)."""
        step, initializing, training = ENTRY_POINTS[entry]
        model = self._model
        if not model.run_eagerly:  # this Python runs only while JAX traces the step
            self._note_trace(entry, states, batch, class_weight)
        given = states
        states = advance_rng(states) if training else on_evaluation_stream(states)
        with_average = not training and model.ema_decay is not None and model.evaluate_with_ema
        if with_average:
            states = ema.swapped(states)
        with running_step(batch.mask) as running, hooks.collecting() as uncollected:
            result = model.call_step(
                step,
                x=batch.x,
                y_true=batch.y,
                sample_weight=batch.sample_weight,
                class_weight=class_weight,
                states=states,
                initializing=initializing,
                training=training,
                mask=batch.mask,
            )
        if step != "pred_step":
            check_all_collected(uncollected, step)
        new_states = result.states
        if with_average:
            new_states = ema.swapped(new_states)
        decay = model.ema_decay
        if decay is not None and entry in ("init", "train"):
            new_states = ema.started(new_states) if initializing else ema.averaged(new_states, decay)
        if not training:
            new_states = off_evaluation_stream(new_states, given)
        if model.distribution is not None and not model.run_eagerly:
            new_states = model.distribution.constrain_states(new_states, unchanged_from=given)
        if step == "pred_step":
            return result.y_pred, new_states
        self._log_orders[entry] = log_order(running.log_names, result.logs)
        return dict(result.logs), new_states

    def _note_trace(self, entry: str, states: States, batch: Batch, class_weight: Any) -> None:
        arguments = {"states": states, **batch._asdict(), "class_weight": class_weight}
        current, previous = signature(arguments), self._signatures.get(entry)
        self._signatures[entry] = current
        differences = [] if previous is None else changes(previous, current)
        if differences and self.warn_on_retrace:
            warnings.warn(RetraceWarning(message(f"The {entry} step", differences)), stacklevel=2)


def scanned(run: Step) -> Callable[[States, Batch, Any], tuple[Any, States]]:
    """`run(states, batch, class_weight) -> (outputs, states)` as a `lax.scan` over batches
    stacked on a leading axis: `(states, batches, class_weight) -> (stacked outputs, states)`.

    Every step of a group runs unconditionally (see `elegy.model.execution` for why a
    group is never completed with filler steps).
    """

    def over_batches(states: States, batches: Batch, class_weight: Any) -> tuple[Any, States]:
        def step(carried: States, batch: Batch) -> tuple[States, Any]:
            outputs, updated = run(carried, batch, class_weight)
            return updated, outputs

        states, outputs = jax.lax.scan(step, states, batches)
        return outputs, states

    return over_batches


def gathering(step: Step) -> Step:
    """`step(states, batch, *rest)` on the batch at `position` of data on the device:
    `(states, data, index, mask, position, *rest)` (see `elegy.data.resident`).

    (Not through a jitted inner step, as `looped` is: the outputs of a nested jit are new
    values even where the step returned its input, so an evaluation step would return,
    and copy, every leaf of its States.)"""

    def on_rows(
        states: States, data: Any, index: Any, mask: Any, position: Any, *rest: Any
    ) -> tuple[Any, States]:
        return step(states, gathered(data, index[position], mask[position]), *rest)

    return on_rows


def looped(step: Step, capacity: int, training: bool) -> Step:
    """`count` steps (a run-time argument, at most `capacity`) over the batches from
    `position` of data on the device, in one `fori_loop`: every group size is this one
    program, so a tuner may pick any without compiling or changing a bit. The outputs of
    the steps come back stacked on a leading axis of `capacity` rows, the first `count`
    filled; a training step's `halted` flag is carried along (see `guarded`).

    The stacked outputs need the shapes of one step's before the loop runs: the step is
    jitted inside, so finding them (`eval_shape`) and the loop's body share one trace of
    the user's steps."""
    inner = jax.jit(step)

    def over_rows(
        states: States,
        data: Any,
        index: Any,
        mask: Any,
        position: Any,
        count: Any,
        class_weight: Any,
        *flag: Any,
    ) -> tuple[Any, States]:
        def batch(i: Any) -> Batch:
            return gathered(data, index[position + i], mask[position + i])

        def outputs_of(result: Any) -> Any:
            return result[0] if training else result  # a training step's (logs, halted)

        shapes = outputs_of(jax.eval_shape(inner, states, batch(0), class_weight, *flag)[0])
        stacked = jax.tree_util.tree_map(
            lambda shape: jnp.zeros((capacity, *shape.shape), shape.dtype), shapes
        )

        def one(i: Any, carried: tuple[States, tuple[Any, ...], Any]) -> tuple[States, tuple[Any, ...], Any]:
            carried_states, carried_flag, outputs = carried
            result, updated = inner(carried_states, batch(i), class_weight, *carried_flag)
            new_flag = (result[1],) if training else ()
            outputs = jax.tree_util.tree_map(
                lambda rows, row: rows.at[i].set(row), outputs, outputs_of(result)
            )
            return updated, new_flag, outputs

        states, flag, stacked = jax.lax.fori_loop(0, count, one, (states, flag, stacked))
        return ((stacked, *flag) if training else stacked), states

    return over_rows


def guarded(run: Step) -> Callable[..., tuple[Any, States]]:
    """A training step that never lets a non-finite update through, as
    `(states, batch, class_weight, halted) -> ((logs, halted), states)`.

    A step whose loss (every floating-point log, if it logs no `loss`) or new net params
    are not all finite halts training: it and every later step (while `halted` is carried
    on) keep the States they were given, except the metric accumulators, which take the
    step in, so the logs say NaN. The flag stays on the device; the loop reads it when it
    reads the epoch's logs anyway, so a run without NaNs waits for nothing.
    """

    def step(states: States, batch: Batch, class_weight: Any, halted: Any) -> tuple[Any, States]:
        logs, updated = run(states, batch, class_weight)
        halted = jnp.logical_or(halted, jnp.logical_not(_finite(logs, updated)))
        return (logs, halted), _unless_halted(halted, updated, states)

    return step


def scanned_guarded(step: Callable[..., tuple[Any, States]]) -> Callable[..., tuple[Any, States]]:
    """`scanned` for a `guarded` step: the flag is carried from step to step with the
    States; returns `((stacked logs, halted), states)`."""

    def over_batches(states: States, batches: Batch, class_weight: Any, halted: Any) -> tuple[Any, States]:
        def one(carried: tuple[States, Any], batch: Batch) -> tuple[tuple[States, Any], Any]:
            (logs, flag), updated = step(carried[0], batch, class_weight, carried[1])
            return (updated, flag), logs

        (states, halted), logs = jax.lax.scan(one, (states, halted), batches)
        return (logs, halted), states

    return over_batches


def _finite(logs: Any, states: States) -> Any:
    """Whether a training step's loss (or every floating log) and new params are finite."""
    watched = [logs["loss"]] if "loss" in logs else list(logs.values())
    watched += jax.tree_util.tree_leaves(states.get("net_params"))
    checks = [jnp.all(jnp.isfinite(v)) for v in watched if jnp.issubdtype(jnp.result_type(v), jnp.inexact)]
    return jnp.all(jnp.stack(checks)) if checks else jnp.asarray(True)


def _unless_halted(halted: Any, updated: States, given: States) -> States:
    """`updated` if not `halted`, else `given` with `updated`'s metric accumulators."""
    fields = {}
    for name, value in updated.items():
        old = given.get(name)
        same = name != "metrics_states" and name in given
        if same and jax.tree_util.tree_structure(old) == jax.tree_util.tree_structure(value):  # type: ignore[operator]
            value = jax.tree_util.tree_map(lambda o, n: jnp.where(halted, o, n), old, value)
        fields[name] = value
    return States(fields)


def compiler_options(entry: str) -> dict[str, Any] | None:
    """Initialization runs once: on the CPU, compiling it without XLA's backend
    optimizations takes a quarter of the time (for the benchmark's MLP, 0.4 s against
    1.4 s) and changes nothing that matters for a program run once."""
    if entry in ("init", "init_pred") and jax.default_backend() == "cpu":
        return {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
    return None


def check_all_collected(uncollected: hooks.Collected, step: str) -> None:
    """Values the network reported with `add_loss`/`add_metric` that no `test_step`
    collected would vanish from a training or evaluation step without a word: an error.
    (In `predict` there is no loss to add them to, so there they are dropped.)"""
    names = [*uncollected.losses, *uncollected.metrics]
    if names:
        raise ValueError(
            f"the network reported {', '.join(map(repr, names))} with elegy.add_loss/add_metric, "
            f"but the {step} that ran did not collect them: the default test_step does (it adds "
            "them to the loss and the logs). A step of your own that calls pred_step should go "
            "through super().test_step, or compute those terms itself"
        )

"""The compiled entry points: what the loops call, one pure function per kind of call.

An entry point runs one of the model's steps over a batch (or over several stacked ones,
fused into a `lax.scan`) as `(States, Batch, class_weight) -> (outputs, States)`:

    entry       step         initializing  training   writes its new States
    init        train_step   True          True       in new buffers
    init_pred   pred_step    True          True       in new buffers
    (finish_group: the model's `_finish_group` at the end of an epoch, once per epoch)
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
import numpy as np

from elegy import hooks
from elegy.data.batches import Batch
from elegy.distributed import Distribution
from elegy.model import ema
from elegy.model.buffers import RetiredBuffers
from elegy.model.context import log_order, running_step
from elegy.model.execution import Execution, OnDevice
from elegy.model.forwarding import over_leaves, with_states
from elegy.model.retrace import RetraceWarning, changes, message, signature
from elegy.model.step_wrappers import Step, gathering, guarded, looped, scanned, scanned_guarded
from elegy.states import States, advance_rng, off_evaluation_stream, on_evaluation_stream
from elegy.value_checks import checking

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

    def _finish_group(self, states: States, halted: Any) -> States: ...


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
        self.warn_on_retrace = False  # set by fit while it trains

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

    def finish_group(self, states: States, halted: Any) -> States:
        """`states` at the end of an epoch, a partially accumulated group of gradients
        applied (see `elegy.model.accumulation`), unless `halted`; compiled once."""
        key = ("finish_group", self._model.run_eagerly, False)
        finish = self._cache.get(key)
        if finish is None:
            finish = self._cache[key] = self._build_finish()
        return finish(states, halted)[1]

    def _build_finish(self) -> Step:
        model = self._model

        def run(states: States, halted: Any) -> tuple[None, States]:
            finished = model._finish_group(states, halted)
            if model.distribution is not None and not model.run_eagerly:
                finished = model.distribution.constrain_states(finished, unchanged_from=states)
            return None, finished

        if model.run_eagerly:
            return run
        jitted = jax.jit(over_leaves(run, changed_only=True), static_argnums=0)
        return with_states(jitted, changed_only=True)

    def log_order(self, entry: str) -> tuple[str, ...] | None:
        """The order in which `entry`'s steps produced their logs (None before it ran)."""
        return self._log_orders.get(entry)

    def _build(self, entry: str, fused: bool, capacity: int = 0, on_device: bool = False) -> Step:
        def run(states: States, batch: Batch, class_weight: Any) -> tuple[Any, States]:
            return self.body(entry, states, batch, class_weight)

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

    def body(self, entry: str, states: States, batch: Batch, class_weight: Any) -> tuple[Any, States]:
        """The body of an entry point, `(outputs, new States)`: what its compiled function
        runs (while JAX traces it, unless run eagerly), and what `export` traces into a
        program of its own, for any batch shape."""
        step, initializing, training = ENTRY_POINTS[entry]
        model = self._model
        if not model.run_eagerly:  # this Python runs only while JAX traces the step
            self._note_trace(entry, states, batch, class_weight)
        given = states
        states = advance_rng(states) if training else on_evaluation_stream(states)
        with_average = not training and model.ema_decay is not None and model.evaluate_with_ema
        if with_average:
            states = ema.swapped(states)
        with running_step(batch.mask) as running, hooks.collecting() as uncollected, checking() as checked:
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
        if initializing:  # what initialization reads: the first batch's value checks
            return checked.checks, new_states
        return dict(result.logs), new_states

    def forget_signatures(self) -> None:
        """Start comparing traces afresh (`fit` does, so that it warns only about its own)."""
        self._signatures.clear()

    def _note_trace(self, entry: str, states: States, batch: Batch, class_weight: Any) -> None:
        if not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(batch)):
            return  # not a trace: JAX re-running the step op by op (jax_debug_nans)
        arguments = {"states": states, **batch._asdict(), "class_weight": class_weight}
        current, previous = signature(arguments), self._signatures.get(entry)
        self._signatures[entry] = current
        differences = [] if previous is None else changes(previous, current)
        if differences and self.warn_on_retrace:
            warnings.warn(RetraceWarning(message(f"The {entry} step", differences)), stacklevel=2)


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

"""`ModelCore`: what a model holds between calls (its States) and how it gets them.

The model keeps the current `States`, builds them once from the first batch it sees
(lazy initialization, as Keras builds on the first call), and calls its own steps with
the arguments they declare. How batches reach a step (`elegy.model.execution`), how a
step is compiled (`elegy.model.entry_points`) and the loops over them
(`elegy.model.loops`) live in modules of their own.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from elegy.arguments import check_int
from elegy.callbacks.history import History
from elegy.data.batches import Batch, padded_batch
from elegy.data.resident import device_arrays
from elegy.data.sources import ArraySource
from elegy.data.structure import checked_triple
from elegy.distributed import Distribution
from elegy.inject import inject
from elegy.model import ema
from elegy.model.buffers import RetiredBuffers
from elegy.model.context import note_logs
from elegy.model.entry_points import CompiledSteps
from elegy.model.execution import ExecutionPlan
from elegy.model.steps import STEP_RESULTS, check_step_output
from elegy.model.tuning import GroupTuner
from elegy.states import States, initial_states
from elegy.value_checks import raise_failed

NOT_INITIALIZED, PREDICT_READY, FULLY_INITIALIZED = 0, 1, 2
AUTO = "auto"  # steps_per_execution chosen by measuring (see elegy.model.tuning)
HOST = "host:"  # the key of an entry point's tuner for batches from the host


class ModelCore:
    """States, lazy initialization and the step calls of a model (see `ModelBase`)."""

    def __init__(
        self,
        seed: int = 42,
        run_eagerly: bool = False,
        steps_per_execution: int | str = "auto",
        distribution: Distribution | None = None,
        ema_decay: float | None = None,
        evaluate_with_ema: bool = True,
    ):
        if distribution is not None and not isinstance(distribution, Distribution):
            raise TypeError(
                "distribution must be an elegy.distributed.DataParallel or ModelParallel (or None), "
                f"got {type(distribution).__name__}"
            )
        self.distribution = distribution
        self.seed = check_int(seed, "seed", 0)
        self.run_eagerly = bool(run_eagerly)
        self.steps_per_execution = _checked_group(steps_per_execution)
        self._ema_decay = ema.checked_decay(ema_decay)
        self.evaluate_with_ema = bool(evaluate_with_ema)
        self.stop_training = False
        self.history: History | None = None
        self._buffers = RetiredBuffers()
        self._compiled_steps = CompiledSteps(self)
        self._tuners: dict[str, GroupTuner] = {}  # entry -> the search for its group size
        self.reset()

    @property
    def ema_decay(self) -> float | None:
        """The decay of the params' moving average (`elegy.model.ema`), None without one.
        Fixed when the model is created: its States hold the average from the start."""
        return self._ema_decay

    @property
    def evaluate_with_ema(self) -> bool:
        """Whether evaluate, predict and fit's validation use the moving average in place
        of the params (when there is one); a new value takes effect on the next call."""
        return self._evaluate_with_ema

    @evaluate_with_ema.setter
    def evaluate_with_ema(self, value: bool) -> None:
        self._evaluate_with_ema = bool(value)
        self._recompile()  # the evaluation programs read it

    def _recompile(self) -> None:
        """Compile the steps afresh: something they bake in has changed."""
        self._compiled_steps = CompiledSteps(self)
        self._tuners = {}  # other programs, other speeds

    # ------------------------------------------------------------------ states
    def reset(self) -> None:
        """Forget everything learned: States return to what the seed alone determines."""
        self._states = initial_states(self.seed)
        self._buffers.clear()
        self._init_level = NOT_INITIALIZED
        # Shapes and dtypes of the inputs the model was built with (`summary` uses them).
        self.input_spec: Any = None
        self._fresh_metrics: Any = None
        self._fresh_metrics_known = False

    @property
    def states(self) -> States:
        """The current States (params, net and optimizer states, metric states, rng).

        A value: later steps never delete or change the arrays of States read here, so
        they may be kept (see `elegy.model.buffers`).
        """
        self._buffers.expose()
        return self._states

    @states.setter
    def states(self, value: States) -> None:
        if not isinstance(value, States):
            raise TypeError(f"model.states must be an elegy.States, got {type(value).__name__}")
        self._buffers.expose()  # the caller still holds `value` (placing may keep its arrays)
        self._states = self._placed(value)
        self._init_level = _level_of(value)
        # Fresh metric accumulators are kept while the assigned States have metric states
        # of the same structure (new weights, a restored backup); otherwise the next
        # fit/evaluate builds them again on its first batch, keeping every field there is.
        fresh = self._fresh_metrics
        same = fresh is not None and _structure(value.get("metrics_states")) == _structure(fresh)
        if not same:
            self._forget_fresh_metrics()

    def _forget_fresh_metrics(self) -> None:
        """The metrics (or their structure) changed: the next fit/evaluate builds their
        accumulators again, keeping every other field."""
        self._fresh_metrics, self._fresh_metrics_known = None, False
        self._init_level = min(self._init_level, _level_of(self._states))

    def _commit(self, states: States) -> None:
        """The loops' own write after each step: States a step returned are already
        checked and placed, so they go in without the setter's work."""
        self._states = states

    def _commit_trained(self, states: States, given: States) -> None:
        """Store the States a training step returned from `given`; `given`'s buffers are
        then the loop's alone (unless exposed) and the next training step writes over them."""
        self._states = states
        self._buffers.returned(*given.leaves())

    @property
    def initialized(self) -> bool:
        """Whether every field of States exists (after fit/evaluate or `init(x, y)`)."""
        return self._init_level == FULLY_INITIALIZED

    @property
    def built(self) -> bool:
        """Whether the network's fields exist (after any call that saw data, or `init(x)`)."""
        return self._init_level != NOT_INITIALIZED

    def init(self, x: Any, y: Any = None, sample_weight: Any = None) -> States:
        """Initialize States from one batch, once; later calls change nothing.

        With `y`, the whole chain runs with `initializing=True` (`train_step`, which
        reaches `grad_step`, `test_step` and `pred_step`); with only `x`, `pred_step`
        alone creates the network's fields and the rest are filled by the first
        fit/evaluate. Either way the network parameters depend only on the seed.
        """
        full = y is not None
        self._check_ready("train_step" if full else "pred_step", what="init")
        self._ensure_initialized(self._single_batch(x, y, sample_weight), full)
        return self.states

    def _ensure_initialized(self, batch: Batch, full: bool) -> None:
        level = FULLY_INITIALIZED if full else PREDICT_READY
        if self._init_level >= level and (self._fresh_metrics_known or not full):
            return
        start = initial_states(self.seed)
        entry = "init" if full else "init_pred"
        outputs, created = self._compiled_steps(entry)(start, batch, None)
        if full:  # labels out of range and other faults in the first batch's values
            raise_failed(outputs)
        # However many keys the steps drew while initializing, training starts from the
        # seed's own sequence, so the result never depends on which call came first.
        created = created.update(rng=start.rng)
        self._states = self._placed(self._states.maybe_update(**created) if self._init_level else created)
        self._init_level = max(level, self._init_level)
        self.input_spec = jax.tree_util.tree_map(
            lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype),  # type: ignore[no-untyped-call]
            batch.x,
        )
        if full:  # kept on the host: every epoch and evaluation starts from a copy of them
            self._fresh_metrics = jax.device_get(created.get("metrics_states"))
            self._fresh_metrics_known = True

    def _with_fresh_metrics(self, states: States) -> States:
        """`states` with the metric accumulators of a new epoch (or evaluation)."""
        if self._fresh_metrics is None:
            return states
        return self._placed(states.update(metrics_states=self._fresh_metrics))

    def _placed(self, states: States) -> States:
        """`states` in the distribution's layout (as they are without one): every step
        then sees one input layout and compiles once."""
        if self.distribution is None or self.run_eagerly:
            return states
        placed: States = self.distribution.put_states(states)
        return placed

    def _not_halted(self) -> Any:
        """The flag a training step carries (see `step_wrappers.guarded`), before any step
        set it, placed as the steps return it so the second step does not compile again."""
        if self.distribution is None or self.run_eagerly:
            return np.False_
        return jax.device_put(np.False_, self.distribution.replicated)

    # ------------------------------------------------------------------ steps
    def call_step(self, name: str, **available: Any) -> Any:
        """Call the step `name` with the arguments it declares and check what it returns.

        `rng` is offered as `states.rng` unless given. Default steps use this to call the
        next step down the chain, so overriding any one of them keeps the others working.
        """
        available.setdefault("rng", available["states"].rng)
        result = inject(getattr(self, name), available, what=f"{type(self).__name__}.{name}")
        result = check_step_output(name, result, STEP_RESULTS[name])
        if hasattr(result, "logs"):
            note_logs(result.logs)
        return result

    def _check_ready(self, entry: str, what: str) -> None:
        """Hook for subclasses: raise a clear error if `entry` cannot run; default: no check."""

    def _finish_group(self, states: States, halted: Any) -> States:
        """Hook for subclasses that group batches into one update (gradient accumulation):
        `states` at the end of an epoch, traced inside a compiled step; default: as given."""
        return states

    @property
    def _groups_batches(self) -> bool:
        """Whether `fit` must call `_finish_group` at the end of each epoch."""
        return False

    @property
    def steps_per_execution_chosen(self) -> int | None:
        """The steps each training call runs: `steps_per_execution` if an integer; under
        "auto", what the tuner chose (None until a fit with its data on the device has
        finished the search; where the data stay on the host, calls run one step)."""
        if self.steps_per_execution != AUTO:
            return int(self.steps_per_execution)
        tuner = self._tuners.get("train") or self._tuners.get(HOST + "train")
        return None if tuner is None else tuner.chosen

    def _group_choices(self) -> dict[str, int]:
        """The group size each entry point's tuner chose (for `BackupAndRestore`)."""
        return {entry: tuner.chosen for entry, tuner in self._tuners.items() if tuner.chosen is not None}

    def _adopt_group_choices(self, choices: dict[str, int]) -> None:
        """Take the group sizes a run chose before (a resumed run's) instead of measuring."""
        if self.steps_per_execution == AUTO:
            for entry, chosen in choices.items():
                tuner = GroupTuner.decided(int(chosen))
                tuner.any_size = not entry.startswith(HOST)
                self._tuners[entry] = tuner

    def _plan(
        self, entry: str = "train", source: Any = None, on_device: bool | None = False
    ) -> ExecutionPlan:
        """How the loops feed `entry`'s steps with `source` now. Run eagerly, steps are
        never fused (a debugger sees every one) and stay on one device. In-memory arrays
        go to the device (`on_device`: True, False, or None: see `device_arrays`) on a
        single device. "auto" tunes the group size (`elegy.model.tuning`) for in-memory
        arrays, on the device or from the host; for other sources, and under a
        distribution, it means one step per call."""
        if self.run_eagerly:
            return ExecutionPlan()
        group = self.steps_per_execution
        if self.distribution is not None:
            if on_device:
                raise ValueError(
                    "data_on_device=True is not available with a distribution yet: the batches of "
                    "a distributed fit are placed from the host (pass data_on_device=None or False)"
                )
            return ExecutionPlan(1 if group == AUTO else int(group), self.distribution)
        placed = None if source is None else device_arrays(source, on_device)
        if placed is None:
            if group == AUTO and isinstance(source, ArraySource):
                return ExecutionPlan(tuner=self._tuners.setdefault(HOST + entry, GroupTuner(any_size=False)))
            return ExecutionPlan(1 if group == AUTO else int(group))
        if group == AUTO:
            tuner = self._tuners.setdefault(entry, GroupTuner())
        else:
            tuner = GroupTuner.decided(int(group), capacity=int(group))
        return ExecutionPlan(placed=placed, tuner=tuner)

    @staticmethod
    def _single_batch(x: Any, y: Any, sample_weight: Any) -> Batch:
        x, y, sample_weight, rows = checked_triple(x, y, sample_weight)
        return padded_batch(x, y, sample_weight, rows)

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_compiled_steps"]  # compiled functions belong to this process
        state["_buffers"] = RetiredBuffers()  # spare device memory is not part of a model
        state["_tuners"] = {}  # (searches in progress hold compilations of this process)
        state["_group_choices"] = self._group_choices()  # finished ones are kept
        # Devices belong to the process that holds them: a pickled or saved model comes
        # back undistributed; set `model.distribution` again where it is loaded.
        state["distribution"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        choices = state.pop("_group_choices", {})
        state.setdefault("_tuners", {})
        self.__dict__.update(state)
        self._compiled_steps = CompiledSteps(self)
        self._adopt_group_choices(choices)


def _checked_group(value: Any) -> int | str:
    """`steps_per_execution`: "auto" or an integer >= 1."""
    if value == AUTO:
        return AUTO
    try:
        return check_int(value, "steps_per_execution", 1)
    except ValueError:
        raise ValueError(f'steps_per_execution must be "auto" or an integer >= 1, got {value!r}') from None


def _level_of(states: States) -> int:
    """How far States go: every field (training can start), the network's, or none."""
    if all(states.get(f) is not None for f in ("net_params", "optimizer_states", "metrics_states")):
        return FULLY_INITIALIZED
    return PREDICT_READY if states.get("net_params") is not None else NOT_INITIALIZED


def _structure(tree: Any) -> Any:
    return jax.tree_util.tree_structure(tree)

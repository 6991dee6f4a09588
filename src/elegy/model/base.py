"""`ModelBase`: the loops (fit, evaluate, predict), initialization and the compile cache.

The loops only move data in, call a compiled step and hand logs to callbacks. A compiled
step is a pure function `(States, Batch[, class_weight]) -> result`; the model keeps the
current `States` between calls and nothing else that changes during training.
"""

from __future__ import annotations

import functools
import itertools
import os
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

from elegy import hooks
from elegy.callbacks import CallbackList, History, Logs, ProgbarLogger
from elegy.data.batches import Batch, padded_batch, padded_rows
from elegy.data.prefetch import to_device
from elegy.data.sources import IterableSource, is_batch_iterable, make_source, split_validation
from elegy.data.structure import checked_triple
from elegy.distributed import Distribution, to_host
from elegy.inject import inject
from elegy.model.execution import Execution, executions, fused, step_outputs
from elegy.model.forwarding import over_leaves, with_states
from elegy.model.objectives import class_weight_vector
from elegy.model.retrace import RetraceWarning, changes, message, signature
from elegy.model.steps import GradStep, PredStep, TestStep, TrainStep, check_step_output
from elegy.states import States, advance_rng, initial_states

STEP_RESULTS = {"pred_step": PredStep, "test_step": TestStep, "grad_step": GradStep, "train_step": TrainStep}

# What each compiled entry point runs: (step method, initializing, training).
ENTRY_POINTS = {
    "init": ("train_step", True, True),
    "init_pred": ("pred_step", True, True),
    "train": ("train_step", False, True),
    "test": ("test_step", False, False),
    "pred": ("pred_step", False, False),
}

NOT_INITIALIZED, PREDICT_READY, FULLY_INITIALIZED = 0, 1, 2


def _real_rows(outputs: list[tuple[Any, Execution]]) -> Any:
    """The predictions of the real rows of every batch, as one numpy tree.

    Everything is fetched in one transfer. The rows of all batches are joined first and
    the real ones picked with one boolean index per leaf, not sliced batch by batch: per
    batch Python cost a tenth of a predict step.
    """
    host = to_host([(y_pred, execution.batches.mask) for y_pred, execution in outputs])
    pieces, masks = [], []
    for (y_pred, mask), (_, execution) in zip(host, outputs, strict=True):
        if execution.fused:  # stacked steps: their rows in a row
            y_pred, mask = jax.tree_util.tree_map(lambda a: a.reshape(-1, *a.shape[2:]), (y_pred, mask))
        pieces.append(y_pred)
        masks.append(mask)
    real = np.concatenate(masks).astype(bool)
    return jax.tree_util.tree_map(lambda *leaves: np.concatenate(leaves)[real], *pieces)


def _compiler_options(entry: str) -> dict[str, Any] | None:
    """Initialization runs once: on the CPU, compiling it without XLA's backend
    optimizations takes a quarter of the time (for the benchmark's MLP, 0.4 s against
    1.4 s) and changes nothing that matters for a program run once."""
    if entry in ("init", "init_pred") and jax.default_backend() == "cpu":
        return {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
    return None


def _donated(entry: str) -> bool:
    """Training steps update the States in place: their input buffers are donated to the
    output (no copy of params and optimizer state per step). Other steps share their
    States with the model, so they keep them."""
    return entry == "train"


def _check_all_collected(uncollected: hooks.Collected, step: str) -> None:
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


def _check_verbose(verbose: Any) -> int:
    if verbose == "auto":
        return 1
    if verbose not in (0, 1, 2) or isinstance(verbose, bool):
        raise ValueError(f"verbose must be 0, 1, 2 or 'auto', got {verbose!r}")
    return int(verbose)


def _check_int(value: Any, argument: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{argument} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class ModelBase:
    """Loops, lazy initialization and compilation around the four overridable steps.

    Subclasses provide `pred_step`, `test_step`, `grad_step` and `train_step`
    (`elegy.Model` gives defaults for all four).

    Examples:
        A model with no Haiku module and no optimizer: `predict` needs only `pred_step`,
        which creates its parameters on the first batch and reads them afterwards.

        >>> import elegy, numpy as np
        >>> class Affine(elegy.ModelBase):
        ...     def pred_step(self, x, states, initializing):
        ...         params = {"a": 2.0, "b": 1.0} if initializing else states.net_params
        ...         return params["a"] * x + params["b"], states.update(net_params=params)
        >>> model = Affine()
        >>> model.predict(np.arange(3, dtype=np.float32), batch_size=2).tolist()
        [1.0, 3.0, 5.0]
        >>> model.built, float(model.states.net_params["a"])
        (True, 2.0)
    """

    def __init__(
        self,
        seed: int = 42,
        run_eagerly: bool = False,
        steps_per_execution: int = 1,
        distribution: Distribution | None = None,
    ):
        if distribution is not None and not isinstance(distribution, Distribution):
            raise TypeError(
                "distribution must be an elegy.distributed.DataParallel or ModelParallel (or None), "
                f"got {type(distribution).__name__}"
            )
        self.distribution = distribution
        self.seed = _check_int(seed, "seed", 0)
        self.run_eagerly = bool(run_eagerly)
        self.steps_per_execution = _check_int(steps_per_execution, "steps_per_execution", 1)
        self.stop_training = False
        self.history: History | None = None
        self._compiled: dict[tuple[str, bool, bool], Callable] = {}
        self._log_order: dict[str, tuple[str, ...]] = {}
        self._log_names_seen: list[str] = []
        self._batch_mask: Any = None  # the mask of the batch being traced or run
        self._signatures: dict[str, dict[str, str]] = {}  # each entry's last traced inputs
        self._warn_on_retrace = False  # True in fit after its first epoch
        # Set by BackupAndRestore: (epoch, batch, epoch counter) where fit continues, and
        # what to run once the model is initialized (before any callback sees a batch).
        self._resume_position: tuple[int, int, int] | None = None
        self._after_initialization: list[Callable[[], None]] = []
        self.reset()

    # ------------------------------------------------------------------ states
    def reset(self) -> None:
        """Forget everything learned: States return to what the seed alone determines."""
        self._states = initial_states(self.seed)
        self._init_level = NOT_INITIALIZED
        # Shapes and dtypes of the inputs the model was built with (`summary` uses them).
        self.input_spec: Any = None
        self._fresh_metrics: Any = None
        self._fresh_metrics_known = False

    @property
    def states(self) -> States:
        """The current States (params, net and optimizer states, metric states, rng)."""
        return self._states

    @states.setter
    def states(self, value: States) -> None:
        if not isinstance(value, States):
            raise TypeError(f"model.states must be an elegy.States, got {type(value).__name__}")
        self._states = self._placed(value)
        # Assigned States may hold accumulated metric totals, never fresh ones: the next
        # fit/evaluate initializes (on its first batch) whatever is missing, fresh metric
        # accumulators included, and keeps every field that is already there.
        complete = all(value.get(f) is not None for f in ("net_params", "optimizer_states", "metrics_states"))
        self._init_level = FULLY_INITIALIZED if complete else PREDICT_READY
        self._fresh_metrics, self._fresh_metrics_known = None, False

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
        return self._states

    def _ensure_initialized(self, batch: Batch, full: bool) -> None:
        level = FULLY_INITIALIZED if full else PREDICT_READY
        if self._init_level >= level and (self._fresh_metrics_known or not full):
            return
        start = initial_states(self.seed)
        entry = "init" if full else "init_pred"
        _, created = self._compiled_step(entry)(start, batch, None)
        # However many keys the steps drew while initializing, training starts from the
        # seed's own sequence, so the result never depends on which call came first.
        created = created.update(rng=start.rng)
        self._states = self._placed(self._states.maybe_update(**created) if self._init_level else created)
        self._init_level = max(level, self._init_level)
        self.input_spec = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), batch.x)
        hooks, self._after_initialization = self._after_initialization, []
        for hook in hooks:  # e.g. BackupAndRestore loading its States into the new structure
            hook()
        if full:  # kept on the host: training steps donate (reuse) the buffers of their States
            self._fresh_metrics = jax.device_get(created.get("metrics_states"))
            self._fresh_metrics_known = True

    def _with_fresh_metrics(self, states: States) -> States:
        if self._fresh_metrics is None:
            return states
        return self._placed(states.update(metrics_states=self._fresh_metrics))

    def _placed(self, states: States) -> States:
        """`states` in the distribution's layout (as they are without one): every step
        then sees one input layout and compiles once."""
        if self.distribution is None or self.run_eagerly:
            return states
        return self.distribution.put_states(states)

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
            self._log_names_seen.extend(result.logs)
        return result

    def _check_ready(self, entry: str, what: str) -> None:
        """Hook for subclasses: raise a clear error if `entry` cannot run; default: no check."""

    def _run_entry(self, entry: str, states: States, batch: Batch, class_weight: Any):
        step, initializing, training = ENTRY_POINTS[entry]
        if not self.run_eagerly:  # this Python runs only while JAX traces the step
            self._note_trace(entry, states, batch, class_weight)
        given, states = states, advance_rng(states)
        self._log_names_seen = []
        self._batch_mask = batch.mask
        try:
            with hooks.collecting() as uncollected:  # what no test_step collected
                result = self.call_step(
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
        finally:
            self._batch_mask = None  # never keep a tracer on the model
        if step != "pred_step":
            _check_all_collected(uncollected, step)
        new_states = result.states
        if self.distribution is not None and not self.run_eagerly:
            new_states = self.distribution.constrain_states(new_states, unchanged_from=given)
        if step == "pred_step":
            return result.y_pred, new_states
        # Pytree transformations (jit, grad) return dicts with sorted keys; remember the
        # order in which the innermost step produced each log, for display.
        order = dict.fromkeys(name for name in self._log_names_seen if name in result.logs)
        self._log_order[entry] = (*order, *(name for name in result.logs if name not in order))
        return dict(result.logs), new_states

    def _note_trace(self, entry: str, states: States, batch: Batch, class_weight: Any) -> None:
        arguments = {"states": states, **batch._asdict(), "class_weight": class_weight}
        current, previous = signature(arguments), self._signatures.get(entry)
        self._signatures[entry] = current
        differences = [] if previous is None else changes(previous, current)
        if differences and self._warn_on_retrace:
            warnings.warn(RetraceWarning(message(f"The {entry} step", differences)), stacklevel=2)

    def _compiled_step(self, entry: str, fused_steps: bool = False) -> Callable:
        """The (cached) function for an entry point; jitted unless `run_eagerly`.

        With `fused_steps`, it runs over stacked batches (`steps_per_execution`).
        """
        key = (entry, self.run_eagerly, fused_steps)
        fn = self._compiled.get(key)
        if fn is None:
            run = functools.partial(self._run_entry, entry)
            if self.run_eagerly:
                # The same arrays a compiled step sees: jax arrays, dtypes canonicalized.
                fn = lambda states, batch, class_weight: run(states, *jax.device_put((batch, class_weight)))
            else:
                donated = _donated(entry)
                body = over_leaves(fused(run) if fused_steps else run, changed_only=not donated)
                fn = with_states(
                    jax.jit(
                        body,
                        static_argnums=0,
                        donate_argnums=(1,) if donated else (),
                        compiler_options=_compiler_options(entry),
                    ),
                    changed_only=not donated,
                )
            self._compiled[key] = fn
        return fn

    def _executions(self, source: Any, epoch: int, skip: int = 0) -> Iterable[Execution]:
        """What each compiled call runs over epoch `epoch` of `source`, after its first
        `skip` batches: one batch, or `steps_per_execution` stacked ones (run eagerly,
        steps are never fused: a debugger sees every one)."""
        size = 1 if self.run_eagerly else self.steps_per_execution
        distribution = None if self.run_eagerly else self.distribution
        group = size if distribution is None else 1  # (batches are padded one by one below)
        batches = itertools.islice(source.epoch(epoch), skip, None) if skip else source.epoch(epoch, group)
        # Single batches go with the step's own dispatch; stacked groups are worth a
        # transfer ahead of time in the background (see `to_device`).
        background = size > 1
        if distribution is None:
            return to_device(executions(batches, size), transfer=Execution.to_device, background=background)
        # Rows padded to a multiple of the batch shards (mask False), each batch placed
        # across the mesh: every process transfers its own rows.
        batches = (padded_rows(batch, distribution.padded_size(len(batch.mask))) for batch in batches)
        return to_device(
            executions(batches, size), transfer=distribution.put_execution, always=True, background=background
        )

    def _execute(self, entry: str, states: States, execution: Execution, class_weight: Any):
        """Run `entry` on an execution: `(outputs, states)`, outputs stacked when fused."""
        return self._compiled_step(entry, execution.fused)(states, execution.batches, class_weight)

    def _step_logs(self, entry: str, logs: Any, execution: Execution) -> list[Logs]:
        """One lazily fetched Logs per step of the execution."""
        order = self._log_order.get(entry)
        if not execution.fused:
            return [Logs(logs, order)]
        return Logs.rows(logs, execution.count, order)

    def _last_logs(self, logs: Any, execution: Execution) -> dict[str, Any]:
        """The logs of the execution's last step, still on the device. (Picked once, after
        a loop: indexing stacked logs on the device after every execution cost an op per
        log.)"""
        if not execution.fused:
            return logs
        return jax.tree_util.tree_map(lambda stacked: stacked[execution.count - 1], logs)

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        epochs: int = 1,
        verbose: Any = 1,
        callbacks: Iterable[Any] | None = None,
        validation_split: float = 0.0,
        validation_data: Any = None,
        shuffle: bool = True,
        class_weight: Mapping[int, float] | None = None,
        sample_weight: Any = None,
        initial_epoch: int = 0,
        steps_per_epoch: int | None = None,
        validation_steps: int | None = None,
        validation_batch_size: int | None = None,
        validation_freq: int = 1,
        drop_remainder: bool = False,
    ) -> History:
        """Train for `epochs` epochs; returns the History (also kept as `model.history`).

        Arguments follow Keras's `Model.fit`. `batch_size` defaults to 32. The last,
        partial batch is padded and masked, so it neither recompiles nor biases the logs;
        `drop_remainder=True` skips it instead. A generator or other one-shot iterator needs
        `steps_per_epoch` for more than one epoch; an infinite one always needs it.
        """
        verbose = _check_verbose(verbose)
        epochs = _check_int(epochs, "epochs", 1)
        initial_epoch = _check_int(initial_epoch, "initial_epoch", 0)
        validation_freq = _check_int(validation_freq, "validation_freq", 1)
        batch_size = 32 if batch_size is None else batch_size
        self._check_ready("train_step", what="fit")
        if validation_split and validation_data is None:
            (x, y, sample_weight), validation_data = split_validation(x, y, sample_weight, validation_split)
        train = make_source(
            x,
            y,
            sample_weight,
            batch_size=batch_size,
            shuffle=bool(shuffle),
            seed=self.seed,
            steps=steps_per_epoch,
            steps_argument="steps_per_epoch",
            drop_remainder=bool(drop_remainder),
        )
        if isinstance(train, IterableSource) and train.one_shot and steps_per_epoch is None:
            if epochs - initial_epoch > 1:
                raise ValueError(
                    f"x is a one-shot iterator or generator and fit would run {epochs - initial_epoch} "
                    "epochs: it is exhausted after the first (or never ends, if infinite); pass "
                    "steps_per_epoch, or a re-iterable such as a list or a data loader"
                )
        validation = self._validation_source(
            validation_data, validation_batch_size or batch_size, validation_steps
        )
        weights = class_weight_vector(class_weight)
        class_weights = None if weights is None else np.asarray(weights, np.float32)

        history = History()
        callback_list = self._callback_list(
            callbacks,
            verbose,
            history,
            epochs=epochs,
            steps=train.steps_per_epoch,
            batch_size=batch_size,
            validation=validation is not None,
        )
        self.stop_training = False
        epoch_logs: Mapping[str, Any] = {}
        callback_list.on_train_begin()
        # BackupAndRestore, in on_train_begin, may move the start into an epoch.
        first_epoch, skip, resumed_counter = self._resume_position or (initial_epoch, 0, None)
        self._resume_position = None
        if resumed_counter is not None and first_epoch > initial_epoch:
            # Epochs of a continuing stream (an iterable with steps_per_epoch) are windows
            # of it: draw and drop the windows the interrupted run had trained on.
            train.skip_epochs(first_epoch - initial_epoch)
        if self._after_initialization and first_epoch >= epochs:
            # A backup of a finished run: nothing to train, but build the model so that
            # its restored States are loaded.
            self._ensure_initialized(next(iter(to_device(train.epoch(0)))), full=True)
        try:  # on_train_end runs however fit ends, so writers and files get closed
            for epoch in range(first_epoch, epochs):
                callback_list.on_epoch_begin(epoch)
                counter = int(self._states.get("epoch", 0)) if resumed_counter is None else resumed_counter
                resumed_counter = None  # (restored with the States on the first batch)
                last: tuple[Any, Execution] | None = None  # the last execution and its logs
                step = skip
                for execution in self._executions(train, counter, skip):
                    if last is None:
                        self._ensure_initialized(execution.first(), full=True)
                        if not skip:  # a resumed epoch keeps its restored running metrics
                            self._states = self._with_fresh_metrics(self._states)
                    callback_list.on_train_batch_begin(step)
                    outputs, self._states = self._execute("train", self._states, execution, class_weights)
                    # A fused execution replays its steps to the batch hooks afterwards.
                    for offset, step_logs in enumerate(self._step_logs("train", outputs, execution)):
                        if offset:
                            callback_list.on_train_batch_begin(step + offset)
                        callback_list.on_train_batch_end(step + offset, step_logs)
                    last, step = (outputs, execution), step + execution.count
                    if self.stop_training:
                        break
                if last is None:
                    raise ValueError("fit: the training data produced no batches this epoch")
                logs = self._last_logs(*last)
                skip = 0
                self._states = self._placed(self._states.update(epoch=np.asarray(counter + 1, np.int32)))
                epoch_logs = Logs(logs, self._log_order.get("train"))
                if validation is not None and (epoch + 1) % validation_freq == 0:
                    val_logs = self._test_loop(validation, callback_list)
                    epoch_logs = epoch_logs.merged(val_logs.with_prefix("val_"))
                callback_list.on_epoch_end(epoch, epoch_logs)
                self._warn_on_retrace = True  # every step has been compiled by now
                if self.stop_training:
                    break
        finally:
            self._resume_position, self._after_initialization = None, []  # never outlive this fit
            self._warn_on_retrace = False
            callback_list.on_train_end(epoch_logs)
        self.history = history
        return history

    def _validation_source(self, data: Any, batch_size: int, steps: int | None):
        if data is None:
            return None
        if isinstance(data, tuple):
            if not 1 <= len(data) <= 3:
                raise ValueError(
                    "validation_data must be (x, y) or (x, y, sample_weight) or an iterable "
                    f"of batches; got a tuple of length {len(data)}"
                )
            vx, vy, vw = (list(data) + [None, None])[:3]
            names = ("validation_data[0]", "validation_data[1]", "validation_data[2]")
            return make_source(
                vx, vy, vw, batch_size=batch_size, steps=steps, names=names, steps_argument="validation_steps"
            )
        if is_batch_iterable(data, None):
            return make_source(
                data,
                batch_size=batch_size,
                steps=steps,
                steps_argument="validation_steps",
                names=("validation_data", "y", "sample_weight"),
            )
        raise TypeError(
            "validation_data must be a tuple (x, y[, sample_weight]) or an iterable of "
            f"batches, got {type(data).__name__}"
        )

    def _callback_list(self, callbacks, verbose: int, *extra: Any, **params: Any) -> CallbackList:
        items: list[Any] = list(callbacks or [])
        if verbose:
            items.insert(0, ProgbarLogger(verbose))
        items.extend(extra)
        return CallbackList(items, model=self, verbose=verbose, **params)

    # ------------------------------------------------------------------ evaluate
    def evaluate(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        verbose: Any = 1,
        sample_weight: Any = None,
        steps: int | None = None,
        callbacks: Iterable[Any] | None = None,
    ) -> dict[str, float]:
        """Loss and metrics over the whole data set, as a dict of floats.

        The values are exact weighted means over every sample. `model.states` is left as
        it was.
        """
        verbose = _check_verbose(verbose)
        self._check_ready("test_step", what="evaluate")
        source = make_source(
            x, y, sample_weight, batch_size=32 if batch_size is None else batch_size, steps=steps
        )
        callback_list = self._callback_list(callbacks, verbose, steps=source.steps_per_epoch)
        return dict(self._test_loop(source, callback_list))

    def _test_loop(self, source: Any, callback_list: CallbackList) -> Logs:
        callback_list.on_test_begin()
        last: tuple[Any, Execution] | None = None  # the last execution and its logs
        states, step = self._states, 0
        for execution in self._executions(source, 0):
            if last is None:
                self._ensure_initialized(execution.first(), full=True)
                states = self._with_fresh_metrics(self._states)
            callback_list.on_test_batch_begin(step)
            outputs, states = self._execute("test", states, execution, None)
            for offset, step_logs in enumerate(self._step_logs("test", outputs, execution)):
                if offset:
                    callback_list.on_test_batch_begin(step + offset)
                callback_list.on_test_batch_end(step + offset, step_logs)
            last, step = (outputs, execution), step + execution.count
        if last is None:
            raise ValueError("evaluate: the data produced no batches")
        result = Logs(self._last_logs(*last), self._log_order.get("test"))
        callback_list.on_test_end(result)
        return result

    # ------------------------------------------------------------------ predict
    def predict(
        self,
        x: Any,
        batch_size: int | None = None,
        verbose: Any = 0,
        steps: int | None = None,
        callbacks: Iterable[Any] | None = None,
    ) -> Any:
        """Predictions for every sample of `x`, as numpy arrays in the module's structure."""
        verbose = _check_verbose(verbose)
        self._check_ready("pred_step", what="predict")
        source = make_source(x, batch_size=32 if batch_size is None else batch_size, steps=steps)
        callback_list = self._callback_list(callbacks, verbose, steps=source.steps_per_epoch)
        callback_list.on_predict_begin()
        outputs: list[tuple[Any, Execution]] = []
        states, step = None, 0
        for execution in self._executions(source, 0):
            if states is None:
                self._ensure_initialized(execution.first(), full=False)
                states = self._states
            callback_list.on_predict_batch_begin(step)
            y_pred, states = self._execute("pred", states, execution, None)
            if callback_list.callbacks:  # (slicing a fused execution per step costs dispatches)
                for offset, batch_pred in enumerate(step_outputs(y_pred, execution)):
                    if offset:
                        callback_list.on_predict_batch_begin(step + offset)
                    callback_list.on_predict_batch_end(step + offset, {"outputs": batch_pred})
            outputs.append((y_pred, execution))
            step += execution.count
        if not outputs:
            raise ValueError("predict: x produced no batches")
        callback_list.on_predict_end()
        return _real_rows(outputs)

    # ------------------------------------------------------------------ single batches
    def train_on_batch(
        self,
        x: Any,
        y: Any = None,
        sample_weight: Any = None,
        class_weight: Mapping[int, float] | None = None,
    ) -> dict[str, float]:
        """One training step on one batch; returns that batch's logs as floats."""
        self._check_ready("train_step", what="train_on_batch")
        batch = self._single_batch(x, y, sample_weight)
        self._ensure_initialized(batch, full=True)
        weights = class_weight_vector(class_weight)
        weights = None if weights is None else np.asarray(weights, np.float32)
        states = self._with_fresh_metrics(self._states)
        logs, self._states = self._compiled_step("train")(states, batch, weights)
        return dict(Logs(logs, self._log_order.get("train")))

    def test_on_batch(self, x: Any, y: Any = None, sample_weight: Any = None) -> dict[str, float]:
        """Loss and metrics of one batch, as floats; `model.states` is left as it was."""
        self._check_ready("test_step", what="test_on_batch")
        batch = self._single_batch(x, y, sample_weight)
        self._ensure_initialized(batch, full=True)
        logs, _ = self._compiled_step("test")(self._with_fresh_metrics(self._states), batch, None)
        return dict(Logs(logs, self._log_order.get("test")))

    def predict_on_batch(self, x: Any) -> Any:
        """Predictions for one batch, as numpy arrays."""
        self._check_ready("pred_step", what="predict_on_batch")
        batch = self._single_batch(x, None, None)
        self._ensure_initialized(batch, full=False)
        y_pred, _ = self._compiled_step("pred")(self._states, batch, None)
        return jax.device_get(y_pred)

    @staticmethod
    def _single_batch(x: Any, y: Any, sample_weight: Any) -> Batch:
        x, y, sample_weight, rows = checked_triple(x, y, sample_weight)
        return padded_batch(x, y, sample_weight, rows)

    # ------------------------------------------------------------------ saving
    def save(self, path: str | os.PathLike) -> Path:
        """Save the whole model to the directory `path`; `elegy.load(path)` restores it.

        The States go to Orbax array files, the model definition to a cloudpickle file.
        Saving is atomic: until it returns, `path` still holds the previous save, intact.
        Returns the folder of the version written.
        """
        from elegy.serialization import save_model

        return save_model(self, path)

    def save_weights(self, path: str | os.PathLike) -> Path:
        """Save only the States (params, net and optimizer states, metrics, rng, epoch).

        Reading them back with `load_weights` never runs code from the files.
        """
        from elegy.serialization import save_weights

        return save_weights(self, path)

    def load_weights(self, path: str | os.PathLike) -> None:
        """Replace the States with those saved at `path` by `save_weights` or `save`.

        The model must be built (`init`, or any call that saw data). Every saved leaf must
        match this model's in path, shape and dtype; otherwise a ValueError lists the first
        differences and the States are left unchanged. Fields this model has not built yet
        (the optimizer state of a predict-only model) are skipped with a warning.
        """
        from elegy.serialization import load_weights

        load_weights(self, path)

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_compiled"] = {}
        # Devices belong to the process that holds them: a pickled or saved model comes
        # back undistributed; set `model.distribution` again where it is loaded.
        state["distribution"] = None
        return state

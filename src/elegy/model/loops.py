"""The loops: `fit`, `evaluate`, `predict` and the single-batch calls, as functions of a model.

A loop only moves data in, calls a compiled entry point and hands logs to callbacks:

    source --ExecutionPlan--> executions --CompiledSteps--> (outputs, States) --> Logs --> callbacks

The model keeps the current States between calls (`ModelBase` exposes these functions as
its methods); the plan decides how batches are grouped and placed, the entry points how a
step is compiled, and these loops the order of the callbacks' hooks, which follows Keras.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from elegy.arguments import check_int, check_verbose
from elegy.callbacks import CallbackList, History, Logs, ProgbarLogger, ResumePoint, TerminateOnNaN
from elegy.data.prefetch import to_device
from elegy.data.sources import IterableSource, make_source, split_validation, validation_source
from elegy.model.core import ModelCore
from elegy.model.execution import AnyExecution, last_step, real_rows, step_logs, step_outputs
from elegy.model.objectives import class_weight_vector
from elegy.model.results import Result, as_returned, checked_validation_freq, validates
from elegy.naming import VALIDATION_PREFIX
from elegy.states import States

DEFAULT_BATCH_SIZE = 32  # Keras's, wherever batch_size is None


def fit(
    model: ModelCore,
    x: Any = None,
    y: Any = None,
    batch_size: int | None = None,
    epochs: int = 1,
    verbose: Any = "auto",
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
    validation_freq: int | Sequence[int] = 1,
    drop_remainder: bool = False,
    data_on_device: bool | None = None,
) -> History:
    """Train for `epochs` epochs; returns the History (also kept as `model.history`).

    Arguments follow Keras's `Model.fit`. `batch_size` defaults to 32. The last,
    partial batch is padded and masked, so it neither recompiles nor biases the logs;
    `drop_remainder=True` skips it instead. A generator or other one-shot iterator needs
    `steps_per_epoch` for more than one epoch; an infinite one always needs it.

    In-memory arrays (training and validation) are placed on the device once and each
    batch is gathered there, when they take at most half its free memory
    (`elegy.data.resident`); `data_on_device=True` or `False` forces either way. The
    batches and the results are the same bits either way.

    A callback may resume an interrupted run (`Callback.resume_point`, as
    `BackupAndRestore` does): `fit` then starts at the epoch and batch it names.
    """
    verbose = check_verbose(verbose)
    epochs = check_int(epochs, "epochs", 1)
    initial_epoch = check_int(initial_epoch, "initial_epoch", 0)
    validation_every = checked_validation_freq(validation_freq)
    batch_size = DEFAULT_BATCH_SIZE if batch_size is None else batch_size
    model._check_ready("train_step", what="fit")
    if validation_split and validation_data is None:
        (x, y, sample_weight), validation_data = split_validation(x, y, sample_weight, validation_split)
    train = make_source(
        x,
        y,
        sample_weight,
        batch_size=batch_size,
        shuffle=bool(shuffle),
        seed=model.seed,
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
    validation = validation_source(validation_data, validation_batch_size or batch_size, validation_steps)
    weights = class_weight_vector(class_weight)
    class_weights = None if weights is None else np.asarray(weights, np.float32)

    history = History()
    callback_list = _callback_list(
        model,
        callbacks,
        verbose,
        history,
        epochs=epochs,
        steps=train.steps_per_epoch,
        batch_size=batch_size,
        validation=validation is not None,
    )
    model.stop_training = False
    epoch_logs: Mapping[str, Any] = {}
    callback_list.on_train_begin()
    point = callback_list.resume_point() or ResumePoint(initial_epoch)
    skip, resumed_counter, restore = point.batch, point.epoch_counter, point.restore
    if restore is not None and model.built:
        model.states, restore = restore(model.states), None
    if resumed_counter is not None and point.epoch > initial_epoch:
        # Epochs of a continuing stream (an iterable with steps_per_epoch) are windows
        # of it: draw and drop the windows the interrupted run had trained on.
        train.skip_epochs(point.epoch - initial_epoch)
    if restore is not None and point.epoch >= epochs:
        # A backup of a finished run: nothing to train, but build the model so that its
        # restored States are loaded.
        model._ensure_initialized(next(iter(to_device(train.epoch(0)))), full=True)
        model.states = restore(model.states)
    compiled, plan = model._compiled_steps, model._plan("train", train, data_on_device)
    halted: Any = model._not_halted()  # set on the device by the first non-finite step (see `guarded`)
    # From its first batch: a batch that grows in the first epoch compiles again as surely
    # as one in a later epoch. Compared with this fit's traces only: a new batch size in a
    # new call is the user's choice, not a surprise.
    compiled.forget_signatures()
    compiled.warn_on_retrace = True
    try:  # on_train_end runs however fit ends, so writers and files get closed
        for epoch in range(point.epoch, epochs):
            callback_list.on_epoch_begin(epoch)
            counter = int(model._states.get("epoch", 0)) if resumed_counter is None else resumed_counter
            resumed_counter = None  # (restored with the States on the first batch)
            last: tuple[Any, AnyExecution] | None = None  # the last execution and its logs
            step = skip
            for execution in plan.executions(train, counter, skip):
                if last is None:
                    model._ensure_initialized(execution.first(), full=True)
                    if restore is not None:  # before any callback sees a batch
                        model.states, restore = restore(model.states), None
                    if not skip:  # a resumed epoch keeps its restored running metrics
                        model._commit(model._with_fresh_metrics(model._states))
                callback_list.on_train_batch_begin(step)
                given = model._states
                (outputs, halted), states = plan.run(
                    compiled, "train", given, execution, class_weights, halted
                )
                model._commit_trained(states, given)
                logs = step_logs(outputs, execution, compiled.log_order("train"))
                _replay(callback_list.on_train_batch_begin, callback_list.on_train_batch_end, step, logs)
                last, step = (outputs, execution), step + execution.count
                if model.stop_training:
                    break
            if last is None:
                raise ValueError("fit: the training data produced no batches this epoch")
            if model._groups_batches:  # before validation and checkpoints see the params
                model._commit(compiled.finish_group(model._states, halted))
            skip = 0
            model._commit(model._placed(model._states.update(epoch=np.asarray(counter + 1, np.int32))))
            epoch_logs = Logs(last_step(*last), compiled.log_order("train"))
            if validation is not None and validates(validation_every, epoch):
                val_logs = test_loop(model, validation, callback_list, data_on_device)
                epoch_logs = epoch_logs.merged(val_logs.with_prefix(VALIDATION_PREFIX))
            callback_list.on_epoch_end(epoch, epoch_logs)
            if bool(halted):  # (the epoch's logs have been read: no extra wait)
                _stop_on_non_finite(model, epoch, callback_list)
            if model.stop_training:
                break
    finally:
        compiled.warn_on_retrace = False
        callback_list.params["steps_per_execution"] = plan.chosen
        model._buffers.clear()  # spare copies of the States are needed only while training
        callback_list.on_train_end(epoch_logs)
    model.history = history
    return history


def evaluate(
    model: ModelCore,
    x: Any = None,
    y: Any = None,
    batch_size: int | None = None,
    verbose: Any = "auto",
    sample_weight: Any = None,
    steps: int | None = None,
    callbacks: Iterable[Any] | None = None,
    return_dict: bool = True,
    data_on_device: bool | None = None,
) -> Result:
    """Loss and metrics over the whole data set, as a dict of floats (`return_dict=False`:
    Keras's list of their values in the order of the logs, the loss first; one value alone).

    The values are exact weighted means over every sample, from fresh metric
    accumulators. The States the test step returns are kept, their rng on the evaluation
    stream (`eval_rng`), the model's metric accumulators as they were: with the default
    steps, params, net states and optimizer states are left bit-identical.
    `data_on_device` as in `fit`.
    """
    verbose = check_verbose(verbose)
    model._check_ready("test_step", what="evaluate")
    batch_size = DEFAULT_BATCH_SIZE if batch_size is None else batch_size
    source = make_source(x, y, sample_weight, batch_size=batch_size, steps=steps)
    callback_list = _callback_list(model, callbacks, verbose, steps=source.steps_per_epoch)
    return as_returned(test_loop(model, source, callback_list, data_on_device), return_dict)


def test_loop(
    model: ModelCore, source: Any, callback_list: CallbackList, data_on_device: bool | None
) -> Logs:
    """One pass of the test step over `source`, from fresh metrics; the model keeps the
    States it returns but its own metric accumulators (see `evaluate`)."""
    compiled, plan = model._compiled_steps, model._plan("test", source, data_on_device)
    callback_list.on_test_begin()
    last: tuple[Any, AnyExecution] | None = None  # the last execution and its logs
    states, step = model._states, 0
    for execution in plan.executions(source, 0):
        if last is None:
            model._ensure_initialized(execution.first(), full=True)
            states = model._with_fresh_metrics(model._states)
        callback_list.on_test_batch_begin(step)
        outputs, states = plan.run(compiled, "test", states, execution, None)
        logs = step_logs(outputs, execution, compiled.log_order("test"))
        _replay(callback_list.on_test_batch_begin, callback_list.on_test_batch_end, step, logs)
        last, step = (outputs, execution), step + execution.count
    if last is None:
        raise ValueError("evaluate: the data produced no batches")
    model._commit(_keeping_metrics(states, model._states))
    result = Logs(last_step(*last), compiled.log_order("test"))
    callback_list.on_test_end(result)
    return result


def predict(
    model: ModelCore,
    x: Any,
    batch_size: int | None = None,
    verbose: Any = "auto",
    steps: int | None = None,
    callbacks: Iterable[Any] | None = None,
    data_on_device: bool | None = None,
) -> Any:
    """Predictions for every sample of `x`, as numpy arrays in the module's structure.

    The model keeps the States the pred step returns, their rng on the evaluation stream.
    `data_on_device` as in `fit`.
    """
    verbose = check_verbose(verbose)
    model._check_ready("pred_step", what="predict")
    batch_size = DEFAULT_BATCH_SIZE if batch_size is None else batch_size
    source = make_source(x, batch_size=batch_size, steps=steps)
    callback_list = _callback_list(model, callbacks, verbose, steps=source.steps_per_epoch)
    compiled, plan = model._compiled_steps, model._plan("pred", source, data_on_device)
    callback_list.on_predict_begin()
    outputs: list[tuple[Any, AnyExecution]] = []
    states: States | None = None
    step = 0
    for execution in plan.executions(source, 0):
        if states is None:
            model._ensure_initialized(execution.first(), full=False)
            states = model._states
        callback_list.on_predict_batch_begin(step)
        y_pred, states = plan.run(compiled, "pred", states, execution, None)
        if callback_list.callbacks:  # (slicing a fused execution per step costs dispatches)
            per_step = [{"outputs": batch_pred} for batch_pred in step_outputs(y_pred, execution)]
            _replay(callback_list.on_predict_batch_begin, callback_list.on_predict_batch_end, step, per_step)
        outputs.append((y_pred, execution))
        step += execution.count
    if states is None:
        raise ValueError("predict: x produced no batches")
    model._commit(states)
    callback_list.on_predict_end()
    return real_rows(outputs)


def train_on_batch(
    model: ModelCore,
    x: Any,
    y: Any = None,
    sample_weight: Any = None,
    class_weight: Mapping[int, float] | None = None,
    return_dict: bool = True,
) -> Result:
    """One training step on one batch; returns that batch's logs as floats (`return_dict`
    as in `evaluate`)."""
    model._check_ready("train_step", what="train_on_batch")
    batch = model._single_batch(x, y, sample_weight)
    model._ensure_initialized(batch, full=True)
    vector = class_weight_vector(class_weight)
    weights = None if vector is None else np.asarray(vector, np.float32)
    given = model._with_fresh_metrics(model._states)
    (logs, _), states = model._compiled_steps("train")(given, batch, weights, model._not_halted())
    model._commit_trained(states, given)
    return as_returned(Logs(logs, model._compiled_steps.log_order("train")), return_dict)


def test_on_batch(
    model: ModelCore, x: Any, y: Any = None, sample_weight: Any = None, return_dict: bool = True
) -> Result:
    """Loss and metrics of one batch, as floats (`return_dict` as in `evaluate`); the
    States are kept as `evaluate` keeps them."""
    model._check_ready("test_step", what="test_on_batch")
    batch = model._single_batch(x, y, sample_weight)
    model._ensure_initialized(batch, full=True)
    logs, states = model._compiled_steps("test")(model._with_fresh_metrics(model._states), batch, None)
    model._commit(_keeping_metrics(states, model._states))
    return as_returned(Logs(logs, model._compiled_steps.log_order("test")), return_dict)


def predict_on_batch(model: ModelCore, x: Any) -> Any:
    """Predictions for one batch, as numpy arrays; the States are kept as `predict` keeps them."""
    model._check_ready("pred_step", what="predict_on_batch")
    batch = model._single_batch(x, None, None)
    model._ensure_initialized(batch, full=False)
    y_pred, states = model._compiled_steps("pred")(model._states, batch, None)
    model._commit(states)
    return jax.device_get(y_pred)


def _stop_on_non_finite(model: ModelCore, epoch: int, callback_list: CallbackList) -> None:
    """A step of `epoch` had a non-finite loss or params: its update and every later one
    were discarded on the device, so training can only stop (with a word, unless a
    TerminateOnNaN asked for exactly that)."""
    model.stop_training = True
    if not any(isinstance(callback, TerminateOnNaN) for callback in callback_list.callbacks):
        warnings.warn(
            f"fit stopped in epoch {epoch}: a training step had a non-finite loss or params; "
            "that update and every later one were discarded, so model.states are those before "
            "it. Lower the learning rate, check the data, or add elegy.callbacks.TerminateOnNaN "
            "to stop without this warning",
            RuntimeWarning,
            stacklevel=3,
        )


def _keeping_metrics(returned: States, current: States) -> States:
    """What an evaluation leaves in the model: the States its test step `returned`, with
    the `current` metric accumulators (an evaluation's own are fresh, reported in its logs,
    and never mixed into training's)."""
    if "metrics_states" not in returned:
        return returned
    return returned.update(metrics_states=current.get("metrics_states"))


def _replay(
    begin: Callable[[int], None],
    end: Callable[[int, Any], None],
    first: int,
    per_step: Sequence[Any],
) -> None:
    """The batch hooks of one execution, step by step. The `begin` of its first step ran
    before the call; a fused execution's other steps ran inside it, so their `begin` and
    `end` come afterwards, in order (Keras calls the hooks once per execution instead)."""
    for offset, logs in enumerate(per_step):
        if offset:
            begin(first + offset)
        end(first + offset, logs)


def _callback_list(
    model: ModelCore, callbacks: Iterable[Any] | None, verbose: int, *extra: Any, **params: Any
) -> CallbackList:
    """The user's callbacks, then `extra` (History), then a progress bar (with `verbose`,
    unless the user gave one), in Keras's order: the bar and History see what the user's
    callbacks added to the logs."""
    items: list[Any] = [*(callbacks or []), *extra]
    if verbose and not any(isinstance(item, ProgbarLogger) for item in items):
        items.append(ProgbarLogger(verbose))
    return CallbackList(items, model=model, verbose=verbose, **params)

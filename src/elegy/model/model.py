"""`Model`: the default step chain on a Haiku module, with losses, metrics and optax.

    pred_step  <-  test_step  <-  grad_step  <-  train_step

Each default calls the one to its left through `call_step`, so a subclass may override
any single step (declaring only the parameters it uses) and the others keep working.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import jax
import optax

from elegy import hooks
from elegy.arguments import check_int
from elegy.distributed import Distribution
from elegy.learning_rates import injected_learning_rate
from elegy.model import accumulation, precision
from elegy.model.base import ModelBase
from elegy.model.context import batch_mask, current_step
from elegy.model.input_errors import naming_input_errors
from elegy.model.objectives import Objectives, with_class_weight
from elegy.model.readiness import NO_LOSS, NO_MODULE, NO_OPTIMIZER, check_ready, checked_optimizer, shapes_of
from elegy.model.steps import GradStep, PredStep, TestStep, TrainStep
from elegy.module import PureModule, to_pure_module
from elegy.states import States
from elegy.summary import summary_table


class Model(ModelBase):
    """A Keras-like model around a Haiku network.

    Args:
        module: a Haiku forward function, an `hk.Module` subclass or factory, or an
            `hk.Transformed(WithState)`; may be None when `pred_step`/`test_step` are
            overridden.
        loss: a loss object, a function `(y_true, y_pred)`, a name, or a list/dict of them
            (summed; each also logged).
        metrics: a metric, a function `(y_true, y_pred)`, a name such as `"accuracy"`, or a
            list/dict of them.
        optimizer: an optax `GradientTransformation`; needed by the default `train_step`.
        seed: every random choice (initialization, dropout, shuffling) derives from it.
        run_eagerly: run the steps uncompiled, for debugging with prints and breakpoints.
        steps_per_execution: how many steps one compiled call runs. "auto" (the
            default) measures it during the first executions of the first fit (and
            evaluate, predict) whose arrays live on the device, and keeps the choice
            (`steps_per_execution_chosen`); it fuses steps only where the fused program
            computes the same bits as the single step, so the choice never changes a
            result. An integer fuses that many, which removes the per-step Python and
            dispatch overhead of small models (results those of step by step up to float
            rounding). Batch callbacks still see every step, replayed after each call.
        distribution: spread the steps over several devices (and hosts):
            `elegy.distributed.DataParallel()` or `ModelParallel(...)`; logged numbers
            stay those of the whole global batch.
        dtype_policy: "float32" (the default), "mixed_bfloat16", "mixed_float16" (with
            dynamic loss scaling) or a `jmp.Policy`: params stay float32, the forward
            pass runs in the compute dtype, predictions and gradients are float32
            (`elegy.model.precision`, which also has the helpers for custom steps).
        ema_decay: keep an exponential moving average of the params in
            `states.ema_params`, updated after every optimizer update with this decay
            (e.g. 0.999; `elegy.model.ema`). None (the default): no average.
        evaluate_with_ema: with `ema_decay`, evaluate, predict, fit's validation and
            `export` use the average in place of the params (the default); False: the
            params themselves.
        gradient_accumulation_steps: K > 1 makes every K batches one optimizer update,
            with the gradient one batch of all their real rows would give (exact with a
            padded last batch; a group an epoch leaves partial is applied at its end;
            `elegy.model.accumulation`). Logs and BatchNorm statistics stay per batch.

    Examples:
        >>> import elegy, haiku as hk, optax, numpy as np
        >>> model = elegy.Model(
        ...     module=lambda x: hk.nets.MLP([16, 3])(x),
        ...     loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
        ...     metrics=["accuracy"],
        ...     optimizer=optax.adam(1e-2),
        ... )
        >>> x, y = np.random.rand(64, 4).astype("float32"), np.random.randint(0, 3, 64)
        >>> history = model.fit(x, y, epochs=2, verbose=0)
        >>> sorted(history.history)
        ['accuracy', 'loss']
    """

    def __init__(
        self,
        module: Any = None,
        loss: Any = None,
        metrics: Any = None,
        optimizer: optax.GradientTransformation | None = None,
        seed: int = 42,
        run_eagerly: bool = False,
        steps_per_execution: int | str = "auto",
        distribution: Distribution | None = None,
        dtype_policy: Any = "float32",
        ema_decay: float | None = None,
        evaluate_with_ema: bool = True,
        gradient_accumulation_steps: int = 1,
    ):
        self._module = module
        self._loss, self._metrics = loss, metrics
        self._optimizer = checked_optimizer(optimizer)
        self._pure_module: PureModule | None = None if module is None else to_pure_module(module)
        self._objectives = Objectives(loss, metrics)
        self._dtype_policy, self._precision = dtype_policy, precision.checked_policy(dtype_policy)
        self._accumulation_steps = accumulation.checked_steps(gradient_accumulation_steps)
        super().__init__(
            seed=seed,
            run_eagerly=run_eagerly,
            steps_per_execution=steps_per_execution,
            distribution=distribution,
            ema_decay=ema_decay,
            evaluate_with_ema=evaluate_with_ema,
        )

    # ------------------------------------------------------------------ configuration
    # Each of these is baked into the compiled steps: assigning one rebuilds them.
    @property
    def module(self) -> Any:
        """The Haiku network; fixed once the model is built (its params depend on it)."""
        return self._module

    @module.setter
    def module(self, module: Any) -> None:
        if self.built:
            raise ValueError(
                "module cannot be replaced once the model is built: its params belong to the "
                "old network. Create a new Model, or call model.reset() first"
            )
        self._pure_module = None if module is None else to_pure_module(module)
        self._module = module
        self._recompile()

    @property
    def dtype_policy(self) -> Any:
        """The mixed-precision policy, as given; fixed when the model is created."""
        return self._dtype_policy

    @property
    def gradient_accumulation_steps(self) -> int:
        """How many batches make one optimizer update; fixed when the model is created
        (its States hold the sums from the start)."""
        return self._accumulation_steps

    @property
    def optimizer(self) -> optax.GradientTransformation | None:
        """The optax optimizer. A new one takes effect on the next step, from a fresh
        state for the current params (with a warning when there was one to replace)."""
        return self._optimizer

    @optimizer.setter
    def optimizer(self, optimizer: optax.GradientTransformation | None) -> None:
        self._optimizer = checked_optimizer(optimizer)
        self._recompile()
        params = self._states.get("net_params")
        if self._states.get("optimizer_states") is not None and params is not None:
            warnings.warn(
                "model.optimizer replaced: its state starts fresh for the current params "
                "(the old optimizer's moments and step count are dropped)",
                stacklevel=2,
            )
            fresh = None if optimizer is None else optimizer.init(params)
            self._commit(self._placed(self._states.update(optimizer_states=fresh)))

    @property
    def loss(self) -> Any:
        """The loss(es); a new value takes effect on the next step."""
        return self._loss

    @loss.setter
    def loss(self, loss: Any) -> None:
        self._objectives, self._loss = Objectives(loss, self._metrics), loss
        self._renew_metrics()

    @property
    def metrics(self) -> Any:
        """The metrics; a new value takes effect on the next step (accumulators rebuilt)."""
        return self._metrics

    @metrics.setter
    def metrics(self, metrics: Any) -> None:
        self._objectives, self._metrics = Objectives(self._loss, metrics), metrics
        self._renew_metrics()

    def _renew_metrics(self) -> None:
        """New objectives have accumulators of their own: the next fit or evaluate builds
        them (and only them) on its first batch."""
        self._recompile()
        if self._states.get("metrics_states") is not None:
            self._commit(self._states.update(metrics_states=None))
            self._forget_fresh_metrics()

    # ------------------------------------------------------------------ the chain
    def pred_step(self, x: Any, states: States, initializing: bool, training: bool) -> PredStep:
        """Run the Haiku module; on initialization, create its params and state.

        Its random keys (dropout) come from `states.rng`. BatchNorm statistics (Haiku
        state) are updated only in training steps, and never by initialization.
        """
        module = self._require_module()
        rng = states.rng
        with naming_input_errors(x, initializing):
            if initializing:
                # A key of its own: the initial parameters depend on the seed alone.
                params, net_states = module.init(
                    jax.random.fold_in(jax.random.PRNGKey(self.seed), 0), x, training
                )
            else:
                params, net_states = states.net_params, states.net_states
            y_pred, updated = precision.applied(
                self._precision, module.apply, params, net_states, rng.next(), x, training
            )
        if training and not initializing:
            net_states = updated
        return PredStep(y_pred, states.update(net_params=params, net_states=net_states))

    def test_step(
        self,
        x: Any,
        y_true: Any,
        sample_weight: Any,
        class_weight: Any,
        states: States,
        initializing: bool,
        training: bool,
        mask: Any = None,
        rng: Any = None,
    ) -> TestStep:
        """Predict, compute the loss terms and update the running loss and metric means.

        Values that the forward pass reports with `elegy.add_loss` / `elegy.add_metric`
        are collected here: added losses join the total, and both are logged.
        """
        if not self._objectives.has_loss:
            raise ValueError(NO_LOSS)
        if mask is None and current_step() is not None:
            mask = batch_mask()  # an override called super() without it: the batch's own
        with hooks.collecting() as added:
            y_pred, states = self.call_step(
                "pred_step", x=x, states=states, initializing=initializing, training=training, mask=mask
            )
        weights = with_class_weight(sample_weight, class_weight, y_true)
        objectives = self._objectives
        total, terms, added_metrics = objectives.batch_terms(
            y_true, y_pred, weights, mask, added, x=x, states=states
        )
        metrics_states = states.get("metrics_states")
        if initializing or metrics_states is None:
            metrics_states = objectives.init_states(terms, added_metrics)
        if not initializing:
            metrics_states = objectives.update_states(
                metrics_states, y_true, y_pred, weights, mask, total, terms, added_metrics
            )
        return TestStep(total, objectives.logs(metrics_states), states.update(metrics_states=metrics_states))

    def grad_step(
        self,
        x: Any,
        y_true: Any,
        sample_weight: Any,
        class_weight: Any,
        states: States,
        initializing: bool,
        training: bool,
        mask: Any = None,
        rng: Any = None,
    ) -> GradStep:
        """`test_step` plus the gradient of its loss with respect to `states.net_params`."""
        args = dict(
            x=x,
            y_true=y_true,
            sample_weight=sample_weight,
            class_weight=class_weight,
            initializing=initializing,
            training=training,
            mask=mask,
        )
        if initializing:
            loss, logs, states = self.call_step("test_step", states=states, **args)
            return GradStep(loss, logs, states, None)

        def loss_fn(params: Any) -> tuple[Any, tuple[Any, Any, States]]:
            loss, logs, new_states = self.call_step(
                "test_step", states=states.update(net_params=params), **args
            )
            return precision.scaled_loss(loss, states), (loss, logs, new_states)

        (_, (loss, logs, new_states)), grads = jax.value_and_grad(loss_fn, has_aux=True)(states.net_params)
        grads = precision.unscaled_grads(grads, states)
        # value_and_grad hands back a copy of the rng; keep the caller's sequence (which the
        # inner steps advanced in place) so that it and `states.rng` stay one object.
        return GradStep(loss, logs, new_states.update(rng=states.rng), grads)

    def train_step(
        self,
        x: Any,
        y_true: Any,
        sample_weight: Any,
        class_weight: Any,
        states: States,
        initializing: bool,
        training: bool,
        mask: Any = None,
        rng: Any = None,
    ) -> TrainStep:
        """`grad_step` plus one optax update; on initialization, the optimizer's state."""
        _, logs, states, grads = self.call_step(
            "grad_step",
            x=x,
            y_true=y_true,
            sample_weight=sample_weight,
            class_weight=class_weight,
            states=states,
            initializing=initializing,
            training=training,
            mask=mask,
        )
        if initializing:
            optimizer_states = None if self.optimizer is None else self.optimizer.init(states.net_params)
            scale = precision.initial_loss_scale(self._precision)
            extra = {} if scale is None else {precision.LOSS_SCALE: scale}
            if self._accumulation_steps > 1:
                extra[accumulation.FIELD] = accumulation.empty(states.net_params)
            return TrainStep(logs, states.update(optimizer_states=optimizer_states, **extra))
        if self.optimizer is None:
            raise ValueError(NO_OPTIMIZER)
        if self._accumulation_steps > 1:
            if mask is None and current_step() is not None:
                mask = batch_mask()  # (an override called super() without it)
            rows, finite = accumulation.real_rows(mask, x), precision.finite_gradients(grads, states)
            updated = accumulation.accumulated(
                states, grads, rows, self._accumulation_steps, self._updated, finite
            )
            updated = precision.with_adjusted_scale(finite, updated, states)
        else:
            updated = precision.if_finite(grads, self._updated(grads, states), states)
        learning_rate = injected_learning_rate(updated.optimizer_states)
        if learning_rate is not None:
            logs = {**logs, "learning_rate": learning_rate}
        return TrainStep(logs, updated)

    def _updated(self, grads: Any, states: States) -> States:
        """`states` after one optax update of the params with `grads`."""
        assert self.optimizer is not None
        updates, optimizer_states = self.optimizer.update(grads, states.optimizer_states, states.net_params)
        net_params = optax.apply_updates(states.net_params, updates)
        return states.update(net_params=net_params, optimizer_states=optimizer_states)

    @property
    def _groups_batches(self) -> bool:
        return self._accumulation_steps > 1 and self.optimizer is not None

    def _finish_group(self, states: States, halted: Any) -> States:
        """The end of an epoch: a partially accumulated group of batches is applied."""
        if not self._groups_batches:
            return states
        return accumulation.flushed(states, self._updated, halted)

    # ------------------------------------------------------------------ summary
    def summary(self, x: Any = None, depth: int = 2, print_fn: Callable[[str], Any] | None = print) -> str:
        """Print and return a table of the network's Haiku modules.

        One row per module, nested up to `depth` levels, with its output shape and dtype
        for the input `x` (only its shapes matter: nothing is computed; arrays or
        `jax.ShapeDtypeStruct`s; default: the batch the model was built with), its
        parameter count and bytes and its state count (e.g. BatchNorm averages),
        submodules included; totals at the bottom. Works before training and after, and
        never changes `model.states`. `print_fn=None` only returns the table.

        Examples:
            >>> import elegy, haiku as hk, numpy as np
            >>> model = elegy.Model(lambda x: hk.nets.MLP([16, 3])(x))
            >>> table = model.summary(np.zeros((8, 4), np.float32), print_fn=None)
            >>> print(table.splitlines()[-4])
            Total params: 131 (524 B)
        """
        depth = check_int(depth, "depth")
        module = self._require_module()
        if x is None:
            if self.input_spec is None:
                raise ValueError("summary: pass x (an input batch): the model has not seen any data yet")
            x = self.input_spec
        states = self.states if self.built else {}
        params, net_states = states.get("net_params"), states.get("net_states")
        table = summary_table(module, shapes_of(x), depth, params, net_states)
        if print_fn is not None:
            print_fn(table)
        return table

    # ------------------------------------------------------------------ checks
    def _require_module(self) -> PureModule:
        if self._pure_module is None:
            raise ValueError(NO_MODULE)
        return self._pure_module

    def _check_ready(self, entry: str, what: str) -> None:
        check_ready(self, Model, entry, what)

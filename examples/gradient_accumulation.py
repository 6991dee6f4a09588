"""Gradient accumulation: K small batches per optimizer update, as if one batch K times larger.

`elegy.Model(gradient_accumulation_steps=K)` does this for you (docs/recipes.md); this
example writes it by hand, as a `train_step` of its own, to show how a change to the
update itself is made with the low-level API, and checks it against the built-in one.

What it shows: a `elegy.Model` subclass whose `train_step` adds each micro-batch's
gradient to an accumulator kept in `States` (fields of our own: `grad_sum`, `rows_seen`,
`micro_step`) and applies the optimizer only on every K-th step, to the mean of the
accumulated gradients. The example then checks the claim that makes accumulation useful:
training with batches of B rows accumulated K at a time ends with the same parameters as
training with batches of K*B rows (to float rounding), so a large effective batch fits in
the memory of a small one.

Why `train_step` and not `grad_step`: `grad_step` can only change the gradients; the
default `train_step` after it still calls the optimizer on every step. Handing it zeros
on the in-between steps is not "no update" for a stateful optimizer: Adam keeps moving
the parameters with its momentum and counts the step, so the run would drift from the
large-batch one. Deciding *whether* to update is a job for `train_step` ("an update that
is not one optax step"). The default `grad_step` is reused untouched.

Why not `optax.MultiSteps`: it is the simplest tool when every micro-batch is full:
passing `optimizer=optax.MultiSteps(optax.adam(...), every_k_schedule=K)` to a plain
`elegy.Model` needs no code at all. But it averages the K micro-batch gradients with
equal weights, and the batches are not always full. Elegy pads the last, partial batch of
an epoch up to the batch size and passes a `mask` flagging the real rows; the loss, and so
the gradient, of that batch is the mean over its real rows only. Weighted equally, its
few rows count for more than the rows of a full batch. The step below weights each
gradient by its number of real rows, so every update uses the exact mean over the real
rows of its K batches, which is what one large batch gives. The example trains on a
number of rows that leaves the last micro-batch of every epoch a few rows short
(`--short-rows`, 5 by default) and runs `optax.MultiSteps` as well: the custom step
matches the large-batch run to float rounding and MultiSteps drifts from it. With
`--short-rows 0` both match.

What the comparison needs: a deterministic network, with no dropout (other keys per
batch) and no BatchNorm (statistics of B rows are not those of K*B rows), and a number of
batches per epoch that is a multiple of K, so that both runs group the rows alike (the
shuffled order depends only on the seed and the epoch, not on the batch size). Otherwise
a group of K batches straddles two epochs; the step still accumulates correctly across
the boundary, but the large-batch run groups the rows differently.

Run it:

    python examples/gradient_accumulation.py            # full: 15 epochs on the digits
    python examples/gradient_accumulation.py --smoke    # 2 epochs on 512 digits

The last line printed is machine-readable, e.g.
`result: max_abs_diff=2.38419e-07 multisteps_max_abs_diff=0.0269873 updates=360 ... seconds=9.55`.
The script exits with an error if the custom step does not match the reference run.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import optax
from common import ExampleParser, load_shuffled_digits, result_line

import elegy


def forward(x: jax.Array) -> jax.Array:
    """A deterministic MLP: no dropout or BatchNorm, whose results depend on the batch split."""
    return hk.nets.MLP([64, 10])(x)


def load_data(train_rows: int, test_rows: int, seed: int = 0):
    """Shuffled flat digits scaled to [0, 1]: (x_train, y_train), (x_test, y_test)."""
    x, y = load_shuffled_digits(seed, limit=train_rows + test_rows)
    return (x[:train_rows], y[:train_rows]), (x[train_rows:], y[train_rows:])


def tree_zeros_like(tree: Any) -> Any:
    return jax.tree_util.tree_map(jnp.zeros_like, tree)


class AccumulatingModel(elegy.Model):
    """`elegy.Model` whose optimizer runs once every `accumulation_steps` steps."""

    def __init__(self, *args: Any, accumulation_steps: int, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if accumulation_steps < 1:
            raise ValueError(f"accumulation_steps must be >= 1, got {accumulation_steps}")
        self.accumulation_steps = accumulation_steps

    def train_step(
        self,
        x: Any,
        y_true: Any,
        sample_weight: Any,
        class_weight: Any,
        states: elegy.States,
        initializing: bool,
        training: bool,
        mask: jax.Array,
    ) -> elegy.TrainStep:
        # The default grad_step: loss, running metrics and the gradient of this batch's
        # loss (a mean over its real rows) with respect to states.net_params.
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
        if initializing:  # create every field this step will read; no update yet
            return elegy.TrainStep(
                logs,
                states.update(
                    optimizer_states=self.optimizer.init(states.net_params),
                    grad_sum=tree_zeros_like(states.net_params),
                    # Arrays with fixed dtypes, not Python numbers: every later step then
                    # returns the same input signature and the step compiles only once.
                    rows_seen=jnp.zeros((), jnp.float32),
                    micro_step=jnp.zeros((), jnp.int32),
                ),
            )

        # Gradient times real rows is a gradient *sum*; dividing the total by all the real
        # rows at the end gives the mean over the K batches, however they were padded.
        rows = jnp.sum(mask.astype(jnp.float32))
        grad_sum = jax.tree_util.tree_map(lambda total, g: total + g * rows, states.grad_sum, grads)
        rows_seen = states.rows_seen + rows
        micro_step = states.micro_step + 1

        def update(_: None):
            mean_grads = jax.tree_util.tree_map(lambda total: total / rows_seen, grad_sum)
            updates, optimizer_states = self.optimizer.update(
                mean_grads, states.optimizer_states, states.net_params
            )
            params = optax.apply_updates(states.net_params, updates)
            return params, optimizer_states, tree_zeros_like(grad_sum), jnp.zeros_like(rows_seen)

        def keep_accumulating(_: None):
            return states.net_params, states.optimizer_states, grad_sum, rows_seen

        # lax.cond, not Python `if`: micro_step is a traced value inside the compiled step.
        params, optimizer_states, grad_sum, rows_seen = jax.lax.cond(
            micro_step % self.accumulation_steps == 0, update, keep_accumulating, None
        )
        logs = {**logs, "updates": micro_step // self.accumulation_steps}
        return elegy.TrainStep(
            logs,
            states.update(
                net_params=params,
                optimizer_states=optimizer_states,
                grad_sum=grad_sum,
                rows_seen=rows_seen,
                micro_step=micro_step,
            ),
        )


def train(model: elegy.Model, x: np.ndarray, y: np.ndarray, batch_size: int, epochs: int) -> Any:
    """Fit quietly and return the final parameters, copied to the host (training steps
    reuse the device buffers of their States)."""
    model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0)
    return jax.device_get(model.states.net_params)


def max_abs_diff(a: Any, b: Any) -> float:
    return max(
        float(np.max(np.abs(u - v)))
        for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True)
    )


def max_abs(tree: Any) -> float:
    return max(float(np.max(np.abs(leaf))) for leaf in jax.tree_util.tree_leaves(tree))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = ExampleParser(
        description="Gradient accumulation in a custom train_step, checked against a K-times larger batch.",
        full_epochs=15,
        smoke_epochs=2,
        smoke_help="2 epochs on 512 digits: a quick check",
    )
    parser.add_argument("--micro-batch-size", type=int, default=16)
    parser.add_argument("--accumulation-steps", type=int, default=4, help="K")
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument(
        "--short-rows",
        type=int,
        default=5,
        help="rows missing from the last micro-batch of each epoch (padded and masked); < micro batch size",
    )
    parser.add_argument(
        "--tolerance", type=float, default=1e-5, help="largest parameter difference still called a match"
    )
    args = parser.parse_args(argv)
    if not 0 <= args.short_rows < args.micro_batch_size:
        parser.error("--short-rows must be at least 0 and less than --micro-batch-size")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    k, micro = args.accumulation_steps, args.micro_batch_size
    group = k * micro
    groups = (512 if args.smoke else 1536) // group
    # Whole groups of K batches per epoch, the last batch `short_rows` short (so padded).
    train_rows = groups * group - args.short_rows
    (x, y), (x_test, y_test) = load_data(train_rows, test_rows=256, seed=args.seed)

    def model_with(optimizer: optax.GradientTransformation, cls: type = elegy.Model, **extra: Any):
        # Same seed: same initial parameters and the same shuffled order every epoch.
        return cls(
            forward,
            loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
            optimizer=optimizer,
            seed=args.seed,
            **extra,
        )

    start = time.perf_counter()
    reference = train(model_with(optax.adam(args.learning_rate)), x, y, group, args.epochs)
    accumulating = model_with(optax.adam(args.learning_rate), AccumulatingModel, accumulation_steps=k)
    accumulated = train(accumulating, x, y, micro, args.epochs)
    multi_steps = train(
        model_with(optax.MultiSteps(optax.adam(args.learning_rate), every_k_schedule=k)),
        x,
        y,
        micro,
        args.epochs,
    )
    built_in = train(
        model_with(optax.adam(args.learning_rate), gradient_accumulation_steps=k), x, y, micro, args.epochs
    )
    seconds = time.perf_counter() - start

    difference = max_abs_diff(accumulated, reference)
    built_in_difference = max_abs_diff(built_in, reference)
    multi_steps_difference = max_abs_diff(multi_steps, reference)
    test_logs = accumulating.evaluate(x_test, y_test, verbose=0)
    history = accumulating.history.history
    expected_updates = args.epochs * groups
    matches = (
        max(difference, built_in_difference) <= args.tolerance
        and int(accumulating.states.micro_step) // k == expected_updates
    )
    print(
        f"{expected_updates} updates with batches of {group} rows vs {k} accumulated batches of {micro}: "
        f"largest parameter difference {difference:.3g} (built-in gradient_accumulation_steps: "
        f"{built_in_difference:.3g}; optax.MultiSteps: {multi_steps_difference:.3g}; "
        f"parameters up to {max_abs(reference):.3g})"
    )
    result = {
        "max_abs_diff": difference,
        "builtin_max_abs_diff": built_in_difference,
        "multisteps_max_abs_diff": multi_steps_difference,
        "updates": int(history["updates"][-1]),
        "expected_updates": expected_updates,
        "matches": int(matches),
        "test_accuracy": test_logs["accuracy"],
        "first_loss": history["loss"][0],
        "last_loss": history["loss"][-1],
        "epochs": args.epochs,
        "train_rows": train_rows,
        "seconds": seconds,
    }
    print(result_line(result))
    if not matches:
        sys.exit(f"gradient accumulation does not match the large-batch run (tolerance {args.tolerance})")
    return result


if __name__ == "__main__":
    main()

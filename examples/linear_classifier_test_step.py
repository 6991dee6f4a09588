"""A softmax (multinomial logistic) regression written entirely in an overridden `test_step`.

What it shows: an `elegy.Model` subclass with no Haiku module at all. Its `test_step`
creates the weight matrix and bias when `initializing` is True and stores them in
`states.net_params`; afterwards it reads them back from there. It computes the
cross-entropy with plain `jax.numpy`/`optax` arithmetic and keeps its own running totals
for the epoch logs in `states.metrics_states`. Nothing else is overridden: the default
`grad_step` differentiates this step's loss with respect to `states.net_params`, and the
default `train_step` applies the optax optimizer passed to the constructor.

Why the `mask`: a data set rarely divides into whole batches. Elegy pads the last batch
up to the batch size by repeating real rows, so that it doesn't compile the step a second
time, and tells each step which rows are real through the `mask` argument. A step that
averages by hand must weight every row by `mask`, or the repeated rows count twice. The
step below declares `mask` (Elegy passes only the arguments a step names) and uses it for
the loss, the accuracy and the row count. To show that it matters, the example evaluates
the trained weights on the validation rows three ways: through the model (masked), with
numpy directly on the weights (the exact answer), and through a copy of the model that
ignores the mask, with a batch size that leaves a large padded remainder. The first two
agree; the third does not.

Run it:

    python examples/linear_classifier_test_step.py            # full: 60 epochs, all 1797 digits
    python examples/linear_classifier_test_step.py --smoke    # 2 epochs on 512 digits

The last line printed is machine-readable, e.g.
`result: val_accuracy=0.980501 ... numpy_val_accuracy=0.980501 unmasked_val_accuracy=0.979079 ...`.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from common import ExampleParser, load_shuffled_digits, result_line, split

import elegy

NUM_CLASSES = 10


def init_params(num_features: int, num_classes: int) -> dict[str, jax.Array]:
    """Zeros: the softmax regression loss is convex, so no random symmetry breaking is needed."""
    return {"w": jnp.zeros((num_features, num_classes)), "b": jnp.zeros(num_classes)}


def logits_of(params: Mapping[str, Any], x: Any) -> Any:
    """Works on jax and numpy arrays alike, so the numpy check below reuses it."""
    return x.reshape(x.shape[0], -1) @ params["w"] + params["b"]


def zero_totals() -> dict[str, jax.Array]:
    """Running sums over the real rows seen this epoch (Elegy resets them every epoch and
    every evaluation to the value the step returned while initializing)."""
    return {"loss": jnp.zeros(()), "correct": jnp.zeros(()), "rows": jnp.zeros(())}


class SoftmaxRegression(elegy.Model):
    """A linear classifier whose parameters, loss and logs all come from `test_step`.

    Args:
        ignore_mask: treat padded rows as real ones. Only for the demonstration of what
            goes wrong without the mask; never set it in real code.
    """

    def __init__(self, ignore_mask: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        self.ignore_mask = ignore_mask

    def test_step(
        self, x: jax.Array, y_true: jax.Array, states: elegy.States, initializing: bool, mask: jax.Array
    ) -> elegy.TestStep:
        # `initializing` is a Python bool fixed at trace time: plain `if` is fine.
        if initializing:
            params, totals = init_params(x.reshape(x.shape[0], -1).shape[1], NUM_CLASSES), zero_totals()
        else:
            params, totals = states.net_params, states.metrics_states

        # 1.0 for real rows, 0.0 for the rows that only pad the last batch.
        weights = jnp.ones(mask.shape) if self.ignore_mask else mask.astype(jnp.float32)
        logits = logits_of(params, x)
        per_row = optax.softmax_cross_entropy_with_integer_labels(logits, y_true)
        real_rows = jnp.sum(weights)
        # The mean over the real rows only: this is what the default grad_step differentiates.
        loss = jnp.sum(per_row * weights) / real_rows
        correct = (jnp.argmax(logits, axis=-1) == y_true).astype(jnp.float32)

        if not initializing:  # initialization creates the totals but counts no batch
            totals = {
                "loss": totals["loss"] + jnp.sum(per_row * weights),
                "correct": totals["correct"] + jnp.sum(correct * weights),
                "rows": totals["rows"] + real_rows,
            }
        # Epoch logs are the exact means over every real row seen so far this epoch.
        seen = jnp.maximum(totals["rows"], 1.0)
        logs = {"loss": totals["loss"] / seen, "accuracy": totals["correct"] / seen}
        return elegy.TestStep(loss, logs, states.update(net_params=params, metrics_states=totals))


def numpy_metrics(params: Mapping[str, Any], x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """The exact mean loss and accuracy of `params` on (x, y): numpy only, no batching."""
    params = {name: np.asarray(value, np.float64) for name, value in params.items()}
    logits = logits_of(params, x.astype(np.float64))
    shifted = logits - logits.max(axis=-1, keepdims=True)  # a stable log-softmax
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return {
        "loss": float(-np.mean(log_probs[np.arange(len(y)), y])),
        "accuracy": float(np.mean(np.argmax(logits, axis=-1) == y)),
    }


def padded_batch_size(rows: int) -> int:
    """The batch size nearest two thirds of `rows` (so that the last batch is heavily
    padded) among those whose number of padded rows is coprime with `rows`: then an
    accuracy that counts the repeated rows, (correct + correct_repeats) / (rows + padding),
    differs from the exact one, correct / rows, whenever the accuracy is neither 0 nor 1,
    so the demonstration cannot be fooled by a coincidence.
    """
    by_closeness = sorted(range(2, rows), key=lambda size: abs(3 * size - 2 * rows))
    return next(size for size in by_closeness if math.gcd(rows, -rows % size) == 1)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = ExampleParser(
        description="Softmax regression on the 8x8 digits, written in a custom test_step.",
        full_epochs=60,
        smoke_epochs=2,
        smoke_help="2 epochs on 512 digits: a quick check",
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-2)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    x, y = load_shuffled_digits(args.seed, limit=512 if args.smoke else None)
    (x_train, y_train), (x_val, y_val) = split(x, y, validation_fraction=0.2)

    model = SoftmaxRegression(optimizer=optax.adam(args.learning_rate), seed=args.seed)
    start = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_data=(x_val, y_val),
        verbose=2,
    )
    seconds = time.perf_counter() - start

    # Three answers to one question: how accurate are the trained weights on x_val?
    batch_size = padded_batch_size(len(x_val))
    masked = model.evaluate(x_val, y_val, batch_size=batch_size, verbose=0)
    exact = numpy_metrics(jax.device_get(model.states.net_params), x_val, y_val)
    careless = SoftmaxRegression(ignore_mask=True)
    careless.states = jax.device_get(model.states)  # the same trained weights
    unmasked = careless.evaluate(x_val, y_val, batch_size=batch_size, verbose=0)
    print(
        f"validation accuracy in batches of {batch_size} (the last one padded): "
        f"masked {masked['accuracy']:.4f}, numpy {exact['accuracy']:.4f}, "
        f"ignoring the mask {unmasked['accuracy']:.4f}"
    )

    logs = history.history
    result = {
        "val_accuracy": logs["val_accuracy"][-1],
        "val_loss": logs["val_loss"][-1],
        "evaluate_accuracy": masked["accuracy"],
        "numpy_val_accuracy": exact["accuracy"],
        "unmasked_val_accuracy": unmasked["accuracy"],
        "evaluate_loss": masked["loss"],
        "numpy_val_loss": exact["loss"],
        "unmasked_val_loss": unmasked["loss"],
        "first_loss": logs["loss"][0],
        "last_loss": logs["loss"][-1],
        "epochs": args.epochs,
        "val_samples": len(x_val),
        "seconds": seconds,
    }
    print(result_line(result))
    return result


if __name__ == "__main__":
    main()

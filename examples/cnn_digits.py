"""A small convolutional network with BatchNorm and dropout, trained with `elegy.Model.fit`.

What it shows: the high-level API on a Haiku network whose behaviour differs between
training and evaluation. The forward function declares a `training` argument, so Elegy
passes `True` in `fit` and `False` during validation: BatchNorm normalizes with the batch
statistics and updates its moving averages only while training (they live in
`model.states.net_states`, not in the trainable parameters), and dropout is applied only
while training, with keys that Elegy hands out through `hk.next_rng_key()`.

Why a CNN on 8x8 images: scikit-learn ships the digits data set, so the example needs no
download, and treating each sample as an 8x8x1 image lets the convolutions share weights
across positions, which the flat MLP in `digits_mlp.py` cannot.

Run it:

    python examples/cnn_digits.py            # full: 40 epochs on all 1797 digits (15-35 s on 2 cores)
    python examples/cnn_digits.py --smoke    # 2 epochs on 512 digits (time mostly spent compiling)

Training and validation curves go to TensorBoard under `--logdir` (default
`runs/cnn_digits`): `tensorboard --logdir runs/cnn_digits`. The last line printed is
machine-readable, e.g. `result: val_accuracy=0.997214 ... seconds=9.19`.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence

import haiku as hk
import jax
import optax
from common import ExampleParser, load_shuffled_digits, result_line, split

import elegy


def forward(x: jax.Array, training: bool) -> jax.Array:
    """Two 3x3 convolutions with BatchNorm (the second strided: 8x8 -> 4x4), then a dense
    head with dropout.

    `training` comes from Elegy: True in `fit`, False in `evaluate`/`predict`/validation.
    """
    # A stride of 2 halves the resolution like a pooling layer would, and XLA compiles its
    # gradient faster on the CPU than max pooling's (compilation dominates a short run).
    for channels, stride in ((16, 1), (32, 2)):
        # No conv bias: BatchNorm's offset, right after, would cancel it.
        x = hk.Conv2D(channels, kernel_shape=3, stride=stride, padding="SAME", with_bias=False)(x)
        # decay_rate 0.9: the moving averages must settle within a few dozen steps per epoch.
        x = hk.BatchNorm(create_scale=True, create_offset=True, decay_rate=0.9)(x, training)
        x = jax.nn.relu(x)
    x = hk.Flatten()(x)
    if training:  # dropout regularizes training only; evaluation uses the whole network
        x = hk.dropout(hk.next_rng_key(), 0.3, x)
    x = jax.nn.relu(hk.Linear(64)(x))
    if training:
        x = hk.dropout(hk.next_rng_key(), 0.3, x)
    return hk.Linear(10)(x)


def build_model(learning_rate: float, steps_per_epoch: int, epochs: int, seed: int) -> elegy.Model:
    """The CNN with its loss, metric and optimizer.

    A cosine decay lets the last epochs fine-tune instead of bouncing around with a large
    step. `steps_per_execution` stays at 1: on the CPU, XLA runs convolutions inside a
    fused loop much more slowly than step by step (see docs/performance.md).
    """
    schedule = optax.cosine_decay_schedule(learning_rate, decay_steps=steps_per_epoch * epochs, alpha=0.05)
    return elegy.Model(
        module=forward,
        loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        optimizer=optax.adam(schedule),
        seed=seed,
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = ExampleParser(
        description="Train a small CNN with BatchNorm and dropout on the 8x8 digits.",
        full_epochs=40,
        smoke_epochs=2,
        smoke_help="2 epochs on 512 digits: a quick check",
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--logdir", default="runs/cnn_digits", help="where TensorBoard logs go")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    x, y = load_shuffled_digits(args.seed, limit=512 if args.smoke else None)
    x = x.reshape(-1, 8, 8, 1)  # images: 8x8 pixels, one channel
    (x_train, y_train), validation = split(x, y, validation_fraction=0.2)
    steps_per_epoch = math.ceil(len(x_train) / args.batch_size)
    model = build_model(args.learning_rate, steps_per_epoch, args.epochs, seed=args.seed)

    start = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_data=validation,
        callbacks=[elegy.callbacks.TensorBoard(args.logdir)],
        verbose=2,  # one line per epoch: readable in logs and CI output
    )
    seconds = time.perf_counter() - start

    logs = history.history
    result = {
        "val_accuracy": logs["val_accuracy"][-1],
        "val_loss": logs["val_loss"][-1],
        "train_accuracy": logs["accuracy"][-1],
        "first_loss": logs["loss"][0],
        "last_loss": logs["loss"][-1],
        "epochs": args.epochs,
        "train_samples": len(x_train),
        "seconds": seconds,
    }
    print(f"TensorBoard logs in {args.logdir}; view them with: tensorboard --logdir {args.logdir}")
    print(result_line(result))
    return result


if __name__ == "__main__":
    main()

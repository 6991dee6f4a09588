"""Train a Haiku MLP on scikit-learn's bundled 8x8 digits with `elegy.Model.fit`.

Run with `make demo` (or `python examples/digits_mlp.py --epochs 2` for a quick check).
The data ships inside scikit-learn, so nothing is downloaded. Training and validation
curves are written for TensorBoard under `runs/digits`.
"""

from __future__ import annotations

import argparse
import time

import haiku as hk
import jax
import optax
from common import load_shuffled_digits

import elegy


def forward(x: jax.Array, training: bool) -> jax.Array:
    """Two hidden layers with BatchNorm and dropout; `training` is set by Elegy."""
    for width in (128, 64):
        x = hk.Linear(width)(x)
        x = hk.BatchNorm(create_scale=True, create_offset=True, decay_rate=0.9)(x, training)
        x = jax.nn.relu(x)
        if training:
            x = hk.dropout(hk.next_rng_key(), 0.2, x)
    return hk.Linear(10)(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--logdir", default="runs/digits", help="where TensorBoard logs go")
    args = parser.parse_args()

    x, y = load_shuffled_digits()
    model = elegy.Model(
        module=forward,
        loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        optimizer=optax.adam(3e-3),
    )
    start = time.perf_counter()
    history = model.fit(
        x,
        y,
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_split=0.2,
        callbacks=[elegy.callbacks.TensorBoard(args.logdir)],
    )
    elapsed = time.perf_counter() - start
    print(
        f"\nvalidation accuracy after {args.epochs} epochs: "
        f"{history.history['val_accuracy'][-1]:.4f} ({elapsed:.1f}s)"
    )
    print(f"TensorBoard logs in {args.logdir}; view them with: tensorboard --logdir {args.logdir}")


if __name__ == "__main__":
    main()

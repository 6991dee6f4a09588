"""A variational autoencoder on scikit-learn's 8x8 digits, written with Elegy's low-level API.

What it shows:

* A Haiku forward pass that reports its KL divergence with `elegy.add_loss`. The KL
  term is computed from the encoder's mean and log-variance, which only exist inside the
  network, so the network is the natural place to report it; Elegy adds it to the total
  loss and logs it as `kl_loss`.
* A custom `test_step` on an `elegy.Model` subclass. It extends the default step rather
  than replacing it: the default is the one place where `add_loss` values are collected
  (a `test_step` written from scratch that calls `pred_step` itself would not add the KL
  term, and `fit` says so with an error), and it keeps exact running means over each epoch. On top of that the
  override logs the evidence lower bound (`elbo`, the quantity a VAE maximises), which
  training and validation then both report.
* `grad_step` and `train_step` are left alone: they differentiate whatever total the
  `test_step` returns, KL included.

Why: the reconstruction term needs the targets (the pixels), the KL term needs the
latent distribution; each is computed where its inputs live, and the step chain adds
them up.

Run it:

    python examples/vae.py            # full run, about a minute on two CPU cores
    python examples/vae.py --smoke    # a few seconds: checks that everything runs
    tensorboard --logdir runs/vae     # the curves (loss, reconstruction_loss, kl_loss, elbo)

The digits ship with scikit-learn, so nothing is downloaded. The last line printed is
machine-readable: `result: first_loss=... last_loss=... ...`.
"""

from __future__ import annotations

import argparse
import math
import time

import haiku as hk
import jax
import jax.numpy as jnp
import optax
from common import ExampleParser, load_shuffled_digits, result_line

import elegy

PIXELS = 64  # 8x8 images, flattened


def kl_to_standard_normal(mean: jax.Array, log_var: jax.Array) -> jax.Array:
    """KL(N(mean, exp(log_var)) || N(0, I)) per sample, summed over latent dimensions."""
    return -0.5 * jnp.sum(1.0 + log_var - jnp.square(mean) - jnp.exp(log_var), axis=-1)


def reconstruction_nll(y_true: jax.Array, y_pred: jax.Array) -> jax.Array:
    """Bernoulli negative log-likelihood per image, summed over its pixels.

    `y_pred` are logits. Summing (not averaging) over pixels keeps the reconstruction and
    KL terms on the same scale, nats per image, so their sum is the negative ELBO. The
    grey levels in [0, 1] are used as soft targets, a common choice for these digits.
    """
    return jnp.sum(optax.sigmoid_binary_cross_entropy(y_pred, y_true), axis=-1)


def make_forward(latent_size: int, hidden: int):
    """The VAE's forward function: pixels -> reconstruction logits, KL reported on the side."""

    def forward(x: jax.Array, training: bool) -> jax.Array:
        h = hk.nets.MLP([hidden, hidden], activate_final=True, name="encoder")(x)
        mean = hk.Linear(latent_size, name="mean")(h)
        log_var = hk.Linear(latent_size, name="log_var")(h)
        if training:
            # The reparameterisation trick: the noise is an input, so gradients reach
            # mean and log_var. Evaluation decodes the mean, which is deterministic.
            noise = jax.random.normal(hk.next_rng_key(), mean.shape)
            z = mean + jnp.exp(0.5 * log_var) * noise
        else:
            z = mean
        # One number for the batch (add_loss takes scalars). In a last, padded batch the
        # repeated rows count here too, which only nudges that batch's KL slightly.
        elegy.add_loss("kl", jnp.mean(kl_to_standard_normal(mean, log_var)))
        return hk.nets.MLP([hidden, hidden, PIXELS], name="decoder")(z)

    return forward


class VAE(elegy.Model):
    """An `elegy.Model` whose `test_step` also logs the evidence lower bound."""

    def test_step(self, x, y_true, sample_weight, class_weight, states, initializing, training, mask):
        # The default runs the forward pass, collects the `add_loss` KL, adds the
        # reconstruction loss given to the constructor and updates the running means.
        loss, logs, states = super().test_step(
            x, y_true, sample_weight, class_weight, states, initializing, training, mask
        )
        # `logs["loss"]` is the running mean over the epoch so far (exact over real rows),
        # so the ELBO derived from it is an epoch value too, not a last-batch value.
        logs = {**logs, "elbo": -logs["loss"]}
        return elegy.TestStep(loss, logs, states)


def build_model(latent_size: int, hidden: int, learning_rate: float, seed: int) -> VAE:
    return VAE(
        module=make_forward(latent_size, hidden),
        # A dict names the term: it is logged as `reconstruction_loss` next to `kl_loss`.
        loss={"reconstruction": reconstruction_nll},
        optimizer=optax.adam(learning_rate),
        seed=seed,
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ExampleParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        full_epochs=60,
        smoke_epochs=4,
        smoke_help="a few seconds: few epochs, part of the data",
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--latent-size", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--logdir", default="runs/vae", help="where TensorBoard logs go")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # Only the pixels: the digit labels play no part in an autoencoder.
    pixels, _ = load_shuffled_digits(args.seed, limit=640 if args.smoke else None)

    model = build_model(args.latent_size, args.hidden, args.learning_rate, args.seed)
    start = time.perf_counter()
    history = model.fit(
        pixels,
        pixels,  # an autoencoder's target is its input
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_split=0.2,
        verbose=0 if args.smoke else 2,
        callbacks=[elegy.callbacks.TensorBoard(args.logdir)],
    )
    seconds = time.perf_counter() - start

    logs = history.history
    first, last = logs["loss"][0], logs["loss"][-1]
    print(f"\ntrain loss (negative ELBO, nats per image): first epoch {first:.2f}, last epoch {last:.2f}")
    print(
        f"last epoch: reconstruction {logs['reconstruction_loss'][-1]:.2f} + KL {logs['kl_loss'][-1]:.2f}; "
        f"validation loss {logs['val_loss'][-1]:.2f}"
    )
    print(f"TensorBoard logs in {args.logdir}; view them with: tensorboard --logdir {args.logdir}")
    values = {
        "epochs": args.epochs,
        "first_loss": first,
        "last_loss": last,
        "last_reconstruction": logs["reconstruction_loss"][-1],
        "last_kl": logs["kl_loss"][-1],
        "last_elbo": logs["elbo"][-1],
        "first_val_loss": logs["val_loss"][0],
        "last_val_loss": logs["val_loss"][-1],
        "seconds": seconds,
    }
    assert all(math.isfinite(v) for v in values.values()), values
    print(result_line(values, digits=4))


if __name__ == "__main__":
    main()

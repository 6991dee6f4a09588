"""Elegy's `fit` against a hand-written per-step `jax.jit` Haiku + optax loop.

MLP 784-300-10 on MNIST-shaped random data, batch 64, Adam. Both loops see the same
batches in the same order and the runs are interleaved, so machine noise hits both alike.
Prints steps/s for each and their ratio (the median over repeats). It reports; it does
not assert.

    make bench              # or: python benchmarks/fit_vs_raw_jax.py --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import time

import haiku as hk
import jax
import numpy as np
import optax

import elegy

BATCH, FEATURES, CLASSES = 64, 784, 10


def forward(x):
    return hk.nets.MLP([300, CLASSES])(x)


def make_data(steps: int):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(steps * BATCH, FEATURES)).astype(np.float32)
    y = rng.integers(0, CLASSES, size=steps * BATCH).astype(np.int32)
    return x, y


def raw_loop(x, y, epochs: int) -> float:
    """The practical baseline: one jitted update per batch, batches sliced on the host."""
    net = hk.transform(forward)
    optimizer = optax.adam(1e-3)
    params = net.init(jax.random.PRNGKey(0), x[:BATCH])
    opt_state = optimizer.init(params)

    @jax.jit
    def update(params, opt_state, xb, yb):
        def loss_fn(p):
            logits = net.apply(p, None, xb)
            return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    update(params, opt_state, x[:BATCH], y[:BATCH])  # compile outside the timing
    start = time.perf_counter()
    for _ in range(epochs):
        for i in range(0, len(x), BATCH):
            params, opt_state, loss = update(params, opt_state, x[i : i + BATCH], y[i : i + BATCH])
        float(loss)  # epoch end: the host reads the loss, as a progress line would
    jax.block_until_ready(params)
    return time.perf_counter() - start


def elegy_fit(x, y, epochs: int) -> float:
    model = elegy.Model(
        forward,
        loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer=optax.adam(1e-3),
    )
    model.fit(x[:BATCH], y[:BATCH], batch_size=BATCH, epochs=1, verbose=0, shuffle=False)  # compile
    start = time.perf_counter()
    model.fit(x, y, batch_size=BATCH, epochs=epochs, verbose=0, shuffle=False)
    jax.block_until_ready(model.states.net_params)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=200, help="batches per epoch")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    x, y = make_data(args.steps)
    total_steps = args.steps * args.epochs
    raw, fit = [], []
    for _ in range(args.repeats):
        raw.append(total_steps / raw_loop(x, y, args.epochs))
        fit.append(total_steps / elegy_fit(x, y, args.epochs))
    ratios = [f / r for f, r in zip(fit, raw, strict=True)]
    print(f"device: {jax.devices()[0].device_kind}, jax {jax.__version__}")
    print(f"MLP 784-300-10, batch {BATCH}, adam, {total_steps} steps x {args.repeats} interleaved repeats")
    print(f"hand-written jit loop : {statistics.median(raw):8.1f} steps/s")
    print(f"elegy fit             : {statistics.median(fit):8.1f} steps/s")
    runs = ", ".join(f"{r:.3f}" for r in ratios)
    print(f"ratio fit / jit loop  : {statistics.median(ratios):8.3f}  (runs: {runs})")


if __name__ == "__main__":
    main()

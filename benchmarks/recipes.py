"""The per-step cost of the training recipes: `ema_decay`, `dtype_policy` and
`gradient_accumulation_steps`, against plain fit.

    python benchmarks/recipes.py [--repeats 5]

The benchmark's MLP (784-300-10, batch 64, Adam), one step per call, interleaved epochs;
prints the median microseconds per step of each configuration. EMA should cost one
multiply-add over the params per step, accumulation one multiply-add into the sums
(the optimizer then runs once per K steps); mixed precision pays off on accelerators with
16-bit matrix units (on a CPU it is expected to be slower: the casts are extra work).
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import optax
from speed import BATCH, FORWARD, make_data

import elegy

CONFIGURATIONS = {
    "plain": {},
    "ema_decay=0.999": {"ema_decay": 0.999},
    "dtype_policy=mixed_bfloat16": {"dtype_policy": "mixed_bfloat16"},
    "gradient_accumulation_steps=4": {"gradient_accumulation_steps": 4},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    repeats = parser.parse_args().repeats
    x, y = make_data("mlp")
    steps = len(x) // BATCH
    models = {
        name: elegy.Model(
            FORWARD["mlp"],
            loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
            optimizer=optax.adam(1e-3),
            steps_per_execution=1,
            **options,
        )
        for name, options in CONFIGURATIONS.items()
    }
    fit = lambda model: model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False)
    for model in models.values():
        fit(model)  # compile
    timings: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(repeats):
        for name, model in models.items():
            started = time.perf_counter()
            fit(model)
            timings[name].append((time.perf_counter() - started) / steps * 1e6)
    print(f"device: {jax.devices()[0].platform} x{jax.device_count()}, jax {jax.__version__}")
    plain = statistics.median(timings["plain"])
    for name, values in timings.items():
        median = statistics.median(values)
        print(f"{name}: {median:.0f} us/step ({median - plain:+.0f} us against plain)")


if __name__ == "__main__":
    main()

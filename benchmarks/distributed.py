"""One device against four: the overhead of DataParallel, on forced CPU devices.

    python benchmarks/distributed.py            # (make bench runs it after speed.py)

The four "devices" are XLA's forced host devices, which share this machine's cores, so
this is a check that sharding adds no overhead of its own (padding, placement,
collectives, a recompilation), not a scaling measurement: on real accelerators each
device brings its own compute. Same MLP, data, batch and optimizer as `speed.py`; Elegy
`fit` on one device and with `elegy.distributed.DataParallel()` over four, interleaved;
medians of the repeats. Reports only; asserts nothing.
"""

from __future__ import annotations

import os

# Four forced devices on a 2-core machine deadlocked in an all-reduce here (3 of 4 devices
# reached the rendezvous; XLA aborts after 40 s): always without this flag, and with it
# for a hand-written jit loop that splits batches over the mesh (so it is not a contender).
FLAGS = "--xla_force_host_platform_device_count=4 --xla_cpu_multi_thread_eigen=false"
os.environ.setdefault("XLA_FLAGS", FLAGS)
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import optax  # noqa: E402
from speed import BATCH, FORWARD, LEARNING_RATE, _timed, _update_fn, make_data  # noqa: E402

import elegy  # noqa: E402


def fit_speed(distribution, x, y, epochs: int, batch_size: int) -> tuple[float, float]:
    """(first-epoch seconds, steps/s of `epochs` more) for one fresh model."""
    started = time.perf_counter()
    model = elegy.Model(
        FORWARD["mlp"],
        loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer=optax.adam(LEARNING_RATE),
        distribution=distribution,
    )
    fit = lambda: model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0, shuffle=False)
    first, seconds = _timed(lambda: (fit(), model.states), epochs, started)
    return first, epochs * -(-len(x) // batch_size) / seconds


def jit_loop_speed(distribution, x, y, epochs: int, batch_size: int) -> tuple[float, float]:
    """The same for `speed.py`'s hand-written jitted update on one device (whole batches)."""
    started = time.perf_counter()
    _, update, params, opt_state = _update_fn("mlp")
    update = jax.jit(update, donate_argnums=(0, 1))
    usable = len(x) // batch_size * batch_size

    def epoch():
        nonlocal params, opt_state
        for i in range(0, usable, batch_size):
            params, opt_state, loss = update(params, opt_state, x[i : i + batch_size], y[i : i + batch_size])
        float(loss)

    first, seconds = _timed(epoch, epochs, started)
    return first, epochs * (usable // batch_size) / seconds


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    devices = jax.devices()
    print(f"{len(devices)} {devices[0].platform} devices, jax {jax.__version__}")
    x, y = make_data("mlp")
    data_parallel = elegy.distributed.DataParallel
    contenders = {
        "jit loop, 1 device": (jit_loop_speed, lambda: None),
        "elegy, 1 device": (fit_speed, lambda: None),
        f"elegy DataParallel over {len(devices)}": (fit_speed, data_parallel),
    }
    for batch_size in (BATCH, BATCH - 4):  # 60 rows = 4 x 15: elegy pads them to 64 (masked)
        first: dict[str, list[float]] = {name: [] for name in contenders}
        speed: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(args.repeats):
            for name, (run, distribution) in contenders.items():
                seconds, steps_per_second = run(distribution(), x, y, args.epochs, batch_size)
                first[name].append(seconds)
                speed[name].append(steps_per_second)
        print(f"\n## mlp 784-300-10, batch {batch_size}, {args.repeats} x {args.epochs} epochs")
        print("| training | steps/s | vs jit loop, 1 device | first epoch (s) |")
        print("|---|---|---|---|")
        baseline = statistics.median(speed["jit loop, 1 device"])
        for name in contenders:
            median, first_epoch = statistics.median(speed[name]), statistics.median(first[name])
            print(f"| {name} | {median:.0f} | {median / baseline:.2f} | {first_epoch:.2f} |")


if __name__ == "__main__":
    main()

"""Training, evaluation and prediction speed: Elegy against hand-written JAX loops and Keras 3.

    make bench                                   # all workloads, 3 interleaved repeats
    python benchmarks/speed.py --repeats 7 --workloads mlp

Workloads (random MNIST-shaped data, batch 64, Adam 1e-3, cross-entropy on logits):
  mlp  784-300-10
  cnn  conv 16x3x3 -> avg pool 2 -> conv 32x3x3 -> global mean -> dense 10, on 28x28x1

Training contenders, all on the same batches in the same order:
  jit loop      one jitted update per batch, batches sliced on the host (the usual loop)
  scan loop     each epoch one jitted lax.scan over batches already on the device (the limit)
  elegy default Model.fit with default arguments (steps_per_execution="auto"; the data on
                the device on an accelerator): the row a user gets. Timed after the
                tuner's search has ended (the epochs it took, and its choice, are printed)
  elegy spe=1   Model(steps_per_execution=1).fit;   elegy spe=32: Model(steps_per_execution=32).fit
  keras spe=1   Keras 3 on its JAX backend, jit_compile; keras spe=32 (skipped without keras)
Evaluation and prediction: Model.evaluate / Model.predict against a jitted apply loop.

steps/s: median over interleaved repeats, after a first epoch that compiles; each ratio is
the median of the ratios within each repeat. First epoch:
wall time from building a fresh model to the end of its first epoch (initialization and
compilation included), median over the repeats in this process (where JAX has already
compiled, and cached, some of the same programs) and once more cold, in a process of its
own per contender, which also measures the peak resident memory the contender added to a
process that already held the data and the imports (Linux). Reports only; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

os.environ.setdefault("KERAS_BACKEND", "jax")
# Every first epoch here is cold (Elegy turns JAX's persistent compilation cache on by
# default): the cache is measured on its own, in fresh processes (see `measure`).
os.environ.setdefault("ELEGY_COMPILATION_CACHE", "0")

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import optax

import elegy

BATCH, CLASSES, LEARNING_RATE = 64, 10, 1e-3
STEPS = {"mlp": 200, "cnn": 40}
PASSES = 5  # evaluate/predict passes per timing: one pass is too short to time on a busy machine


# ---------------------------------------------------------------- workloads
def mlp(x):
    return hk.nets.MLP([300, CLASSES])(x)


def cnn(x):
    x = jax.nn.relu(hk.Conv2D(16, 3)(x))
    x = hk.avg_pool(x, 2, 2, "VALID")
    x = jax.nn.relu(hk.Conv2D(32, 3)(x))
    return hk.Linear(CLASSES)(x.mean(axis=(1, 2)))


FORWARD = {"mlp": mlp, "cnn": cnn}
SHAPE = {"mlp": (784,), "cnn": (28, 28, 1)}


def keras_model(workload: str):
    import keras

    layers = keras.layers
    body = (
        [layers.Dense(300, activation="relu"), layers.Dense(CLASSES)]
        if workload == "mlp"
        else [
            layers.Conv2D(16, 3, padding="same", activation="relu"),
            layers.AveragePooling2D(2),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(CLASSES),
        ]
    )
    return keras.Sequential([keras.Input(SHAPE[workload]), *body])


def make_data(workload: str):
    rng = np.random.default_rng(0)
    n = STEPS[workload] * BATCH
    x = rng.normal(size=(n, *SHAPE[workload])).astype(np.float32)
    return x, rng.integers(0, CLASSES, n).astype(np.int32)


# ---------------------------------------------------------------- hand-written loops
def _update_fn(workload: str):
    net = hk.without_apply_rng(hk.transform(FORWARD[workload]))
    optimizer = optax.adam(LEARNING_RATE)

    def update(params, opt_state, xb, yb):
        def loss_fn(p):
            return optax.softmax_cross_entropy_with_integer_labels(net.apply(p, xb), yb).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    params = net.init(jax.random.PRNGKey(0), jnp.zeros((1, *SHAPE[workload])))
    return net, update, params, optimizer.init(params)


def jit_loop(workload, x, y, epochs):
    started = time.perf_counter()
    _, update, params, opt_state = _update_fn(workload)
    update = jax.jit(update, donate_argnums=(0, 1))

    def epoch():
        nonlocal params, opt_state
        for i in range(0, len(x), BATCH):
            params, opt_state, loss = update(params, opt_state, x[i : i + BATCH], y[i : i + BATCH])
        float(loss)  # the host reads the epoch's loss, as a progress line would

    return _timed(epoch, epochs, started)


def scan_loop(workload, x, y, epochs):
    started = time.perf_counter()
    _, update, params, opt_state = _update_fn(workload)

    @jax.jit
    def run_epoch(params, opt_state, xs, ys):
        def step(carry, batch):
            params, opt_state, loss = update(*carry, *batch)
            return (params, opt_state), loss

        (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), (xs, ys))
        return params, opt_state, losses[-1]

    xs = jax.device_put(x.reshape(-1, BATCH, *x.shape[1:]))
    ys = jax.device_put(y.reshape(-1, BATCH))

    def epoch():
        nonlocal params, opt_state
        params, opt_state, loss = run_epoch(params, opt_state, xs, ys)
        float(loss)

    return _timed(epoch, epochs, started)


def apply_loop(workload, x, y, model) -> tuple[float, float]:
    """Seconds for a jitted loss loop and a jitted predict loop over the same batches."""
    net = hk.without_apply_rng(hk.transform(FORWARD[workload]))
    params = jax.device_get(model.states.net_params)
    cross_entropy = optax.softmax_cross_entropy_with_integer_labels
    loss = jax.jit(lambda p, xb, yb: cross_entropy(net.apply(p, xb), yb).sum())
    apply = jax.jit(net.apply)

    def evaluate():
        total = sum(loss(params, x[i : i + BATCH], y[i : i + BATCH]) for i in range(0, len(x), BATCH))
        return float(total) / len(x)

    def predict():
        outputs = [apply(params, x[i : i + BATCH]) for i in range(0, len(x), BATCH)]
        return np.concatenate(jax.device_get(outputs))

    evaluate(), predict()  # compile
    return _seconds(_passes(evaluate)), _seconds(_passes(predict))


def _passes(fn: Callable[[], object]) -> Callable[[], list]:
    return lambda: [fn() for _ in range(PASSES)]


# ---------------------------------------------------------------- frameworks
CHOSEN: dict[str, list[tuple[int | None, int]]] = {}  # workload -> (group size "auto" chose, epochs it took)
SEARCH_EPOCHS = 20  # at most this many epochs for the default's search, before its timed epochs


def elegy_model(workload: str, steps_per_execution: int | str | None):
    """`None`: the default arguments, as a user writes them."""
    options = {} if steps_per_execution is None else {"steps_per_execution": steps_per_execution}
    return elegy.Model(
        FORWARD[workload],
        loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer=optax.adam(LEARNING_RATE),
        **options,
    )


def elegy_fit(steps_per_execution):
    def run(workload, x, y, epochs):
        started = time.perf_counter()
        model = elegy_model(workload, steps_per_execution)
        fit = lambda: model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False)
        if steps_per_execution is not None:
            return _timed(fit, epochs, started)
        # The default: the first epoch as a user meets it, then epochs until the tuner's
        # search has ended (its fused program compiles in the background), then the timed
        # epochs, at the speed a longer fit runs at.
        jax.block_until_ready(fit())
        first = time.perf_counter() - started
        searched = 1
        while model.steps_per_execution_chosen is None and searched < SEARCH_EPOCHS:
            fit()
            searched += 1
        CHOSEN.setdefault(workload, []).append((model.steps_per_execution_chosen, searched))
        return first, _seconds(lambda: [fit() for _ in range(epochs)])

    return run


def keras_fit(steps_per_execution):
    def run(workload, x, y, epochs):
        import keras

        started = time.perf_counter()
        model = keras_model(workload)
        model.compile(
            optimizer=keras.optimizers.Adam(LEARNING_RATE),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            steps_per_execution=steps_per_execution,
            jit_compile=True,
        )
        fit = lambda: model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False)
        return _timed(fit, epochs, started)

    return run


def _timed(epoch: Callable[[], object], epochs: int, started: float) -> tuple[float, float]:
    """(seconds from `started`, when the contender began to build its model, to the end of
    its first epoch: initialization and compilation included; seconds of `epochs` more).

    Every contender counts its setup: the loops initialize params and optimizer state
    before their first step, Keras builds its layers, Elegy initializes inside `fit`.
    """
    jax.block_until_ready(epoch())
    first = time.perf_counter() - started
    return first, _seconds(lambda: [epoch() for _ in range(epochs)])


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


def contenders() -> dict[str, Callable]:
    found = {
        "jit loop": jit_loop,
        "scan loop": scan_loop,
        "elegy default": elegy_fit(None),
        "elegy spe=1": elegy_fit(1),
        "elegy spe=32": elegy_fit(32),
    }
    try:
        import keras  # noqa: F401
    except ImportError:
        print("keras is not installed: Keras 3 rows skipped (pip install keras)")
    else:
        found.update({"keras spe=1": keras_fit(1), "keras spe=32": keras_fit(32)})
    return found


# ---------------------------------------------------------------- measuring
def measure(workload: str, repeats: int, epochs: int, fresh: bool) -> None:
    x, y = make_data(workload)
    steps = len(x) // BATCH * epochs
    runs = contenders()
    speed: dict[str, list[float]] = {name: [] for name in runs}
    first: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():  # interleaved: noise hits every contender alike
            first_epoch, seconds = run(workload, x, y, epochs)
            first[name].append(first_epoch)
            speed[name].append(steps / seconds)

    cold = {name: _fresh_process(workload, name) for name in runs} if fresh else {}
    cached = _with_compilation_cache(workload) if fresh else None
    median = {name: statistics.median(values) for name, values in speed.items()}

    def ratio(name: str, reference: str) -> float:
        """Median over repeats of the ratio within each repeat: contenders of one repeat
        run seconds apart, so a slow spell of the machine hits both sides of a ratio."""
        return statistics.median(a / b for a, b in zip(speed[name], speed[reference], strict=True))

    steps_per_epoch = len(x) // BATCH
    print(f"\n## {workload}: {steps_per_epoch} steps per epoch, batch {BATCH}, {repeats} x {epochs} epochs")
    print(
        "| training | steps/s | vs jit loop | vs scan loop | first epoch (s) | first epoch, fresh "
        "process (s) | added peak RSS (MiB) |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in runs:
        cold_first, peak = (f"{cold[name][0]:.2f}", f"{cold[name][1]:.0f}") if name in cold else ("-", "-")
        print(
            f"| {name} | {median[name]:.0f} | {ratio(name, 'jit loop'):.2f} | "
            f"{ratio(name, 'scan loop'):.2f} | {statistics.median(first[name]):.2f} | "
            f"{cold_first} | {peak} |"
        )
    if workload in CHOSEN:
        print(f"elegy default: (steps_per_execution chosen, epochs until chosen) per run: {CHOSEN[workload]}")
    if cached is not None:
        print(
            f"elegy default, fresh processes with the compilation cache: first epoch {cached[0]:.2f} s "
            f"(cache empty), {cached[1]:.2f} s (filled by the first): {cached[1] / cached[0]:.2f}x"
        )
    for spe in (1, 32):
        if f"keras spe={spe}" in median:
            against_keras = ratio(f"elegy spe={spe}", f"keras spe={spe}")
            print(f"elegy / keras at steps_per_execution={spe}: {against_keras:.2f}")
    keras_best = max((name for name in median if name.startswith("keras")), key=median.get, default=None)
    if keras_best is not None:
        print(f"elegy default / {keras_best} (keras at its best): {ratio('elegy default', keras_best):.2f}")
    _measure_inference(workload, x, y, repeats)


def _measure_inference(workload: str, x, y, repeats: int) -> None:
    """Speed of evaluate and predict relative to a jitted apply loop (above 1: faster)."""
    model = elegy_model(workload, 1)
    model.fit(x[:BATCH], y[:BATCH], batch_size=BATCH, verbose=0)
    for spe in ("auto", 1, 32):
        model.steps_per_execution = spe
        evaluate = lambda: model.evaluate(x, y, batch_size=BATCH, verbose=0)
        predict = lambda: model.predict(x, batch_size=BATCH)
        evaluate(), predict()  # compile
        ratios: dict[str, list[float]] = {"evaluate": [], "predict": []}
        for _ in range(repeats):
            loop_evaluate, loop_predict = apply_loop(workload, x, y, model)
            ratios["evaluate"].append(loop_evaluate / _seconds(_passes(evaluate)))
            ratios["predict"].append(loop_predict / _seconds(_passes(predict)))
        print(
            f"elegy spe={spe}: evaluate {statistics.median(ratios['evaluate']):.2f}x, predict "
            f"{statistics.median(ratios['predict']):.2f}x the speed of a jitted apply loop"
        )


def _with_compilation_cache(workload: str) -> tuple[float, float]:
    """First-epoch seconds of Elegy's defaults in two fresh processes sharing a new
    compilation cache folder: the first fills it, the second reads it."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        environment = {**os.environ, "ELEGY_COMPILATION_CACHE": folder}
        return tuple(_fresh_process(workload, "elegy default", environment)[0] for _ in range(2))  # type: ignore[return-value]


def _fresh_process(
    workload: str, name: str, environment: dict[str, str] | None = None
) -> tuple[float, float]:
    """(first-epoch seconds, added peak RSS in MiB) of `name` in a process of its own."""
    probe = subprocess.run(
        [sys.executable, __file__, "--probe", workload, name],
        capture_output=True,
        text=True,
        check=True,
        env=environment,
    )
    first, peak = probe.stdout.strip().splitlines()[-1].split()
    return float(first), float(peak)


def probe(workload: str, name: str) -> None:
    """Prints, for one contender in this fresh process, the seconds to the end of its first
    epoch (every compilation cold, as a user's script meets it) and the peak resident
    memory that training added on top of the data and the imports."""
    x, y = make_data(workload)
    run = contenders()[name]
    baseline = _resident_mib()
    first, _ = run(workload, x, y, 1)
    print(first, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - baseline)  # ru_maxrss: KiB


def _resident_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--workloads", nargs="+", default=["mlp", "cnn"], choices=sorted(FORWARD))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per run, after the first")
    parser.add_argument(
        "--no-fresh", action="store_true", help="skip the fresh processes (cold first epoch, peak memory)"
    )
    parser.add_argument("--probe", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        probe(*args.probe)
        return
    device = f"{jax.devices()[0].device_kind} x{jax.device_count()}"
    print(f"device: {device}, jax {jax.__version__}, elegy {elegy.__version__}")
    for workload in args.workloads:
        measure(workload, args.repeats, args.epochs, fresh=not args.no_fresh)


if __name__ == "__main__":
    main()

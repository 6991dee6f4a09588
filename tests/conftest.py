"""Shared fixtures: small, separable data and tiny Haiku networks, so tests run fast."""

import os
from collections import Counter

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# The suite is bound by XLA compiling hundreds of tiny programs once each. Without the
# backend's optimization passes a compilation takes about a fifth less time; what a
# program computes does not change. Processes the tests start inherit it. (The benchmark,
# which measures speed, runs outside pytest, with XLA's defaults.)
os.environ["XLA_FLAGS"] = " ".join(
    [
        os.environ.get("XLA_FLAGS", ""),
        "--xla_backend_optimization_level=0",
        "--xla_llvm_disable_expensive_passes=true",
    ]
).strip()

import haiku as hk
import jax
import numpy as np
import pytest


def blobs(n: int = 150, features: int = 4, classes: int = 3, seed: int = 0):
    """Well-separated Gaussian blobs: any working classifier beats chance quickly."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 4, size=(classes, features))
    y = rng.integers(0, classes, size=n)
    x = centers[y] + rng.normal(0, 0.5, size=(n, features))
    return x.astype(np.float32), y.astype(np.int32)


def mlp_forward(x):
    return hk.nets.MLP([16, 3])(x)


def bn_dropout_forward(x, training):
    x = hk.Linear(16)(x)
    x = hk.BatchNorm(create_scale=True, create_offset=True, decay_rate=0.9)(x, training)
    x = jax.nn.relu(x)
    if training:
        x = hk.dropout(hk.next_rng_key(), 0.3, x)
    return hk.Linear(3)(x)


class TraceCounter:
    """Mixin for an elegy.Model subclass: Python in a step runs only while JAX traces it,
    so calls of `pred_step`, keyed by (initializing, training), count traces."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.traces = Counter()

    def pred_step(self, x, states, initializing, training):
        self.traces[(initializing, training)] += 1
        return super().pred_step(x, states, initializing, training)


@pytest.fixture
def data():
    return blobs()


def load_docs_hooks():
    """docs/hooks.py, which is not a package: what the docs build and the tests share
    (running a guide's code, listing the public names)."""
    import importlib.util
    import pathlib

    spec = importlib.util.spec_from_file_location(
        "docs_hooks", pathlib.Path(__file__).parent.parent / "docs" / "hooks.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pytest_configure(config):
    """Share XLA executables between tests: many tests compile the same tiny networks.

    JAX writes cache entries atomically, so parallel workers may share a directory.
    """
    import tempfile

    cache_dir = os.environ.get("ELEGY_TEST_COMPILATION_CACHE")
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")  # set in every pytest-xdist worker
    if cache_dir is None and run_id is not None:  # the workers of one run share one cache
        cache_dir = os.path.join(tempfile.gettempdir(), f"elegy-xla-{run_id}")
        os.makedirs(cache_dir, exist_ok=True)
    cache_dir = cache_dir or tempfile.mkdtemp(prefix="elegy-xla-")
    os.environ["ELEGY_COMPILATION_CACHE"] = cache_dir  # (and the processes tests start)
    jax.config.update("jax_compilation_cache_dir", cache_dir)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)

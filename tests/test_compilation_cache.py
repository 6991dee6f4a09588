"""The persistent compilation cache `import elegy` turns on: where, when, and that a
second process reads what the first wrote."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from elegy import compilation_cache

SCRIPT = textwrap.dedent(
    """
    import jax, numpy as np, optax, haiku as hk, elegy
    print("folder", jax.config.jax_compilation_cache_dir)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)  # tiny programs too
    model = elegy.Model(lambda x: hk.Linear(2)(x), loss="mse", optimizer=optax.sgd(0.1), steps_per_execution=1)
    x = np.ones((8, 3), np.float32)
    model.fit(x, np.zeros((8, 2), np.float32), batch_size=4, verbose=0)
    """
)


def run_script(environment):
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"} | environment
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True
    )
    return result.stdout.split("folder ")[1].split()[0]


def test_the_default_folder(monkeypatch):
    monkeypatch.delenv("ELEGY_COMPILATION_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere")
    assert compilation_cache.default_folder() == Path("/somewhere/elegy/jax")
    monkeypatch.setenv("ELEGY_COMPILATION_CACHE", "/mine")
    assert compilation_cache.default_folder() == Path("/mine")
    monkeypatch.setenv("ELEGY_COMPILATION_CACHE", "0")
    assert compilation_cache.default_folder() is None


def test_a_folder_the_user_configured_is_left_alone():
    # (the test session configured one: see conftest.py)
    assert compilation_cache.enable_by_default() is None


def test_a_second_process_reads_the_programs_the_first_wrote(tmp_path):
    folder = tmp_path / "cache"
    assert run_script({"ELEGY_COMPILATION_CACHE": str(folder)}) == str(folder)
    written = {entry.name: entry.stat().st_mtime_ns for entry in folder.iterdir()}
    assert written  # the first process compiled and wrote its programs
    run_script({"ELEGY_COMPILATION_CACHE": str(folder)})
    assert {entry.name: entry.stat().st_mtime_ns for entry in folder.iterdir()} == written  # all read back
    assert run_script({"ELEGY_COMPILATION_CACHE": "0"}) == "None"

"""JAX's persistent compilation cache, on by default in a cache folder of the user's.

A model's first epoch is mostly compilation (for the benchmark's MLP on the CPU, 0.3 s
for initialization and 0.6 s for the training step, of a 1.1 s epoch). Compiled
programs written to disk are read back by the next process that builds the same model,
so a script run again, a notebook restarted or a sweep's next trial starts training
without compiling.

`import elegy` turns the cache on unless it is configured already: a cache folder set
by the user (`jax_compilation_cache_dir`, or `JAX_COMPILATION_CACHE_DIR`) is left as it
is, with all of JAX's cache settings. Otherwise the folder is
`$ELEGY_COMPILATION_CACHE`, or `$XDG_CACHE_HOME/elegy/jax` (`~/.cache/elegy/jax`);
`ELEGY_COMPILATION_CACHE=0` turns it off. Programs that compile in at least
`MIN_COMPILE_SECONDS` are kept (JAX's default, one second, would skip every step
program of a small model). JAX bounds the folder's size only with the `filelock`
package, which is not a dependency: the folder grows with every new model, and may be
deleted at any time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jax

MIN_COMPILE_SECONDS = 0.1
OFF = "0"


def default_folder() -> Path | None:
    """Where the cache goes by default (None: off)."""
    chosen = os.environ.get("ELEGY_COMPILATION_CACHE")
    if chosen == OFF:
        return None
    if chosen:
        return Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "elegy" / "jax"


def enable_by_default() -> Path | None:
    """Turn the cache on in `default_folder()` unless the user configured one; returns
    the folder it set (None if it left JAX as it was)."""
    config: Any = jax.config  # (its options are attributes mypy cannot see)
    if config.jax_compilation_cache_dir or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return None
    folder = default_folder()
    if folder is None:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only home: compile every time, as JAX does by default
        return None
    config.update("jax_compilation_cache_dir", str(folder))
    if config.jax_persistent_cache_min_compile_time_secs == 1.0:  # JAX's default
        config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    return folder

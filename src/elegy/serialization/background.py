"""Writing checkpoints while training goes on: one write at a time, on a worker thread.

A checkpoint callback hands over the States it wants written (an immutable value, so the
training loop may go on replacing `model.states`) and returns at once. The next write
waits for the previous one, so writes land in order and at most one is in flight. An
error in a write is raised by the next `submit` or by `wait`, never lost.

In a run of several processes a write runs at once, on the training thread: its barriers
(and Orbax's) are collectives, and collectives issued from two threads can interleave
differently in each process and deadlock with the training steps' own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import jax


class BackgroundWriter:
    """Runs `write()` calls one after another on a worker thread."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, write: Callable[[], Any]) -> None:
        """Wait for the previous write (raising its error, if any), then start `write`."""
        self.wait()
        if jax.process_count() > 1:
            write()
            return
        self._thread = threading.Thread(target=self._run, args=(write,), name="elegy-checkpoint", daemon=True)
        self._thread.start()

    def wait(self) -> None:
        """Block until the write in flight is on disk; raise its error if it failed."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        error, self._error = self._error, None
        if error is not None:
            raise error

    def _run(self, write: Callable[[], Any]) -> None:
        try:
            write()
        except BaseException as error:  # handed to the training thread by wait()
            self._error = error

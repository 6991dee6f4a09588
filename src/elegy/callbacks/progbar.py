"""`ProgbarLogger`: the Keras-style progress bar, refreshed a few times a second.

Reading batch logs makes the host wait for the device, so the bar reads them only when it
redraws (at most every `interval` seconds) and at the end of the epoch.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

from elegy.callbacks.callback import Callback
from elegy.callbacks.logs import scalar_logs

BAR_WIDTH = 30


def format_logs(logs: Mapping[str, Any] | None) -> str:
    """` - name: 0.1234` for every scalar log (Python, numpy or jax); arrays are skipped."""
    return "".join(f" - {name}: {value:.4f}" for name, value in scalar_logs(logs))


def format_duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
    if seconds >= 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    return f"{seconds:.0f}s"


def format_bar(done: int, total: int | None) -> str:
    if not total:
        return f"{done}/Unknown"
    width = len(str(total))
    filled = int(BAR_WIDTH * done / total)
    arrow = ">" if filled < BAR_WIDTH else ""
    bar = "=" * filled + arrow + "." * (BAR_WIDTH - filled - len(arrow))
    return f"{done:{width}d}/{total} [{bar}]"


class ProgbarLogger(Callback):
    """Prints progress: `verbose=1` a live bar with ETA, `verbose=2` one line per epoch.

    When the output is not a terminal the live bar is replaced by its final line, so logs
    written to files stay readable. `fit(verbose=...)` adds one; pass your own (with
    `verbose=0` to fit) to write elsewhere than standard output.

    Examples:
        The line `verbose=2` writes at the end of an epoch (the hooks called as `fit`
        calls them):

        >>> import io
        >>> from elegy.callbacks import ProgbarLogger
        >>> stream = io.StringIO()
        >>> progbar = ProgbarLogger(verbose=2, stream=stream)
        >>> progbar.set_params({"epochs": 3})
        >>> progbar.on_epoch_begin(0)
        >>> progbar.on_epoch_end(0, {"loss": 0.25, "accuracy": 0.875})
        >>> print(stream.getvalue(), end="")  # doctest: +ELLIPSIS
        Epoch 1/3 - ...s - loss: 0.2500 - accuracy: 0.8750
    """

    first_process_only = True

    def __init__(self, verbose: int = 1, interval: float = 0.25, stream: TextIO | None = None):
        super().__init__()
        self.verbose = verbose
        self.interval = interval
        self.stream = stream
        self._in_fit = False
        self._reset(None)

    def _out(self) -> TextIO:
        return self.stream or sys.stdout

    def _reset(self, total: int | None) -> None:
        self._total = total
        self._start = time.perf_counter()
        self._last_draw = 0.0
        self._seen = 0
        self._drawn_width = 0

    # fit
    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        self._in_fit = True

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        self._in_fit = False

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._reset(self.params.get("steps"))
        if self.verbose == 1:
            self._write(f"Epoch {epoch + 1}/{self.params.get('epochs')}\n")

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._progress(batch + 1, logs)

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        if self.verbose == 2:
            elapsed = time.perf_counter() - self._start
            rate = self._rate(self._seen, elapsed)
            self._write(
                f"Epoch {epoch + 1}/{self.params.get('epochs')} - {format_duration(elapsed)}"
                f"{' - ' + rate if rate else ''}{format_logs(logs)}\n"
            )
        elif self.verbose == 1:
            self._final(logs)

    # evaluate and predict outside fit
    def on_test_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        if not self._in_fit:
            self._reset(self.params.get("steps"))

    def on_test_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        if not self._in_fit:
            self._progress(batch + 1, logs)

    def on_test_end(self, logs: Mapping[str, Any] | None = None) -> None:
        if not self._in_fit and self.verbose:
            self._final(logs)

    def on_predict_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        self._reset(self.params.get("steps"))

    def on_predict_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._progress(batch + 1, None)

    def on_predict_end(self, logs: Mapping[str, Any] | None = None) -> None:
        if self.verbose:
            self._final(None)

    # drawing
    def _progress(self, done: int, logs: Mapping[str, Any] | None) -> None:
        self._seen = done
        if self.verbose != 1 or not self._is_tty():
            return
        now = time.perf_counter()
        if now - self._last_draw < self.interval:
            return
        self._last_draw = now
        elapsed = now - self._start
        if self._total:
            eta = elapsed / done * (self._total - done)
            timing = f" - ETA: {format_duration(eta)}"
        else:
            timing = f" - {format_duration(elapsed)}"
        self._redraw(f"{format_bar(done, self._total)}{timing}{format_logs(logs)}")

    def _final(self, logs: Mapping[str, Any] | None) -> None:
        elapsed = time.perf_counter() - self._start
        total = self._total or self._seen
        line = (
            f"{format_bar(self._seen, total)} - {format_duration(elapsed)} "
            f"{self._rate(self._seen, elapsed)}{format_logs(logs)}"
        )
        self._redraw(line)
        self._write("\n")
        self._drawn_width = 0

    @staticmethod
    def _rate(steps: int, elapsed: float) -> str:
        if not steps or elapsed <= 0:
            return ""
        per_step = elapsed / steps
        if per_step >= 1:
            return f"{per_step:.1f}s/step"
        return f"{per_step * 1e3:.0f}ms/step ({steps / elapsed:.1f} steps/s)"

    def _redraw(self, line: str) -> None:
        pad = max(0, self._drawn_width - len(line))
        prefix = "\r" if self._is_tty() else ""
        self._write(prefix + line + " " * pad)
        self._drawn_width = len(line)

    def _is_tty(self) -> bool:
        isatty = getattr(self._out(), "isatty", None)
        return bool(isatty and isatty())

    def _write(self, text: str) -> None:
        out = self._out()
        out.write(text)
        out.flush()

"""`ProgbarLogger`: the Keras-style progress bar, refreshed a few times a second.

Reading batch logs makes the host wait for the device, so the bar reads them only when it
redraws (at most every `interval` seconds) and at the end of the epoch. Where it is drawn
is a `TerminalLine` (a stream) or, in a Jupyter kernel, a `NotebookDisplay`.
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


def in_notebook_kernel() -> bool:
    """Whether this process is an IPython kernel (Jupyter, VS Code, Colab), asked as Keras asks.

    A kernel's standard output is no terminal, and `\\r` does not redraw there, so the bar
    needs a display instead. IPython is imported only when ipykernel already is: elegy does
    not depend on it, and a plain IPython shell (a real terminal) keeps the terminal bar.
    """
    if "ipykernel" not in sys.modules:
        return False
    from IPython import get_ipython

    return getattr(get_ipython(), "kernel", None) is not None


class TerminalLine:
    """The bar as one line of a text stream (standard output when `stream` is None).

    On a terminal the line is redrawn in place with `\\r`; to a file or a pipe, where each
    redraw would stay in the log, only the final line is written. The stream is looked up at
    each write, so a `sys.stdout` replaced meanwhile (pytest's capture) gets the text.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self._width = 0

    @property
    def live(self) -> bool:
        """Whether redraws before the final line are shown."""
        isatty = getattr(self._out(), "isatty", None)
        return bool(isatty and isatty())

    def write(self, text: str) -> None:
        """Text outside the bar: the epoch's header, `verbose=2`'s line."""
        out = self._out()
        out.write(text)
        out.flush()

    def draw(self, line: str) -> None:
        pad = max(0, self._width - len(line))  # blank what a longer line left
        self.write(("\r" if self.live else "") + line + " " * pad)
        self._width = len(line)

    def finish(self, line: str) -> None:
        """The bar's final line; the next bar starts on a new line."""
        self.draw(line)
        self.write("\n")
        self._width = 0

    def _out(self) -> TextIO:
        return self.stream or sys.stdout


class NotebookDisplay(TerminalLine):
    """The bar as one IPython display, created on the first draw and updated in place.

    Text (headers) still goes to standard output; the bar's redraws replace the display's
    content, so the notebook keeps one output per bar, ending with the final line.
    """

    def __init__(self) -> None:
        super().__init__(None)
        self._handle: Any = None

    @property
    def live(self) -> bool:
        return True

    def draw(self, line: str) -> None:
        from IPython.display import display

        bundle = {"text/plain": line}
        if self._handle is None:
            # IPython's display functions are unannotated.
            self._handle = display(bundle, raw=True, display_id=True)  # type: ignore[no-untyped-call]
        else:
            self._handle.update(bundle, raw=True)

    def finish(self, line: str) -> None:
        self.draw(line)
        self._handle = None


class ProgbarLogger(Callback):
    """Prints progress: `verbose=1` a live bar with ETA, `verbose=2` one line per epoch.

    On a terminal the bar is redrawn in place. In a Jupyter notebook (standard output in an
    IPython kernel) each epoch, evaluate or predict gets one display, updated in place and
    left with the final line. Elsewhere (a file, a pipe) only the final line is written, so
    logs stay readable. `fit(verbose=...)` adds one; pass your own (with `verbose=0` to fit)
    to write elsewhere than standard output.

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

    def _reset(self, total: int | None) -> None:
        self._total = total
        self._start = time.perf_counter()
        self._last_draw = 0.0
        self._seen = 0
        self._bar = self._where()

    def _where(self) -> TerminalLine:
        """Where the next bar is drawn: a notebook display only for standard output."""
        if self.stream is None and in_notebook_kernel():
            return NotebookDisplay()
        return TerminalLine(self.stream)

    # fit
    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        self._in_fit = True

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        self._in_fit = False

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._reset(self.params.get("steps"))
        if self.verbose == 1:
            self._bar.write(f"Epoch {epoch + 1}/{self.params.get('epochs')}\n")

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._progress(batch + 1, logs)

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        if self.verbose == 2:
            elapsed = time.perf_counter() - self._start
            rate = self._rate(self._seen, elapsed)
            self._bar.write(
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
        if self.verbose != 1 or not self._bar.live:
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
        self._bar.draw(f"{format_bar(done, self._total)}{timing}{format_logs(logs)}")

    def _final(self, logs: Mapping[str, Any] | None) -> None:
        elapsed = time.perf_counter() - self._start
        total = self._total or self._seen
        line = (
            f"{format_bar(self._seen, total)} - {format_duration(elapsed)} "
            f"{self._rate(self._seen, elapsed)}{format_logs(logs)}"
        )
        self._bar.finish(line)

    @staticmethod
    def _rate(steps: int, elapsed: float) -> str:
        if not steps or elapsed <= 0:
            return ""
        per_step = elapsed / steps
        if per_step >= 1:
            return f"{per_step:.1f}s/step"
        return f"{per_step * 1e3:.0f}ms/step ({steps / elapsed:.1f} steps/s)"

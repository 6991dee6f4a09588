"""Helpers around a finished training run.

`plot_history` draws the curves `fit` recorded. matplotlib is an optional extra
(`pip install "elegy[plot]"`): training never needs it, so it is imported only here, when
a plot is asked for.

Examples:
    >>> import os, tempfile
    >>> from elegy.utils import plot_history
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     _ = plot_history({"loss": [1.0, 0.5]}, os.path.join(folder, "run.png"))
    ...     os.listdir(folder)
    ['run.png']
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

from elegy.arguments import check_int
from elegy.naming import VALIDATION_PREFIX, is_validation_name

__all__ = ["plot_history"]


def plot_history(history: Any, path: str | os.PathLike[str] | None = None, columns: int = 2) -> Figure:
    """A chart of every log per epoch, training and validation in one panel each; saved
    to `path` when one is given.

    `history` is what `fit` returns (a `History`, or its `.history` dict of lists). Each
    log gets a panel (the loss first); its `val_` twin, when there is one, is drawn in the
    same panel. The x axis counts epochs from 1, following `History.epoch`, so a resumed
    run continues where it left off. The format follows the file extension (`.png`,
    `.svg`, `.pdf`). Returns the matplotlib `Figure`, drawn without pyplot: nothing global
    changes and no window opens. Without `path` nothing is written; in a notebook, the
    figure as a cell's last value is shown there.

    Examples:
        >>> import tempfile, pathlib
        >>> history = {"loss": [0.9, 0.5, 0.4], "val_loss": [1.0, 0.7, 0.6], "accuracy": [0.6, 0.8, 0.9]}
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     figure = plot_history(history, pathlib.Path(folder) / "history.png")
        ...     pathlib.Path(folder, "history.png").read_bytes()[:4]
        b'\\x89PNG'
        >>> [axes.get_title() for axes in figure.axes if axes.get_visible()]
        ['loss', 'accuracy']
        >>> [line.get_ydata().tolist() for line in figure.axes[0].get_lines()]
        [[0.9, 0.5, 0.4], [1.0, 0.7, 0.6]]
    """
    logs, epochs = _logs_and_epochs(history)
    columns = check_int(columns, "plot_history: columns")
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError('plot_history needs matplotlib: pip install "elegy[plot]"') from error

    names = [
        name for name in logs if not (is_validation_name(name) and name[len(VALIDATION_PREFIX) :] in logs)
    ]
    names.sort(key=lambda name: name != "loss")  # the loss first, the rest as recorded
    rows = -(-len(names) // columns)
    figure = Figure(figsize=(4.5 * min(columns, len(names)), 3.2 * rows), layout="constrained")
    panels = figure.subplots(rows, min(columns, len(names)), squeeze=False).ravel()
    for axes, name in zip(panels, names, strict=False):
        axes.plot(epochs, logs[name], marker="o", markersize=3, label="training")
        if VALIDATION_PREFIX + name in logs:
            axes.plot(epochs, logs[VALIDATION_PREFIX + name], marker="o", markersize=3, label="validation")
            axes.legend()
        axes.set_title(name)
        axes.set_xlabel("epoch")
        axes.grid(alpha=0.3)
    for axes in panels[len(names) :]:
        axes.set_visible(False)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=100)
    return figure


def _logs_and_epochs(history: Any) -> tuple[dict[str, list[float]], list[int]]:
    """The logs as float lists of one length, and the 1-based epoch of each value."""
    logs = getattr(history, "history", history)
    if not isinstance(logs, Mapping) or not logs:
        raise ValueError(
            "plot_history: history must be the History that fit returns, or a non-empty dict "
            f"of per-epoch values, got {history!r}"
        )
    lengths = {name: len(values) for name, values in logs.items() if isinstance(values, Sequence)}
    if len(lengths) != len(logs) or len(set(lengths.values())) != 1 or not next(iter(lengths.values())):
        raise ValueError(
            f"plot_history: every log in history needs one value per epoch, got lengths {lengths} "
            f"for the logs {list(logs)}"
        )
    count = next(iter(lengths.values()))
    recorded = list(getattr(history, "epoch", []))
    epochs = [epoch + 1 for epoch in recorded] if len(recorded) == count else list(range(1, count + 1))
    return {name: [float(v) for v in values] for name, values in logs.items()}, epochs

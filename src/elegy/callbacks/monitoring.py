"""What the monitoring callbacks share: which direction improves, and reading the value."""

from __future__ import annotations

from typing import Any

from elegy.naming import is_validation_name

MAXIMIZED = ("acc", "accuracy", "auc", "precision", "recall", "f1", "iou")


def resolve_mode(mode: str, monitor: str) -> str:
    """`"min"` or `"max"`; `"auto"` maximises accuracy-like names and minimises the rest."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        return "max" if any(key in monitor for key in MAXIMIZED) else "min"
    return mode


def monitored(logs: Any, monitor: str, who: str, validating: bool) -> float | None:
    """The value of `monitor` in `logs`.

    None for a validation value on an epoch that ran no validation although `fit` has
    validation data (`validation_freq`); a KeyError naming the logs present for any other
    missing name (a typo, or no validation data at all).
    """
    logs = logs or {}
    value: float | None = logs.get(monitor)
    if value is None:
        validation_ran = any(map(is_validation_name, logs))
        if is_validation_name(monitor) and validating and not validation_ran:
            return None
        raise KeyError(f"{who} monitors {monitor!r}, which is not in the logs: {sorted(logs)}")
    return value

"""What the monitoring callbacks share: which direction improves, and reading the value."""

from __future__ import annotations

from typing import Any

MAXIMIZED = ("acc", "accuracy", "auc", "precision", "recall", "f1", "iou")


def resolve_mode(mode: str, monitor: str) -> str:
    """`"min"` or `"max"`; `"auto"` maximises accuracy-like names and minimises the rest."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        return "max" if any(key in monitor for key in MAXIMIZED) else "min"
    return mode


def monitored(logs: Any, monitor: str, who: str) -> float:
    """The value of `monitor` in `logs`; a KeyError naming the logs present otherwise."""
    value = (logs or {}).get(monitor)
    if value is None:
        raise KeyError(f"{who} monitors {monitor!r}, which is not in the logs: {sorted(logs or {})}")
    return value

"""`History`: every epoch's logs, by name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from elegy.callbacks.callback import Callback


class History(Callback):
    """Records epoch logs; `history.history["loss"]` lists the loss of each epoch.

    `fit` always adds one and returns it (also as `model.history`).

    Examples:
        `fit` calls `on_epoch_end` with each epoch's logs; here they are given by hand:

        >>> from elegy.callbacks import History
        >>> history = History()
        >>> for epoch, loss in enumerate([0.75, 0.5, 0.25]):
        ...     history.on_epoch_end(epoch, {"loss": loss, "val_loss": 2 * loss})
        >>> history.epoch, history.history["loss"], history.history["val_loss"]
        ([0, 1, 2], [0.75, 0.5, 0.25], [1.5, 1.0, 0.5])
    """

    def __init__(self) -> None:
        super().__init__()
        self.epoch: list[int] = []
        self.history: dict[str, list[float]] = {}

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        self.epoch.append(epoch)
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(value)

    def get_state(self) -> dict[str, Any]:
        return {"epoch": list(self.epoch), "history": {k: list(v) for k, v in self.history.items()}}

    def set_state(self, state: dict[str, Any]) -> None:
        self.epoch = list(state["epoch"])
        self.history = {k: list(v) for k, v in state["history"].items()}

"""`History`: every epoch's logs, by name."""

from __future__ import annotations

from elegy.callbacks.callback import Callback


class History(Callback):
    """Records epoch logs; `history.history["loss"]` lists the loss of each epoch.

    `fit` always adds one and returns it (also as `model.history`).
    """

    def __init__(self) -> None:
        super().__init__()
        self.epoch: list[int] = []
        self.history: dict[str, list[float]] = {}

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(value)

    def get_state(self) -> dict:
        return {"epoch": list(self.epoch), "history": {k: list(v) for k, v in self.history.items()}}

    def set_state(self, state: dict) -> None:
        self.epoch = list(state["epoch"])
        self.history = {k: list(v) for k, v in state["history"].items()}

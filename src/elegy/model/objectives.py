"""The model's losses and metrics as pure functions over `States.metrics_states`.

`Objectives` turns the user's `loss` and `metrics` arguments (one object, a list or a
dict) into named terms once, at construction, and then offers three pure functions used by
the default `test_step`: the loss terms of a batch, the initial metric states, and their
update, which also tracks running means of the total loss and of each term so that every
epoch value is exact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax.numpy as jnp

from elegy import losses as losses_lib
from elegy import metrics as metrics_lib
from elegy.metrics.mean import Mean
from elegy.naming import loss_log_name, unique_names
from elegy.weighting import batch_rows

_LOSS_TRACKER = Mean()


def _named(container: Any, argument: str) -> list[tuple[str | None, Any]]:
    """(key or None, item) pairs from one object, a list/tuple, or a dict."""
    if container is None:
        return []
    if isinstance(container, Mapping):
        for key in container:
            if not isinstance(key, str):
                raise TypeError(f"{argument}: dict keys are log names and must be strings, got {key!r}")
        return list(container.items())
    if isinstance(container, (list, tuple)):
        return [(None, item) for item in container]
    return [(None, container)]


class Objectives:
    """Named loss terms and metrics, and the pure functions that evaluate them."""

    def __init__(self, loss: Any = None, metrics: Any = None):
        loss_items = [(key, losses_lib.get(item)) for key, item in _named(loss, "loss")]
        metric_items = [(key, metrics_lib.get(item)) for key, item in _named(metrics, "metrics")]
        self.log_each_loss = isinstance(loss, (list, tuple, Mapping))
        loss_names = unique_names(
            [loss_log_name(key or item.name) for key, item in loss_items], taken=["loss"]
        )
        metric_names = unique_names(
            [key or item.name for key, item in metric_items], taken=["loss", *loss_names]
        )
        self.losses = list(zip(loss_names, (item for _, item in loss_items), strict=True))
        self.metrics = list(zip(metric_names, (item for _, item in metric_items), strict=True))

    @property
    def has_loss(self) -> bool:
        return bool(self.losses)

    def loss_terms(self, y_true, y_pred, sample_weight, mask) -> tuple[jnp.ndarray, dict[str, jnp.ndarray]]:
        """The total loss of the batch and each named term (weights and mask applied)."""
        terms = {name: loss(y_true, y_pred, sample_weight, mask) for name, loss in self.losses}
        total = sum(terms.values(), jnp.zeros((), jnp.float32))
        return total, terms

    def init_states(self) -> dict[str, Any]:
        tracked = ["loss", *(name for name, _ in self.losses if self.log_each_loss)]
        states = {name: _LOSS_TRACKER.init() for name in tracked}
        states.update({name: metric.init() for name, metric in self.metrics})
        return states

    def update_states(self, states, y_true, y_pred, sample_weight, mask, total, terms) -> dict[str, Any]:
        """Accumulate the batch into the metric states; loss means are weighted by rows."""
        rows = batch_rows(y_pred)
        new = dict(states)
        for name, value in (("loss", total), *terms.items()):
            if name in new:
                new[name] = _LOSS_TRACKER.update(new[name], jnp.broadcast_to(value, (rows,)), None, mask)
        for name, metric in self.metrics:
            new[name] = metric.update(states[name], y_true, y_pred, sample_weight, mask)
        return new

    def logs(self, states: Mapping[str, Any]) -> dict[str, jnp.ndarray]:
        """The current value of every tracked loss and metric, by log name."""
        logs = {
            name: _LOSS_TRACKER.compute(states[name]) for name in states if name not in dict(self.metrics)
        }
        logs.update({name: metric.compute(states[name]) for name, metric in self.metrics})
        return logs


def with_class_weight(sample_weight, class_weight, y_true) -> jnp.ndarray | None:
    """`sample_weight` times the weight of each row's class (labels or one-hot targets)."""
    if class_weight is None:
        return sample_weight
    if y_true is None:
        raise ValueError("class_weight needs targets, but y is None")
    y_true = jnp.asarray(y_true)
    if y_true.ndim > 1 and y_true.shape[-1] > 1:
        labels = jnp.argmax(y_true, axis=-1)
    else:
        labels = y_true.reshape(y_true.shape[0], -1)[:, 0]
    weights = jnp.take(
        jnp.asarray(class_weight, jnp.float32), labels.astype(jnp.int32), mode="fill", fill_value=1.0
    )
    return weights if sample_weight is None else weights * jnp.asarray(sample_weight)


def class_weight_vector(class_weight: Mapping[int, float] | None) -> Sequence[float] | None:
    """A dense vector from Keras's `{class_index: weight}`; classes not listed weigh 1."""
    if class_weight is None:
        return None
    if not isinstance(class_weight, Mapping) or not class_weight:
        raise TypeError(
            f"class_weight must be a non-empty dict {{class_index: weight}}, got {class_weight!r}"
        )
    for key, value in class_weight.items():
        if (
            isinstance(key, bool)
            or not isinstance(key, int)
            and not hasattr(key, "__index__")
            or int(key) < 0
        ):
            raise ValueError(f"class_weight keys must be class indices (ints >= 0), got {key!r}")
        if not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
            raise TypeError(f"class_weight[{key!r}] must be a number, got {type(value).__name__}")
    vector = [1.0] * (max(int(k) for k in class_weight) + 1)
    for key, value in class_weight.items():
        vector[int(key)] = float(value)
    return vector

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
from elegy.data.structure import batch_rows
from elegy.hooks import Collected
from elegy.metrics.mean import Mean
from elegy.naming import loss_log_name, unique_names
from elegy.shapes import select

_MEAN = Mean()


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
    """Named loss terms and metrics, and the pure functions that evaluate them.

    `metrics_states` is a dict of three groups: `"losses"` (running means of the total,
    named `loss`, and of each term when there is more than one), `"metrics"` (the
    metrics' own states) and `"added"` (running means of `add_metric` values).
    """

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
        self._static_names = ["loss", *loss_names, *metric_names]

    @property
    def has_loss(self) -> bool:
        return bool(self.losses)

    def batch_terms(
        self, y_true: Any, y_pred: Any, sample_weight: Any, mask: Any, added: Collected, **context: Any
    ) -> tuple[Any, dict[str, Any], dict[str, Any]]:
        """(total, named loss terms, named added metrics) of one batch.

        `context` (`x`, `states`) reaches losses that declare it; `added` holds what the
        forward pass reported with `add_loss`/`add_metric`.
        """
        terms = {
            name: loss(*select(loss.on, y_true, y_pred), sample_weight, mask, **context)
            for name, loss in self.losses
        }
        added_loss_names = unique_names([loss_log_name(n) for n in added.losses], taken=self._static_names)
        terms.update(zip(added_loss_names, added.losses.values(), strict=True))
        added_metric_names = unique_names(list(added.metrics), taken=[*self._static_names, *added_loss_names])
        added_metrics = dict(zip(added_metric_names, added.metrics.values(), strict=True))
        total = sum(terms.values(), jnp.zeros((), jnp.float32))
        return total, terms, added_metrics

    def init_states(self, terms: Mapping[str, Any], added_metrics: Mapping[str, Any]) -> dict[str, Any]:
        """Fresh accumulators; which terms get their own log is decided here, once."""
        tracked = ["loss", *terms] if self.log_each_loss or len(terms) > 1 else ["loss"]
        return {
            "losses": {name: _MEAN.init() for name in tracked},
            "metrics": {name: metric.init() for name, metric in self.metrics},
            "added": {name: _MEAN.init() for name in added_metrics},
        }

    def update_states(
        self,
        states: Any,
        y_true: Any,
        y_pred: Any,
        sample_weight: Any,
        mask: Any,
        total: Any,
        terms: dict[str, Any],
        added_metrics: dict[str, Any],
    ) -> dict[str, Any]:
        """Accumulate one batch; loss and added values are weighted by the batch's real rows."""
        rows = batch_rows(y_pred)

        def per_row(value: Any) -> jnp.ndarray:
            return jnp.broadcast_to(value, (rows,))

        values = {"loss": total, **terms}
        _check_known(states["added"], added_metrics)
        return {
            "losses": {
                n: _MEAN.update(s, per_row(values[n]), None, mask) for n, s in states["losses"].items()
            },
            "metrics": {
                name: metric.update(
                    states["metrics"][name], *select(metric.on, y_true, y_pred), sample_weight, mask
                )
                for name, metric in self.metrics
            },
            "added": {
                n: _MEAN.update(s, per_row(added_metrics[n]), None, mask) for n, s in states["added"].items()
            },
        }

    def logs(self, states: Mapping[str, Any]) -> dict[str, jnp.ndarray]:
        """Every tracked value by log name: `loss` first, then terms, metrics, added metrics.

        A metric with an array value (per-class F1) gives one log per entry, `name_0`, ...
        """
        losses = states["losses"]
        order = ["loss", *(n for n, _ in self.losses), *sorted(set(losses) - set(self._static_names))]
        logs = {name: _MEAN.compute(losses[name]) for name in order if name in losses}
        for name, metric in self.metrics:
            logs.update(expand_array_log(name, metric.compute(states["metrics"][name])))
        logs.update({name: _MEAN.compute(states["added"][name]) for name in sorted(states["added"])})
        return logs


def _check_known(tracked: Mapping[str, Any], reported: Mapping[str, Any]) -> None:
    unknown = sorted(set(reported) - set(tracked))
    if unknown:
        raise ValueError(
            f"add_metric was called with {unknown}, which the forward pass did not report "
            "while the model was initialized; report the same names on every call"
        )


def expand_array_log(name: str, value: jnp.ndarray) -> dict[str, jnp.ndarray]:
    """`{name: value}` for a scalar; `{name_0: value[0], ...}` for a vector."""
    value = jnp.asarray(value)
    if value.ndim == 0:
        return {name: value}
    return {f"{name}_{i}": v for i, v in enumerate(value.reshape(-1))}


def with_class_weight(sample_weight: Any, class_weight: Any, y_true: Any) -> jnp.ndarray | None:
    """`sample_weight` times the weight of each row's class (labels or one-hot targets)."""
    if class_weight is None:
        given: jnp.ndarray | None = sample_weight
        return given
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

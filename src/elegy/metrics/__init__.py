"""Metrics: pure `init`/`update`/`compute` over a state kept in `States.metrics_states`."""

from collections.abc import Callable
from typing import Any

from elegy.identifiers import resolve
from elegy.metrics.accuracy import SparseCategoricalAccuracy, sparse_categorical_accuracy
from elegy.metrics.mean import Mean, MeanMetricWrapper
from elegy.metrics.metric import Metric
from elegy.metrics.regression import MeanSquaredError

_BY_NAME: dict[str, Callable[[str], Metric]] = {
    "accuracy": SparseCategoricalAccuracy,
    "acc": SparseCategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
}


def get(identifier: Any) -> Metric:
    """A Metric from a Metric, a known name (`"accuracy"`) or a function `(y_true, y_pred)`.

    `"accuracy"` means class-index accuracy on integer labels (`SparseCategoricalAccuracy`)
    and is logged as `accuracy`, as Keras users expect.
    """
    return resolve(identifier, argument="metrics", base=Metric, by_name=_BY_NAME, wrap=MeanMetricWrapper)


__all__ = [
    "Mean",
    "MeanMetricWrapper",
    "MeanSquaredError",
    "Metric",
    "SparseCategoricalAccuracy",
    "get",
    "sparse_categorical_accuracy",
]

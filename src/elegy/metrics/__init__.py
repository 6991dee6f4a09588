"""Metrics: pure `init`/`update`/`compute` over a state kept in `States.metrics_states`."""
from typing import Any, Callable, Dict

from elegy.metrics.accuracy import SparseCategoricalAccuracy, sparse_categorical_accuracy
from elegy.metrics.mean import Mean, MeanMetricWrapper
from elegy.metrics.metric import Metric
from elegy.metrics.regression import MeanSquaredError

_BY_NAME: Dict[str, Callable[[str], Metric]] = {
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
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        if identifier not in _BY_NAME:
            raise ValueError(
                f"metrics: unknown metric name {identifier!r}; known names: {sorted(_BY_NAME)}"
            )
        return _BY_NAME[identifier](name=identifier)
    if callable(identifier):
        return MeanMetricWrapper(identifier)
    raise TypeError(
        "metrics: expected a Metric, a metric name or a function (y_true, y_pred), "
        f"got {type(identifier).__name__}"
    )


__all__ = [
    "Mean",
    "MeanMetricWrapper",
    "MeanSquaredError",
    "Metric",
    "SparseCategoricalAccuracy",
    "get",
    "sparse_categorical_accuracy",
]

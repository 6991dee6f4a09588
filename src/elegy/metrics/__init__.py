"""Metrics: pure `init`/`update`/`compute` over a state kept in `States.metrics_states`.

Examples:
    A model takes metrics as `elegy.Model(..., metrics=["accuracy"])` and runs these three
    functions inside its compiled steps. Called by hand, over two batches where 2 of the
    3 rows are classified right:

    >>> import jax.numpy as jnp
    >>> import elegy
    >>> metric = elegy.metrics.get("accuracy")
    >>> state = metric.update(metric.init(), jnp.array([1, 0]), jnp.array([[0.3, 0.7], [0.4, 0.6]]))
    >>> state = metric.update(state, jnp.array([0]), jnp.array([[0.9, 0.1]]))
    >>> round(float(metric.compute(state)), 4)
    0.6667
"""

from collections.abc import Callable
from typing import Any

from elegy import losses as _losses
from elegy.identifiers import resolve
from elegy.metrics.accuracies import (
    Accuracy,
    AutoAccuracy,
    BinaryAccuracy,
    CategoricalAccuracy,
    SparseCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    TopKCategoricalAccuracy,
    accuracy,
    binary_accuracy,
    categorical_accuracy,
    sparse_categorical_accuracy,
    sparse_top_k_categorical_accuracy,
    top_k_categorical_accuracy,
)
from elegy.metrics.auc import AUC
from elegy.metrics.confusion import F1Score, MeanIoU, Precision, Recall
from elegy.metrics.mean import Accumulator, LossMean, Mean, MeanMetricWrapper, Sum
from elegy.metrics.metric import Metric
from elegy.metrics.regression import (
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    RootMeanSquaredError,
)


def _loss_metric(loss_name: str) -> Callable[..., Metric]:
    return lambda name=None: LossMean(_losses.get(loss_name), name=name)


# Loss names first, so that a metric of the same name ("mse", "mae") takes precedence.
_BY_NAME: dict[str, Callable[..., Metric]] = {name: _loss_metric(name) for name in _losses.NAMES}
_BY_NAME.update(
    {
        "accuracy": AutoAccuracy,
        "acc": AutoAccuracy,
        "binary_accuracy": BinaryAccuracy,
        "categorical_accuracy": CategoricalAccuracy,
        "sparse_categorical_accuracy": SparseCategoricalAccuracy,
        "top_k_categorical_accuracy": TopKCategoricalAccuracy,
        "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
        "mean_squared_error": MeanSquaredError,
        "mse": MeanSquaredError,
        "mean_absolute_error": MeanAbsoluteError,
        "mae": MeanAbsoluteError,
        "mean_absolute_percentage_error": MeanAbsolutePercentageError,
        "mape": MeanAbsolutePercentageError,
        "mean_squared_logarithmic_error": MeanSquaredLogarithmicError,
        "msle": MeanSquaredLogarithmicError,
        "root_mean_squared_error": RootMeanSquaredError,
        "rmse": RootMeanSquaredError,
        "precision": Precision,
        "recall": Recall,
        "auc": AUC,
    }
)


def get(identifier: Any) -> Metric:
    """A Metric from a Metric, a Loss, a known name (`"accuracy"`) or a function.

    `"accuracy"` picks binary, one-hot or class-index accuracy from the shapes of the
    targets and predictions, as Keras does, and is logged as `accuracy`. Loss names
    (`"binary_crossentropy"`, `"kl_divergence"`, ...) give the loss averaged over samples.

    Examples:
        >>> import jax.numpy as jnp
        >>> type(get("accuracy")).__name__, type(get("kl_divergence")).__name__
        ('AutoAccuracy', 'LossMean')
        >>> m = get("mae")  # logged under the name it was given
        >>> state = m.update(m.init(), jnp.array([[1.0], [1.0]]), jnp.array([[3.0], [2.0]]))
        >>> m.name, float(m.compute(state))  # (2 + 1) / 2
        ('mae', 1.5)
    """
    if isinstance(identifier, _losses.Loss):
        return LossMean(identifier)
    if isinstance(identifier, Accumulator):
        raise TypeError(
            f"metrics: elegy.metrics.{type(identifier).__name__} reduces values, not targets and "
            "predictions; pass a function (y_true, y_pred) -> values, which is averaged over "
            "samples, or elegy.metrics.MeanMetricWrapper(function)"
        )
    return resolve(identifier, argument="metrics", base=Metric, by_name=_BY_NAME, wrap=MeanMetricWrapper)


__all__ = [
    "AUC",
    "Accuracy",
    "AutoAccuracy",
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "F1Score",
    "LossMean",
    "Mean",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanIoU",
    "MeanMetricWrapper",
    "MeanSquaredError",
    "MeanSquaredLogarithmicError",
    "Metric",
    "Precision",
    "Recall",
    "RootMeanSquaredError",
    "SparseCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy",
    "Sum",
    "TopKCategoricalAccuracy",
    "accuracy",
    "binary_accuracy",
    "categorical_accuracy",
    "get",
    "sparse_categorical_accuracy",
    "sparse_top_k_categorical_accuracy",
    "top_k_categorical_accuracy",
]

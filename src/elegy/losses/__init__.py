"""Losses: pure per-sample functions and thin classes holding reduction, weight and name."""

from collections.abc import Callable
from typing import Any

from elegy.identifiers import resolve
from elegy.losses.crossentropy import SparseCategoricalCrossentropy, sparse_categorical_crossentropy
from elegy.losses.loss import Loss, LossFunctionWrapper, reduce
from elegy.losses.regression import MeanSquaredError, mean_squared_error

_BY_NAME: dict[str, Callable[..., Loss]] = {
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
}


def get(identifier: Any) -> Loss:
    """A Loss from a Loss, a known name (Keras's defaults) or a function `(y_true, y_pred)`."""
    return resolve(identifier, argument="loss", base=Loss, by_name=_BY_NAME, wrap=LossFunctionWrapper)


__all__ = [
    "get",
    "Loss",
    "LossFunctionWrapper",
    "MeanSquaredError",
    "SparseCategoricalCrossentropy",
    "mean_squared_error",
    "reduce",
    "sparse_categorical_crossentropy",
]

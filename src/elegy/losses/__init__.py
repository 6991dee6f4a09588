"""Losses: pure per-sample functions and thin classes holding reduction, weight and name."""
from elegy.losses.crossentropy import SparseCategoricalCrossentropy, sparse_categorical_crossentropy
from elegy.losses.loss import Loss, LossFunctionWrapper, reduce
from elegy.losses.regression import MeanSquaredError, mean_squared_error
from typing import Any, Callable, Dict

_BY_NAME: Dict[str, Callable[..., Loss]] = {
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
}


def get(identifier: Any) -> Loss:
    """A Loss from a Loss, a known name (Keras's defaults) or a function `(y_true, y_pred)`."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        if identifier not in _BY_NAME:
            raise ValueError(f"loss: unknown loss name {identifier!r}; known names: {sorted(_BY_NAME)}")
        return _BY_NAME[identifier](name=identifier)
    if callable(identifier):
        return LossFunctionWrapper(identifier)
    raise TypeError(
        "loss: expected an elegy.losses.Loss, a loss name or a function (y_true, y_pred), "
        f"got {type(identifier).__name__}"
    )


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

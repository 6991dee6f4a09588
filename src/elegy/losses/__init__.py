"""Losses: pure per-sample functions and thin classes holding reduction, weight and name.

Examples:
    A function gives one value per sample; its class reduces them to one number (errors
    of 1 and 2 give `(1 + 4) / 2 = 2.5`). `elegy.Model(..., loss=...)` takes such an
    instance, a name such as `"mse"`, or a list or dict of them.

    >>> import jax.numpy as jnp
    >>> import elegy
    >>> y_true, y_pred = jnp.array([[1.0], [2.0]]), jnp.array([[0.0], [4.0]])
    >>> [float(v) for v in elegy.losses.mean_squared_error(y_true, y_pred)]
    [1.0, 4.0]
    >>> float(elegy.losses.MeanSquaredError()(y_true, y_pred))
    2.5
"""

from collections.abc import Callable
from typing import Any

from elegy.identifiers import resolve
from elegy.losses.crossentropy import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    SparseCategoricalCrossentropy,
    binary_crossentropy,
    categorical_crossentropy,
    sparse_categorical_crossentropy,
)
from elegy.losses.loss import Loss, LossFunctionWrapper, reduce
from elegy.losses.probabilistic import (
    Hinge,
    KLDivergence,
    Poisson,
    SquaredHinge,
    hinge,
    kl_divergence,
    poisson,
    squared_hinge,
)
from elegy.losses.regression import (
    CosineSimilarity,
    Huber,
    LogCosh,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    cosine_similarity,
    huber,
    log_cosh,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_logarithmic_error,
)

_BY_NAME: dict[str, Callable[..., Loss]] = {
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError,
    "mae": MeanAbsoluteError,
    "mean_absolute_percentage_error": MeanAbsolutePercentageError,
    "mape": MeanAbsolutePercentageError,
    "mean_squared_logarithmic_error": MeanSquaredLogarithmicError,
    "msle": MeanSquaredLogarithmicError,
    "huber": Huber,
    "log_cosh": LogCosh,
    "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "kl_divergence": KLDivergence,
    "kld": KLDivergence,
    "poisson": Poisson,
    "cosine_similarity": CosineSimilarity,
    "hinge": Hinge,
    "squared_hinge": SquaredHinge,
}
NAMES = frozenset(_BY_NAME)


def get(identifier: Any) -> Loss:
    """A Loss from a Loss, a known name (Keras's defaults, e.g. probabilities for the
    cross-entropies) or a function `(y_true, y_pred)`.

    Examples:
        A name gives the matching class, logged under that name; a function is wrapped.

        >>> import jax.numpy as jnp
        >>> loss = get("mae")
        >>> type(loss).__name__, loss.name
        ('MeanAbsoluteError', 'mae')
        >>> float(get(lambda t, p: jnp.abs(p - t))(jnp.array([[1.0]]), jnp.array([[4.0]])))
        3.0
    """
    return resolve(identifier, argument="loss", base=Loss, by_name=_BY_NAME, wrap=LossFunctionWrapper)


__all__ = [
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "CosineSimilarity",
    "Hinge",
    "Huber",
    "KLDivergence",
    "LogCosh",
    "Loss",
    "LossFunctionWrapper",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredError",
    "MeanSquaredLogarithmicError",
    "Poisson",
    "SparseCategoricalCrossentropy",
    "SquaredHinge",
    "binary_crossentropy",
    "categorical_crossentropy",
    "cosine_similarity",
    "get",
    "hinge",
    "huber",
    "kl_divergence",
    "log_cosh",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_error",
    "mean_squared_logarithmic_error",
    "poisson",
    "reduce",
    "sparse_categorical_crossentropy",
    "squared_hinge",
]

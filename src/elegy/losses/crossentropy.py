"""Cross-entropy losses, computed in log space so large logits never give NaN."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from elegy.losses.loss import Loss
from elegy.shapes import class_indices

EPSILON = 1e-7


def sparse_categorical_crossentropy(
    y_true: jnp.ndarray, y_pred: jnp.ndarray, from_logits: bool = False
) -> jnp.ndarray:
    """Per-sample cross-entropy between integer labels and class scores.

    `y_true` has shape `(batch,)` (or `(batch, 1)`) with class indices; `y_pred` has shape
    `(batch, classes)` with logits (`from_logits=True`) or probabilities.
    """
    labels = class_indices(y_true, y_pred, "sparse_categorical_crossentropy")
    if from_logits:
        log_probs = jax.nn.log_softmax(y_pred, axis=-1)
    else:
        probs = y_pred / jnp.sum(y_pred, axis=-1, keepdims=True)
        log_probs = jnp.log(jnp.clip(probs, EPSILON, 1.0 - EPSILON))
    return -jnp.take_along_axis(log_probs, labels[..., None], axis=-1)[..., 0]


class SparseCategoricalCrossentropy(Loss):
    """Cross-entropy for integer class labels; see `sparse_categorical_crossentropy`.

    Example:
        >>> import jax.numpy as jnp
        >>> loss = SparseCategoricalCrossentropy(from_logits=True)
        >>> round(float(loss(jnp.array([0, 1]), jnp.array([[0.0, 0.0], [0.0, 0.0]]))), 4)
        0.6931
    """

    def __init__(
        self,
        from_logits: bool = False,
        reduction: str = "sum_over_batch_size",
        weight: float = 1.0,
        name: str | None = None,
    ):
        super().__init__(reduction, weight, name)
        self.from_logits = from_logits

    def call(self, y_true, y_pred):
        return sparse_categorical_crossentropy(y_true, y_pred, self.from_logits)


__all__ = ["sparse_categorical_crossentropy", "SparseCategoricalCrossentropy"]

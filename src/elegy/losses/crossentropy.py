"""Cross-entropies, computed in log space so large logits never give NaN or inf."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from elegy.losses.loss import LossFunctionWrapper
from elegy.shapes import check_label_range, class_indices, matching_targets, per_sample_mean

EPSILON = 1e-7


def _log_probs(y_pred: jnp.ndarray, from_logits: bool) -> jnp.ndarray:
    if from_logits:
        return jax.nn.log_softmax(y_pred, axis=-1)
    probs = y_pred / jnp.sum(y_pred, axis=-1, keepdims=True)
    return jnp.log(jnp.clip(probs, EPSILON, 1.0 - EPSILON))


def binary_crossentropy(
    y_true: jnp.ndarray, y_pred: jnp.ndarray, from_logits: bool = False, label_smoothing: float = 0.0
) -> jnp.ndarray:
    """Per-sample binary cross-entropy, averaged over the last axis.

    Targets are smoothed towards 0.5 by `label_smoothing`. From logits, it uses
    `log_sigmoid`, exact for any logit; probabilities are clipped to [1e-7, 1 - 1e-7].

    Examples:
        A positive scored 0.8 costs `-log(0.8)` and a negative scored 0.4 costs
        `-log(1 - 0.4)`; the sample's value is their mean.

        >>> import jax.numpy as jnp
        >>> import numpy as np
        >>> value = binary_crossentropy(jnp.array([[1.0, 0.0]]), jnp.array([[0.8, 0.4]]))
        >>> bool(np.isclose(float(value[0]), -(np.log(0.8) + np.log(0.6)) / 2))
        True
    """
    y_true = matching_targets(y_true, y_pred, "binary_crossentropy")
    y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        log_p, log_not_p = jax.nn.log_sigmoid(y_pred), jax.nn.log_sigmoid(-y_pred)
    else:
        p = jnp.clip(y_pred, EPSILON, 1.0 - EPSILON)
        log_p, log_not_p = jnp.log(p), jnp.log1p(-p)
    return -per_sample_mean(y_true * log_p + (1.0 - y_true) * log_not_p)


def categorical_crossentropy(
    y_true: jnp.ndarray, y_pred: jnp.ndarray, from_logits: bool = False, label_smoothing: float = 0.0
) -> jnp.ndarray:
    """Per-sample cross-entropy between one-hot (or soft) targets and class scores.

    Examples:
        The true class gets probability 0.25, so the loss is `-log(0.25) = log(4)`.

        >>> import jax.numpy as jnp
        >>> value = categorical_crossentropy(jnp.array([[1.0, 0.0, 0.0]]), jnp.array([[0.25, 0.5, 0.25]]))
        >>> round(float(value[0]), 4)
        1.3863
    """
    y_true = matching_targets(y_true, y_pred, "categorical_crossentropy")
    classes = y_pred.shape[-1]
    y_true = y_true * (1.0 - label_smoothing) + label_smoothing / classes
    return -jnp.sum(y_true * _log_probs(y_pred, from_logits), axis=-1)


def sparse_categorical_crossentropy(
    y_true: jnp.ndarray, y_pred: jnp.ndarray, from_logits: bool = False, ignore_class: int | None = None
) -> jnp.ndarray:
    """Per-sample cross-entropy between integer labels and class scores.

    `y_true` has shape `(batch,)` (or `(batch, 1)`) with class indices; `y_pred` has shape
    `(batch, classes)` with logits (`from_logits=True`) or probabilities. Rows labelled
    `ignore_class` give 0 (the class `SparseCategoricalCrossentropy` also leaves them out
    of the mean). A label outside `[0, classes)` is an error where the labels are known
    (eager calls, `run_eagerly=True`) and gives NaN inside compiled code, so it cannot pass
    unnoticed either way.

    Examples:
        Each row costs minus the log of the probability given to its label: `-log(0.8)`
        and `-log(0.5)`.

        >>> import jax.numpy as jnp
        >>> probs = jnp.array([[0.1, 0.1, 0.8], [0.5, 0.25, 0.25]])
        >>> [round(float(v), 4) for v in sparse_categorical_crossentropy(jnp.array([2, 0]), probs)]
        [0.2231, 0.6931]
    """
    labels = class_indices(y_true, y_pred, "sparse_categorical_crossentropy")
    check_label_range(labels, y_pred.shape[-1], ignore_class, "sparse_categorical_crossentropy")
    ignored = labels == ignore_class if ignore_class is not None else jnp.zeros(labels.shape, bool)
    safe = jnp.where(ignored, 0, labels)
    log_probs = jnp.take_along_axis(_log_probs(y_pred, from_logits), safe[..., None], axis=-1)[..., 0]
    in_range = (labels >= 0) & (labels < y_pred.shape[-1])
    return jnp.where(ignored, 0.0, jnp.where(in_range, -log_probs, jnp.nan))


class BinaryCrossentropy(LossFunctionWrapper):
    """Binary cross-entropy; see `binary_crossentropy`.

    Examples:
        A logit of 0 is a probability of 0.5, which costs `log(2)` whatever the label.

        >>> import jax.numpy as jnp
        >>> loss = BinaryCrossentropy(from_logits=True)
        >>> round(float(loss(jnp.array([[1.0], [0.0]]), jnp.array([[0.0], [0.0]]))), 4)
        0.6931
    """

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        reduction: str = "sum_over_batch_size",
        weight: float = 1.0,
        name: str | None = None,
        on: Any = None,
    ) -> None:
        super().__init__(
            binary_crossentropy,
            reduction,
            weight,
            name,
            on=on,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
        )


class CategoricalCrossentropy(LossFunctionWrapper):
    """Cross-entropy for one-hot targets; see `categorical_crossentropy`.

    Examples:
        Four equal logits give each class probability 1/4, so the loss is `log(4)`.

        >>> import jax.numpy as jnp
        >>> loss = CategoricalCrossentropy(from_logits=True)
        >>> round(float(loss(jnp.array([[0.0, 0.0, 1.0, 0.0]]), jnp.zeros((1, 4)))), 4)
        1.3863
    """

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        reduction: str = "sum_over_batch_size",
        weight: float = 1.0,
        name: str | None = None,
        on: Any = None,
    ) -> None:
        super().__init__(
            categorical_crossentropy,
            reduction,
            weight,
            name,
            on=on,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
        )


class SparseCategoricalCrossentropy(LossFunctionWrapper):
    """Cross-entropy for integer labels; see `sparse_categorical_crossentropy`.

    With `ignore_class`, rows carrying that label count neither in the sum nor in the
    number of rows the sum is divided by.

    Examples:
        >>> import jax.numpy as jnp
        >>> loss = SparseCategoricalCrossentropy(from_logits=True)
        >>> round(float(loss(jnp.array([0, 1]), jnp.array([[0.0, 0.0], [0.0, 0.0]]))), 4)
        0.6931
    """

    def __init__(
        self,
        from_logits: bool = False,
        ignore_class: int | None = None,
        reduction: str = "sum_over_batch_size",
        weight: float = 1.0,
        name: str | None = None,
        on: Any = None,
    ) -> None:
        super().__init__(
            sparse_categorical_crossentropy,
            reduction,
            weight,
            name,
            on=on,
            from_logits=from_logits,
            ignore_class=ignore_class,
        )
        self.ignore_class = ignore_class

    def element_mask(self, y_true: Any, y_pred: Any) -> jnp.ndarray | None:
        if self.ignore_class is None:
            return None
        labels = class_indices(y_true, y_pred, "sparse_categorical_crossentropy")
        return (labels != self.ignore_class).astype(jnp.float32)

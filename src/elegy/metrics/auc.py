"""`AUC`: area under the ROC or precision-recall curve, from binned confusion counts."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from elegy.arguments import check_int
from elegy.metrics.confusion import _ratio
from elegy.metrics.metric import Metric
from elegy.shapes import matching_targets
from elegy.weighting import element_weights

CURVES = ("ROC", "PR")


class AUC(Metric):
    """Area under the ROC curve (`curve="ROC"`) or the precision-recall curve (`"PR"`).

    Scores are compared with `num_thresholds` thresholds evenly spaced over [0, 1] (plus
    one just below 0 and one just above 1), and weighted confusion counts are summed per
    threshold over the epoch. ROC uses the trapezoidal rule; PR uses the step-wise sum
    `sum((R_k - R_k+1) * P_k)` that scikit-learn calls average precision. More thresholds
    give a closer approximation of the exact, unbinned value. Multi-label targets are
    pooled into one binary problem.

    Examples:
        ROC AUC is the fraction of (positive, negative) pairs ranked the right way: the
        positive scored 0.35 is below the negative scored 0.4, the other three pairs are
        right, so the area is 3/4.

        >>> import jax.numpy as jnp
        >>> m = AUC()
        >>> state = m.update(m.init(), jnp.array([0.0, 0.0, 1.0, 1.0]), jnp.array([0.1, 0.4, 0.35, 0.8]))
        >>> round(float(m.compute(state)), 4)
        0.75
    """

    def __init__(
        self,
        num_thresholds: int = 200,
        curve: str = "ROC",
        from_logits: bool = False,
        name: str | None = None,
        on: Any = None,
    ):
        if curve not in CURVES:
            raise ValueError(f"curve must be one of {CURVES}, got {curve!r}")
        num_thresholds = check_int(num_thresholds, "num_thresholds", 3)
        super().__init__(name or "auc", on=on)
        self.num_thresholds, self.curve, self.from_logits = num_thresholds, curve, from_logits

    def thresholds(self) -> jnp.ndarray:
        inner = jnp.arange(1, self.num_thresholds - 1, dtype=jnp.float32) / (self.num_thresholds - 1)
        return jnp.concatenate([jnp.array([-1e-7]), inner, jnp.array([1.0 + 1e-7])])

    def init(self) -> jnp.ndarray:
        return jnp.zeros((2, self.num_thresholds), jnp.float32)  # tp, fp at each threshold

    def update(
        self,
        state: jnp.ndarray,
        y_true: Any,
        y_pred: Any,
        sample_weight: jnp.ndarray | None = None,
        mask: jnp.ndarray | None = None,
    ) -> jnp.ndarray:
        y_true = matching_targets(y_true, y_pred, self.name) > 0.5
        scores = jax.nn.sigmoid(y_pred) if self.from_logits else y_pred
        weights = element_weights(jnp.asarray(scores, jnp.float32), sample_weight, mask).ravel()
        above = scores.ravel()[:, None] > self.thresholds()[None, :]
        positive = y_true.ravel()[:, None]
        tp = jnp.sum(weights[:, None] * (above & positive), axis=0)
        fp = jnp.sum(weights[:, None] * (above & ~positive), axis=0)
        return state + jnp.stack([tp, fp])

    def compute(self, state: jnp.ndarray) -> jnp.ndarray:
        tp, fp = state
        positives, negatives = tp[0], fp[0]  # the lowest threshold predicts every sample positive
        recall = _ratio(tp, positives)
        if self.curve == "ROC":
            false_positive_rate = _ratio(fp, negatives)
            return jnp.sum(
                (false_positive_rate[:-1] - false_positive_rate[1:]) * (recall[:-1] + recall[1:]) / 2
            )
        precision = _ratio(tp, tp + fp)
        return jnp.sum((recall[:-1] - recall[1:]) * precision[:-1])

"""What the loops hand back in Keras's shapes: `return_dict=False` results, and the epochs
`validation_freq` names.

Examples:
    >>> as_returned({"loss": 0.5, "accuracy": 0.75}, return_dict=False)
    [0.5, 0.75]
    >>> as_returned({"loss": 0.5}, return_dict=False)  # one value: the value itself
    0.5
    >>> validates(checked_validation_freq([1, 3]), epoch=2)  # the third epoch (0-based 2)
    True
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from elegy.arguments import check_int

Result = dict[str, float] | list[float] | float


def as_returned(logs: Mapping[str, Any], return_dict: bool) -> Result:
    """`logs` as a dict of floats, or (`return_dict=False`, as Keras) their values in
    the order of the logs (the loss first), a single value alone."""
    values = dict(logs)
    if return_dict:
        return values
    if len(values) == 1:
        return next(iter(values.values()))  # type: ignore[no-any-return]
    return list(values.values())


def checked_validation_freq(value: Any) -> int | frozenset[int]:
    """`validation_freq`: validate every `value` epochs (an integer >= 1), or after the
    epochs a collection names (1-based, as Keras counts them)."""
    if isinstance(value, Collection) and not isinstance(value, str):
        epochs = frozenset(check_int(epoch, "validation_freq's epochs", 1) for epoch in value)
        if not epochs:
            raise ValueError(
                "validation_freq: an empty collection of epochs never validates; pass None data instead"
            )
        return epochs
    try:
        return check_int(value, "validation_freq", 1)
    except (TypeError, ValueError):
        raise ValueError(
            f"validation_freq must be an integer >= 1 or a list of epochs (1-based), got {value!r}"
        ) from None


def validates(freq: int | frozenset[int], epoch: int) -> bool:
    """Whether the epoch `epoch` (0-based, as fit counts them) ends with a validation."""
    if isinstance(freq, frozenset):
        return epoch + 1 in freq
    return (epoch + 1) % freq == 0

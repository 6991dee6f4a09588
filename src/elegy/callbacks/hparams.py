"""The run's hyperparameters for TensorBoard's HParams dashboard, in its plugin's own records.

The dashboard compares runs by hyperparameter: a run is a *session* when its folder holds
a session start record (the hyperparameters, as plugin data under the tag
`_hparams_/session_start_info`), and the session's metrics are the scalar curves of the
folders below it (`train/epoch_loss`, `validation/epoch_accuracy`, ...). Without an
experiment record, which would have to list every run's hyperparameters at once,
TensorBoard builds the experiment from all the sessions under its `--logdir`, so runs
written separately (`runs/lr=0.01`, `runs/lr=0.1`) line up in one table.

Built with the protocol buffers tensorboardX ships (TensorFlow not needed); values are
numbers, strings or booleans, as the plugin stores them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

SESSION_START_TAG = "_hparams_/session_start_info"
SESSION_END_TAG = "_hparams_/session_end_info"
PLUGIN_NAME = "hparams"

Value = str | float | bool


def checked_hparams(hparams: Any) -> dict[str, Value]:
    """`hparams`: a mapping of names to numbers, strings or booleans (None entries are
    left out), as floats, strings and booleans.

    Examples:
        >>> checked_hparams({"learning_rate": 1e-3, "optimizer": "adam", "dropout": None})
        {'learning_rate': 0.001, 'optimizer': 'adam'}
        >>> checked_hparams({"layers": [64, 64]})
        Traceback (most recent call last):
        ...
        TypeError: hparams['layers'] must be a number, a string or a bool, got list [64, 64]
    """
    if not isinstance(hparams, Mapping):
        raise TypeError(f"hparams must be a dict of names to values, got {type(hparams).__name__}")
    checked: dict[str, Value] = {}
    for name, value in hparams.items():
        if not isinstance(name, str):
            raise TypeError(f"hparams names must be strings, got {name!r}")
        if value is None:
            continue
        if isinstance(value, (bool, str, np.bool_)):
            checked[name] = value if isinstance(value, str) else bool(value)
        elif isinstance(value, (int, float)) or _is_numpy_number(value):
            checked[name] = float(value)
        else:
            raise TypeError(
                f"hparams[{name!r}] must be a number, a string or a bool, "
                f"got {type(value).__name__} {value!r}"
            )
    return checked


def model_hparams(model: Any, params: Mapping[str, Any]) -> dict[str, Value]:
    """What defines a run of `model.fit`, as hyperparameters: the model's settings (its
    class, loss, metrics, optimizer, seed and recipes) and fit's (`batch_size`, `epochs`...).

    Examples:
        >>> import types
        >>> model = types.SimpleNamespace(loss="mse", optimizer=None, seed=3)
        >>> model_hparams(model, {"epochs": 2, "steps": 5})
        {'model': 'SimpleNamespace', 'loss': 'mse', 'seed': 3.0, 'fit.epochs': 2.0, 'fit.steps': 5.0}
    """
    settings: dict[str, Any] = {"model": type(model).__name__}
    for name in (
        "loss",
        "metrics",
        "optimizer",
        "seed",
        "dtype_policy",
        "ema_decay",
        "gradient_accumulation_steps",
    ):
        value = getattr(model, name, None)
        if value is not None:
            settings[name] = _described(value)
    settings.update({f"fit.{name}": _described(value) for name, value in sorted(params.items())})
    return checked_hparams({name: value for name, value in settings.items() if value is not None})


def session_start(hparams: Mapping[str, Value], start_time: float | None = None) -> Any:
    """The Summary that makes a run a session with these hyperparameters."""
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData, SessionStartInfo

    info = SessionStartInfo(start_time_secs=time.time() if start_time is None else start_time)
    for name, value in hparams.items():
        if isinstance(value, bool):
            info.hparams[name].bool_value = value
        elif isinstance(value, str):
            info.hparams[name].string_value = value
        else:
            info.hparams[name].number_value = value
    return _summary(SESSION_START_TAG, HParamsPluginData(session_start_info=info, version=0))


def session_end(succeeded: bool = True, end_time: float | None = None) -> Any:
    """The Summary that closes the session: its status and end time."""
    from tensorboardX.proto.api_pb2 import Status
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData, SessionEndInfo

    status = Status.Value("STATUS_SUCCESS" if succeeded else "STATUS_FAILURE")
    info = SessionEndInfo(status=status, end_time_secs=time.time() if end_time is None else end_time)
    return _summary(SESSION_END_TAG, HParamsPluginData(session_end_info=info, version=0))


def _summary(tag: str, content: Any) -> Any:
    from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata

    plugin = SummaryMetadata.PluginData(plugin_name=PLUGIN_NAME, content=content.SerializeToString())
    return Summary(value=[Summary.Value(tag=tag, metadata=SummaryMetadata(plugin_data=plugin))])


def _described(value: Any) -> Any:
    """A setting as a hyperparameter: numbers and strings as they are, anything else by
    its name (a function, an optimizer) or, for lists and dicts, a short text."""
    if value is None or isinstance(value, (bool, str, int, float)) or _is_numpy_number(value):
        return value
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # an optax transformation
        return type(value).__name__
    if isinstance(value, (list, tuple)):
        return ", ".join(str(_described(item)) for item in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{key}: {_described(item)}" for key, item in value.items())
    name = getattr(value, "__name__", None) or getattr(value, "name", None)
    return name if isinstance(name, str) else type(value).__name__


def _is_numpy_number(value: Any) -> bool:
    return isinstance(value, np.generic) and np.issubdtype(type(value), np.number)

"""The order in which fit, evaluate and predict call every callback hook, recorded through
a callback and compared with Keras 3's documented order, written out by hand.

Keras 3 (keras.callbacks.Callback, and the loops of its JAX trainer) calls, for `fit`:
on_train_begin; per epoch on_epoch_begin, per batch on_train_batch_begin and
on_train_batch_end, then (when validating) on_test_begin, the test batch hooks and
on_test_end, then on_epoch_end; finally on_train_end. `evaluate` is on_test_begin, the
test batch hooks, on_test_end; `predict` is on_predict_begin, the predict batch hooks,
on_predict_end. One difference, documented: with `steps_per_execution` > 1 Keras calls
the batch hooks once per execution, Elegy once per step (the later steps of a fused
execution after it returns), so every batch index appears.
"""

import optax
from tests.conftest import blobs, mlp_forward

import elegy
from elegy.callbacks import Callback

X, Y = blobs(100)  # batch 16: 7 training batches
VX, VY = blobs(40, seed=1)  # 3 validation batches

HOOKS = [
    "on_train_begin",
    "on_train_end",
    "on_epoch_begin",
    "on_epoch_end",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_test_begin",
    "on_test_end",
    "on_test_batch_begin",
    "on_test_batch_end",
    "on_predict_begin",
    "on_predict_end",
    "on_predict_batch_begin",
    "on_predict_batch_end",
]


class Recording(Callback):
    """Records (hook, index) for every hook with an index, (hook,) for the others, and the
    log names each `*_end` hook received."""

    def __init__(self):
        super().__init__()
        self.calls, self.log_names = [], {}

    def __getattribute__(self, name):
        if name in HOOKS:
            calls, log_names = super().__getattribute__("calls"), super().__getattribute__("log_names")

            def record(*args):
                *index, logs = args
                calls.append((name, *index))
                if name.endswith("_end"):
                    log_names.setdefault(name, set()).update(logs)

            return record
        return super().__getattribute__(name)


def batches(kind, count):
    return [
        call
        for step in range(count)
        for call in ((f"on_{kind}_batch_begin", step), (f"on_{kind}_batch_end", step))
    ]


def keras_fit_order(epochs, train_batches, validation_batches):
    order = [("on_train_begin",)]
    for epoch in range(epochs):
        order += [("on_epoch_begin", epoch), *batches("train", train_batches)]
        order += [("on_test_begin",), *batches("test", validation_batches), ("on_test_end",)]
        order += [("on_epoch_end", epoch)]
    return order + [("on_train_end",)]


def test_fit_evaluate_and_predict_call_the_hooks_in_keras_order():
    model = elegy.Model(
        mlp_forward,
        loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        optimizer=optax.sgd(0.1),
        steps_per_execution=3,  # 7 batches: two fused executions of 3, then one alone
    )
    recording = Recording()
    model.fit(X, Y, batch_size=16, epochs=2, validation_data=(VX, VY), verbose=0, callbacks=[recording])
    assert recording.calls == keras_fit_order(2, 7, 3)
    assert recording.log_names["on_train_batch_end"] == {"loss", "accuracy"}
    assert recording.log_names["on_epoch_end"] == {"loss", "accuracy", "val_loss", "val_accuracy"}

    recording = Recording()
    model.evaluate(VX, VY, batch_size=16, verbose=0, callbacks=[recording])
    assert recording.calls == [("on_test_begin",), *batches("test", 3), ("on_test_end",)]
    assert recording.log_names["on_test_end"] == {"loss", "accuracy"}

    recording = Recording()
    model.predict(X, batch_size=16, callbacks=[recording])
    assert recording.calls == [("on_predict_begin",), *batches("predict", 7), ("on_predict_end",)]
    assert recording.log_names["on_predict_batch_end"] == {"outputs"}

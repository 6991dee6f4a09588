"""Losses, metrics, regularizers and add_loss/add_metric through fit and evaluate."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score
from tests.conftest import blobs, mlp_forward

import elegy

SCE = elegy.losses.SparseCategoricalCrossentropy


def ce(logits, y):
    return np.asarray(optax.softmax_cross_entropy_with_integer_labels(jnp.asarray(logits), jnp.asarray(y)))


def test_epoch_metrics_equal_scikit_learn_on_the_whole_data_set():
    x, y = blobs(150, seed=3)
    binary = (y == 1).astype(np.float32)

    def forward(x):
        return {"classes": hk.Linear(3)(x), "is_one": jax.nn.sigmoid(hk.Linear(1)(x))[:, 0]}

    model = elegy.Model(
        forward,
        loss=SCE(from_logits=True, on="classes"),
        metrics={
            "f1": elegy.metrics.F1Score(num_classes=3, average="macro", on="classes"),
            "f1_each": elegy.metrics.F1Score(num_classes=3, average=None, on="classes"),
            "precision": elegy.metrics.Precision(on="is_one"),
            "recall": elegy.metrics.Recall(on="is_one"),
            "auc": elegy.metrics.AUC(num_thresholds=2000, on="is_one"),
        },
        optimizer=optax.adam(1e-2),
    )
    targets = {"classes": y, "is_one": binary}
    model.fit(x, targets, epochs=2, batch_size=32, verbose=0)
    logs = model.evaluate(x, targets, batch_size=32, verbose=0)  # 150 = 4 * 32 + 22
    out = model.predict(x)
    labels = out["classes"].argmax(-1)
    macro = f1_score(y, labels, average="macro", labels=[0, 1, 2], zero_division=0)
    assert logs["f1"] == pytest.approx(macro, abs=1e-5)
    per_class = f1_score(y, labels, average=None, labels=[0, 1, 2], zero_division=0)
    assert [logs[f"f1_each_{i}"] for i in range(3)] == pytest.approx(per_class, abs=1e-5)
    predicted = out["is_one"] > 0.5
    assert logs["precision"] == pytest.approx(precision_score(binary, predicted, zero_division=0), abs=1e-5)
    assert logs["recall"] == pytest.approx(recall_score(binary, predicted, zero_division=0), abs=1e-5)
    assert logs["auc"] == pytest.approx(roc_auc_score(binary, out["is_one"]), abs=5e-3)
    assert logs["loss"] == pytest.approx(ce(out["classes"], y).mean(), rel=1e-5)


def test_on_names_a_missing_part_clearly():
    x, y = blobs(32)
    model = elegy.Model(lambda x: {"a": hk.Linear(3)(x)}, loss=SCE(from_logits=True, on="b"))
    with pytest.raises(ValueError, match=r"on='b': y_pred has no part 'b' \(it has \['a'\]\)"):
        model.evaluate(x, y, verbose=0)


def test_vae_with_add_loss_trains_and_logs_both_terms():
    rng = np.random.default_rng(0)
    x = (rng.uniform(size=(256, 16)) > 0.5).astype(np.float32)

    def vae(x, training):
        h = jax.nn.relu(hk.Linear(32)(x))
        mean, log_var = hk.Linear(4)(h), hk.Linear(4)(h)
        z = (
            mean + jnp.exp(0.5 * log_var) * jax.random.normal(hk.next_rng_key(), mean.shape)
            if training
            else mean
        )
        kl = -0.5 * jnp.mean(jnp.sum(1 + log_var - mean**2 - jnp.exp(log_var), axis=-1))
        elegy.add_loss("kl", kl)
        elegy.add_metric("mean_abs_z", jnp.mean(jnp.abs(z)))
        return jax.nn.sigmoid(hk.Linear(16)(jax.nn.relu(hk.Linear(32)(z))))

    model = elegy.Model(vae, loss=elegy.losses.BinaryCrossentropy(), optimizer=optax.adam(3e-3))
    history = model.fit(x, x, epochs=8, batch_size=64, verbose=0)
    assert list(history.history) == ["loss", "binary_crossentropy_loss", "kl_loss", "mean_abs_z"]
    h = history.history
    np.testing.assert_allclose(h["loss"], np.add(h["binary_crossentropy_loss"], h["kl_loss"]), rtol=1e-5)
    assert h["loss"][-1] < h["loss"][0]
    assert all(v >= 0 for v in h["kl_loss"])


def test_add_loss_outside_a_step_is_a_clear_error():
    with pytest.raises(RuntimeError, match=r"elegy.add_loss\('kl', ...\) was called outside a step"):
        elegy.add_loss("kl", 1.0)
    with pytest.raises(RuntimeError, match=r"add_metric\('m', ...\) was called outside a step"):
        elegy.add_metric("m", 1.0)


def test_add_loss_is_ignored_by_predict_and_counted_once_per_forward_pass():
    x, y = blobs(64)

    def forward(x):
        out = hk.Linear(3)(x)
        elegy.add_loss("penalty", jnp.mean(out**2))
        return out

    model = elegy.Model(forward, loss=SCE(from_logits=True), optimizer=optax.sgd(0.0))
    predictions = model.predict(x)
    logs = model.evaluate(x, y, verbose=0)
    assert logs["penalty_loss"] == pytest.approx(np.mean(predictions**2), rel=1e-5)
    assert logs["loss"] == pytest.approx(ce(predictions, y).mean() + np.mean(predictions**2), rel=1e-5)


def test_add_loss_values_no_test_step_collects_are_an_error_not_silently_lost():
    """A test_step written from scratch that runs pred_step itself bypasses the default
    collection; the reported penalty would vanish from the loss without a word."""
    x, y = blobs(32)

    def forward(x):
        out = hk.Linear(3)(x)
        elegy.add_loss("penalty", 1000.0 + jnp.mean(out**2))
        return out

    class OwnTestStep(elegy.Model):
        def test_step(self, x, y_true, states, initializing, training):
            y_pred, states = self.call_step(
                "pred_step", x=x, states=states, initializing=initializing, training=training
            )
            loss = optax.softmax_cross_entropy_with_integer_labels(y_pred, y_true).mean()
            return loss, {"loss": loss}, states

    model = OwnTestStep(forward, optimizer=optax.sgd(0.1))
    for run in (lambda: model.fit(x, y, epochs=1, verbose=0), lambda: model.evaluate(x, y, verbose=0)):
        with pytest.raises(ValueError, match=r"reported 'penalty' with elegy.add_loss.*did not collect"):
            run()
    assert model.predict(x).shape == (32, 3)  # predict has no loss to add it to: dropped


def test_regularizer_penalises_net_params_and_is_logged():
    x, y = blobs(64)
    model = elegy.Model(
        mlp_forward, loss=[SCE(from_logits=True), elegy.regularizers.L2(1e-3)], optimizer=optax.sgd(0.1)
    )
    model.init(x, y)
    params = jax.device_get(model.states.net_params)
    logs = model.test_on_batch(x, y)
    expected_l2 = 1e-3 * sum(np.sum(np.square(p)) for p in jax.tree_util.tree_leaves(params))
    assert logs["l2_regularization_loss"] == pytest.approx(expected_l2, rel=1e-5)
    assert logs["loss"] == pytest.approx(ce(model.predict(x), y).mean() + expected_l2, rel=1e-5)


def test_a_loss_may_declare_the_inputs_and_states():
    x, y = blobs(64)
    seen = {}

    def input_norm(x, states, y_pred):
        seen["has_params"] = states.net_params is not None
        return jnp.mean(x**2, axis=-1) * 0.0 + jnp.mean(y_pred**2, axis=-1)

    model = elegy.Model(mlp_forward, loss=[SCE(from_logits=True), input_norm], optimizer=optax.sgd(0.1))
    model.init(x, y)
    logs = model.test_on_batch(x, y)
    assert seen["has_params"]
    assert logs["input_norm_loss"] == pytest.approx(np.mean(model.predict(x) ** 2), rel=1e-5)


def test_keras_style_string_metrics_and_losses_through_fit():
    x, y = blobs(96)
    onehot = np.eye(3, dtype=np.float32)[y]

    def forward(x):
        return jax.nn.softmax(hk.Linear(3)(x))

    model = elegy.Model(
        forward,
        loss="categorical_crossentropy",
        metrics=["accuracy", "mse", "top_k_categorical_accuracy"],
        optimizer=optax.adam(1e-2),
    )
    history = model.fit(x, onehot, epochs=2, verbose=0)
    assert list(history.history) == ["loss", "accuracy", "mse", "top_k_categorical_accuracy"]
    probs = model.predict(x)
    logs = model.evaluate(x, onehot, verbose=0)
    assert logs["accuracy"] == pytest.approx(np.mean(probs.argmax(-1) == y), abs=1e-6)
    assert logs["mse"] == pytest.approx(np.mean((probs - onehot) ** 2), rel=1e-5)
    assert logs["top_k_categorical_accuracy"] == 1.0  # k=5 > 3 classes


def test_run_eagerly_gives_the_same_metric_values():
    x, y = blobs(70)
    make = lambda eager: elegy.Model(
        mlp_forward,
        loss=[SCE(from_logits=True), elegy.regularizers.L1(1e-4)],
        metrics=["accuracy", elegy.metrics.F1Score(num_classes=3)],
        optimizer=optax.adam(1e-2),
        run_eagerly=eager,
    )
    compiled, eager = make(False), make(True)
    for model in (compiled, eager):
        model.init(x, y)
    a = compiled.evaluate(x, y, batch_size=32, verbose=0)
    b = eager.evaluate(x, y, batch_size=32, verbose=0)
    assert a.keys() == b.keys()
    for name in a:
        assert a[name] == pytest.approx(b[name], rel=1e-5), name

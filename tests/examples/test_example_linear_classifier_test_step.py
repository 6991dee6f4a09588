"""examples/linear_classifier_test_step.py --smoke: a softmax regression living in a custom
test_step trains, and its masked running totals give the exact validation numbers."""

import math


def test_smoke_run_learns_and_masked_logs_equal_the_exact_numpy_values(run_example):
    result, stdout = run_example("linear_classifier_test_step")

    assert result["epochs"] == 2 and "Epoch 2/2" in stdout
    assert all(math.isfinite(value) for value in result.values())
    # Chance is 0.1 and the initial loss log(10) = 2.30; two epochs reach ~0.88 and ~1.8.
    assert result["val_accuracy"] >= 0.6
    assert result["first_loss"] < math.log(10) and result["last_loss"] < 0.9 * result["first_loss"]

    # The running totals in the custom step weight rows by `mask`: fit's validation logs
    # and evaluate with a heavily padded last batch both equal numpy on the raw weights.
    for name in ("val_accuracy", "evaluate_accuracy"):
        assert abs(result[name] - result["numpy_val_accuracy"]) < 1e-5, name
    for name in ("val_loss", "evaluate_loss"):
        assert math.isclose(result[name], result["numpy_val_loss"], rel_tol=1e-4), name
    # Counting the padded rows (the copy of the model that ignores the mask) changes both.
    assert result["unmasked_val_accuracy"] != result["numpy_val_accuracy"]
    assert not math.isclose(result["unmasked_val_loss"], result["numpy_val_loss"], rel_tol=1e-3)

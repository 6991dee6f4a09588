"""examples/gradient_accumulation.py --smoke: K accumulated batches of B rows end where one
run with batches of K*B rows ends, padded last batches included (where optax.MultiSteps,
weighting micro-batches equally, drifts)."""

import math


def test_smoke_run_matches_the_large_batch_reference_and_learns(run_example):
    # The example itself exits non-zero when the parameters do not match.
    result, _ = run_example("gradient_accumulation")

    assert all(math.isfinite(value) for value in result.values())
    assert result["matches"] == 1
    # Float rounding only (~1e-7 for weights of order 0.3); a skipped or extra update, or
    # an optimizer stepping on the in-between batches, moves them by 1e-2 or more.
    assert result["max_abs_diff"] < 1e-5
    # The last micro-batch of each epoch is 5 rows short: MultiSteps over-weights it.
    assert result["train_rows"] == 507
    assert result["multisteps_max_abs_diff"] > max(1e-4, 100 * result["max_abs_diff"])
    # 512 rows, batches of 4 x 16, 2 epochs: 16 updates, one per 4 training steps.
    assert result["updates"] == result["expected_updates"] == 16
    # The accumulated run really trains (chance: 0.1, initial loss about log(10)).
    assert result["last_loss"] < 0.95 * result["first_loss"]
    assert result["test_accuracy"] >= 0.4

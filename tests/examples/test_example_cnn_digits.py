"""examples/cnn_digits.py --smoke trains a BatchNorm/dropout CNN end to end and logs it."""

import math

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def test_smoke_run_learns_and_writes_matching_tensorboard_curves(run_example, tmp_path):
    result, stdout = run_example("cnn_digits", "--logdir", str(tmp_path))

    assert result["epochs"] == 2 and "Epoch 2/2" in stdout
    assert all(math.isfinite(value) for value in result.values())
    # Chance is 0.1; two short epochs already get ~0.8, a broken network stays near 0.1.
    assert result["val_accuracy"] >= 0.5
    assert result["last_loss"] < 0.8 * result["first_loss"]

    # The validation curve TensorBoard shows is the one the example reports.
    validation = EventAccumulator(str(tmp_path / "validation"))
    validation.Reload()
    last = validation.Scalars("epoch_accuracy")[-1]
    assert last.step == 1 and abs(last.value - result["val_accuracy"]) < 1e-4
    train = EventAccumulator(str(tmp_path / "train"))
    train.Reload()
    assert [point.step for point in train.Scalars("epoch_loss")] == [0, 1]

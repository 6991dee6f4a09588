"""examples/tensorboard_walkthrough.py in smoke mode: the event files hold what the walkthrough says."""

import pathlib

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def scalar_steps(run: pathlib.Path, purge: bool = True) -> dict[str, list[int]]:
    accumulator = EventAccumulator(str(run), purge_orphaned_data=purge)
    accumulator.Reload()
    return {tag: [e.step for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}


def test_walkthrough_smoke_run_writes_and_reads_back_every_run(run_example, tmp_path):
    values, stdout = run_example("tensorboard_walkthrough", "--logdir", str(tmp_path))
    assert f"tensorboard --logdir {tmp_path}" in stdout
    epochs = int(values["epochs"])
    assert values["runs"] == 4  # ./ (the HParams session), train/, train/batch/, validation/
    assert values["train_epoch_points"] == values["validation_epoch_points"] == epochs
    assert values["histogram_tags"] == 4 and values["histograms_per_tag"] == epochs  # w and b of 2 layers
    assert values["text_tags"] == 2  # configuration and model summary

    # Read the files again here, independently of the example's own reader.
    first = tmp_path / "first"
    train, validation = scalar_steps(first / "train"), scalar_steps(first / "validation")
    assert {"epoch_loss", "epoch_accuracy", "epoch_learning_rate", "epoch_steps_per_second"} <= set(train)
    assert {"epoch_loss", "epoch_accuracy"} == set(validation)
    assert train["epoch_loss"] == validation["epoch_loss"] == list(range(epochs))
    batches = scalar_steps(first / "train" / "batch")
    assert {"batch_loss", "batch_accuracy", "batch_learning_rate"} == set(batches)
    # 512 training rows in batches of 64, a point every 5 batches: steps 5, 10, ...
    assert batches["batch_loss"] == list(range(5, epochs * 8 + 1, 5))
    assert values["batch_points"] == len(batches["batch_loss"])

    # The resumed run: fit reports every epoch, the files hold the crashed epoch twice,
    # and TensorBoard's purge leaves each step once.
    assert values["resumed_fit_epochs"] == epochs
    resumed = tmp_path / "resumed" / "train"
    assert scalar_steps(resumed)["epoch_loss"] == list(range(epochs))
    raw = scalar_steps(resumed, purge=False)["epoch_loss"]
    assert len(raw) == epochs + 1 and sorted(set(raw)) == list(range(epochs))
    assert scalar_steps(tmp_path / "resumed" / "train" / "batch")["batch_loss"] == batches["batch_loss"]
    assert not (tmp_path / "resumed_backup").exists()  # removed once fit finished

"""examples/vae.py in smoke mode: the VAE trains, its add_loss KL term is logged, the loss falls."""

import math

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def test_vae_smoke_run_lowers_the_negative_elbo(run_example, tmp_path):
    values, _ = run_example("vae", "--logdir", str(tmp_path))
    assert all(math.isfinite(v) for v in values.values()), values
    # Untrained, the decoder predicts about 0.5 everywhere: ~40 nats per image. Four
    # smoke epochs bring it clearly down.
    assert values["last_loss"] < values["first_loss"] - 3.0, values
    assert values["last_val_loss"] < values["first_val_loss"], values
    # The total is the reconstruction term plus the KL term reported with add_loss...
    assert values["last_kl"] >= 0.0
    assert abs(values["last_reconstruction"] + values["last_kl"] - values["last_loss"]) < 0.05, values
    # ...and the custom test_step's ELBO is its negative.
    assert abs(values["last_elbo"] + values["last_loss"]) < 1e-2, values

    # Both kinds of term reach TensorBoard, for training and validation.
    for run in ("train", "validation"):
        accumulator = EventAccumulator(str(tmp_path / run))
        accumulator.Reload()
        tags = set(accumulator.Tags()["scalars"])
        assert {"epoch_loss", "epoch_reconstruction_loss", "epoch_kl_loss", "epoch_elbo"} <= tags, tags
        assert [e.step for e in accumulator.Scalars("epoch_loss")] == list(range(int(values["epochs"])))
    last = accumulator.Scalars("epoch_loss")[-1].value  # validation
    assert abs(last - values["last_val_loss"]) < 1e-2 * abs(last)

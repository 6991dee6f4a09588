"""examples/wgan_gp.py in smoke mode: the critic's loss stays bounded and samples move to the modes."""

import math

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def test_wgan_gp_smoke_run_keeps_the_critic_bounded_and_improves_samples(run_example, tmp_path):
    values, _ = run_example("wgan_gp", "--logdir", str(tmp_path))
    assert all(math.isfinite(v) for v in values.values()), values
    assert values["generator_steps"] > 0
    # With the gradient penalty the critic is kept near 1-Lipschitz, so its loss stays
    # in a small range even while the generator is still poor (without it, it diverges).
    assert values["critic_loss_abs_max"] < 50.0, values
    assert abs(values["last_critic_loss"]) < 10.0, values
    assert values["last_wasserstein"] > 0.0, values  # the critic tells real from generated
    # Even a few dozen generator updates pull samples towards the ring of modes.
    assert values["mode_distance_after"] < 0.8 * values["mode_distance_before"], values
    assert 0.5 < values["generated_std"] / values["data_std"] < 2.0, values

    # The epoch means of both losses are on disk for TensorBoard.
    accumulator = EventAccumulator(str(tmp_path / "train"))
    accumulator.Reload()
    tags = set(accumulator.Tags()["scalars"])
    assert {
        "epoch_critic_loss",
        "epoch_generator_loss",
        "epoch_wasserstein",
        "epoch_gradient_penalty",
    } <= tags
    steps = [event.step for event in accumulator.Scalars("epoch_critic_loss")]
    assert steps == list(range(int(values["epochs"])))
    assert abs(accumulator.Scalars("epoch_critic_loss")[-1].value - values["last_critic_loss"]) < 1e-3

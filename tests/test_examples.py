"""The README's first command: the digits demo trains a real model end to end."""

import pathlib
import re
import subprocess
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_digits_demo_reaches_95_percent_validation_accuracy_within_a_minute(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "digits_mlp.py"), "--logdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    found = re.search(r"validation accuracy after \d+ epochs: ([0-9.]+) \(([0-9.]+)s\)", result.stdout)
    assert found, result.stdout[-2000:]
    accuracy, seconds = float(found.group(1)), float(found.group(2))
    assert accuracy >= 0.95
    assert seconds < 60
    assert "Epoch 30/30" in result.stdout and "val_accuracy:" in result.stdout
    validation = EventAccumulator(str(tmp_path / "validation"))
    validation.Reload()
    last = validation.Scalars("epoch_accuracy")[-1]
    assert last.step == 29 and abs(last.value - accuracy) < 1e-4

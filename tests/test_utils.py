"""plot_history: the chart of a real `fit`, read back from the PNG and from the figure."""

import io
import sys

import matplotlib.image
import numpy as np
import optax
import pytest
from tests.conftest import blobs, mlp_forward

import elegy
from elegy.utils import plot_history


@pytest.fixture(scope="module")
def history():
    x, y = blobs()
    model = elegy.Model(
        mlp_forward,
        loss=elegy.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        optimizer=optax.adam(1e-2),
    )
    return model.fit(x, y, batch_size=32, epochs=3, validation_split=0.2, verbose=0)


def test_each_log_gets_a_panel_with_training_and_validation_per_epoch(history, tmp_path):
    path = tmp_path / "charts" / "history.png"  # the folder is created
    figure = plot_history(history, path)
    panels = [axes for axes in figure.axes if axes.get_visible()]
    assert [axes.get_title() for axes in panels] == ["loss", "accuracy"]
    for axes in panels:
        name = axes.get_title()
        training, validation = axes.get_lines()
        assert training.get_xdata().tolist() == [1, 2, 3]
        np.testing.assert_allclose(training.get_ydata(), history.history[name])
        np.testing.assert_allclose(validation.get_ydata(), history.history[f"val_{name}"])
        assert [text.get_text() for text in axes.get_legend().get_texts()] == ["training", "validation"]
    image = matplotlib.image.imread(path)  # a real PNG of the figure's size (100 dpi)
    width, height = figure.get_size_inches() * 100
    assert image.shape[:2] == (round(height), round(width))
    assert image[..., :3].std() > 0  # something is drawn


def test_without_a_path_the_figure_is_returned_and_nothing_written(history, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    figure = plot_history(history)
    assert [axes.get_title() for axes in figure.axes if axes.get_visible()] == ["loss", "accuracy"]
    assert list(tmp_path.iterdir()) == []
    assert "matplotlib.pyplot" not in sys.modules or not matplotlib.pyplot.get_fignums()  # no window
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")  # what a notebook's inline display renders
    assert matplotlib.image.imread(io.BytesIO(buffer.getvalue()))[..., :3].std() > 0


def test_a_resumed_history_continues_its_epoch_numbers(tmp_path):
    resumed = elegy.callbacks.History()
    for epoch in (4, 5):  # as fit(initial_epoch=4) records them
        resumed.on_epoch_end(epoch, {"loss": 1.0 / epoch})
    figure = plot_history(resumed, tmp_path / "resumed.svg")
    (line,) = figure.axes[0].get_lines()
    assert line.get_xdata().tolist() == [5, 6]
    assert (tmp_path / "resumed.svg").read_text().lstrip().startswith("<?xml")


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        ({}, "non-empty dict"),
        ([0.5, 0.4], "non-empty dict"),
        ({"loss": [0.5, 0.4], "val_loss": [0.6]}, "one value per epoch"),
        ({"loss": 0.5}, "one value per epoch"),
    ],
)
def test_bad_histories_name_the_argument(history, expected, tmp_path):
    with pytest.raises(ValueError, match=f"history.*{expected}|{expected}.*history"):
        plot_history(history, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_without_matplotlib_the_error_says_what_to_install(monkeypatch, tmp_path):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    with pytest.raises(ImportError, match=r"elegy\[plot\]"):
        plot_history({"loss": [1.0]}, tmp_path / "x.png")


def test_columns_must_be_a_positive_integer(tmp_path):
    with pytest.raises(ValueError, match="columns must be an integer >= 1, got 0"):
        plot_history({"loss": [1.0]}, tmp_path / "x.png", columns=0)

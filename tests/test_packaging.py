"""What a user installing the package gets: metadata, the license, type information, one
version, and the extras the guides install."""

import importlib.metadata
import re
import tomllib
from pathlib import Path

import elegy

ROOT = Path(__file__).parent.parent
METADATA = importlib.metadata.metadata("elegy")


def test_the_version_has_one_source():
    assert METADATA["Version"] == elegy.__version__
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"] and "version" in pyproject["project"]["dynamic"]


def test_license_classifiers_and_urls():
    assert METADATA["License-Expression"] == "Apache-2.0"
    assert METADATA.get_all("License-File") == ["LICENSE"]
    assert "Apache License" in (ROOT / "LICENSE").read_text()[:200]
    classifiers = METADATA.get_all("Classifier")
    assert "Typing :: Typed" in classifiers and "Programming Language :: Python :: 3.11" in classifiers
    urls = dict(entry.split(", ", 1) for entry in METADATA.get_all("Project-URL"))
    assert {"Homepage", "Source", "Issues"} <= set(urls)


def test_the_package_ships_its_type_information():
    assert (Path(elegy.__file__).parent / "py.typed").is_file()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "py.typed" in pyproject["tool"]["setuptools"]["package-data"]["elegy"]


def test_the_getting_started_extras_bring_what_the_guide_runs():
    """The guide installs some extras and then runs `tensorboard` and plots: those extras
    must hold tensorboard and matplotlib."""
    guide = (ROOT / "docs" / "getting-started.md").read_text()
    (extras,) = re.findall(r'pip install -e "\.\[([a-z,]+)\]"', guide)
    required = [
        requirement
        for requirement in importlib.metadata.requires("elegy")
        if any(f'extra == "{extra}"' in requirement for extra in extras.split(","))
    ]
    names = {re.split(r"[<>=;\[ ]", requirement, maxsplit=1)[0] for requirement in required}
    assert {"tensorboard", "matplotlib", "scikit-learn"} <= names
    assert "tensorboard --logdir" in guide


def test_no_leftover_linter_settings():
    """ruff (in pyproject.toml) is the one linter."""
    assert "[flake8]" not in (ROOT / "setup.cfg").read_text()

"""Every public name is documented: a docstring with an example, and an entry in the API
reference (the docs build checks the rendered entries; this checks the sources, without
MkDocs)."""

import importlib
import inspect
import pathlib
import re

import pytest
from tests.conftest import load_docs_hooks

ROOT = pathlib.Path(__file__).resolve().parent.parent
PUBLIC = load_docs_hooks().public_names()
DIRECTIVES = {
    line.removeprefix("::: ").strip()
    for page in (ROOT / "docs" / "api").glob("*.md")
    for line in page.read_text().splitlines()
    if line.startswith("::: ")
}


def _object(path: str):
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def test_there_are_public_names():
    assert {
        "elegy.Model",
        "elegy.losses.Huber",
        "elegy.callbacks.TensorBoard",
        "elegy.utils.plot_history",
    } <= set(PUBLIC)


@pytest.mark.parametrize("path", sorted(PUBLIC))
def test_each_public_name_has_a_docstring_with_an_example(path):
    documentation = inspect.getdoc(_object(path)) or ""
    assert documentation.strip(), f"{path} has no docstring"
    assert ">>>" in documentation, f"{path}'s docstring has no example"
    assert not re.search(r"^\s*Example:\s*$", documentation, re.MULTILINE), (
        f"{path}: name the section 'Examples:' (the heading the API reference renders as code)"
    )


@pytest.mark.parametrize("path", sorted(PUBLIC))
def test_each_public_name_is_in_the_api_reference(path):
    """Listed itself (`::: elegy.Model`), or its module is (`::: elegy.losses`)."""
    covered = {candidate for alias in PUBLIC[path] for candidate in (alias, alias.rpartition(".")[0])}
    assert covered & DIRECTIVES, f"no page in docs/api lists {path} (or its module)"

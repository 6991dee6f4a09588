"""Every Python block in the README and the guides runs, in order, as a reader would run it."""

import pathlib

import pytest
from tests.conftest import load_docs_hooks

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
run_python_blocks = load_docs_hooks().run_python_blocks


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_blocks_run(document, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # files the examples write (logs, CSVs) stay out of the repository
    run_python_blocks(document, {"__name__": f"doc_{document.stem}"})

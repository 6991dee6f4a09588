"""Every Python block in the README and the guides runs, in order, as a reader would run it."""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_blocks_run(document, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # files the examples write (logs, CSVs) stay out of the repository
    namespace = {"__name__": f"doc_{document.stem}"}
    blocks = PYTHON_BLOCK.findall(document.read_text())
    for number, block in enumerate(blocks, 1):
        code = compile(block, f"{document.name} block {number}", "exec")
        exec(code, namespace)

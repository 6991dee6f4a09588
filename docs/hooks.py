"""MkDocs hooks for `make docs`.

* The getting-started guide shows a chart of a real run: its own Python blocks run at
  build time, and the `history.png` they write joins the site as `images/history.png`.
* Every public name (each `__all__` of elegy and its modules) must have an entry in the
  API reference: a missing one fails the build. (`public_names` is also what the test
  suite checks docstrings against, without MkDocs: MkDocs is imported only here.)
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import os
import pathlib
import pkgutil
import re
import tempfile

PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
ANCHOR = re.compile(r'id="(elegy[\w.]*)"')


def on_files(files, config):
    from mkdocs.structure.files import File

    guide = pathlib.Path(config["docs_dir"]) / "getting-started.md"
    chart = _run_guide(guide, "history.png")
    files.append(File.generated(config, "images/history.png", content=chart))
    return files


def on_post_build(config):
    from mkdocs.exceptions import PluginError

    anchors: set[str] = set()
    for page in pathlib.Path(config["site_dir"], "api").rglob("*.html"):
        anchors.update(ANCHOR.findall(page.read_text()))
    missing = [name for name, exported_as in public_names().items() if not exported_as & anchors]
    if missing:
        raise PluginError(f"the API reference has no entry for: {', '.join(sorted(missing))}")


def _run_guide(guide: pathlib.Path, output: str) -> bytes:
    """Run the guide's Python blocks in a scratch folder, as a reader would; return the
    file they wrote."""
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as folder, contextlib.redirect_stdout(io.StringIO()):
        os.chdir(folder)
        try:
            run_python_blocks(guide, {"__name__": "getting_started"})
            return pathlib.Path(output).read_bytes()
        finally:
            os.chdir(here)


def run_python_blocks(document: pathlib.Path, namespace: dict) -> None:
    """Run the document's ```python blocks in order in `namespace`, as a reader would (the
    test suite runs every guide this way too). Tracebacks name the block."""
    for number, block in enumerate(PYTHON_BLOCK.findall(document.read_text()), 1):
        exec(compile(block, f"{document.name} block {number}", "exec"), namespace)


def public_names() -> dict[str, set[str]]:
    """Each public `module.name`, with every path under which the same object is public
    (`elegy.data.ArraySource` is `elegy.data.sources.ArraySource`): an entry under any of
    them covers it."""
    import elegy

    modules = [elegy] + [
        importlib.import_module(info.name) for info in pkgutil.walk_packages(elegy.__path__, "elegy.")
    ]
    paths: dict[int, set[str]] = {}
    names: dict[str, int] = {}
    for module in modules:
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            path = obj.__name__ if inspect.ismodule(obj) else f"{module.__name__}.{name}"
            paths.setdefault(id(obj), set()).add(path)
            names[f"{module.__name__}.{name}"] = id(obj)
    return {name: paths[key] for name, key in names.items()}

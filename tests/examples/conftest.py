"""What the example tests share: running an example with `--smoke` in a fresh process and
reading the one `result: name=value ...` line it ends with."""

import pathlib
import subprocess
import sys
from collections.abc import Callable

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"

RunExample = Callable[..., tuple[dict[str, float], str]]


@pytest.fixture
def run_example() -> RunExample:
    """`run_example(name, *extra_args)` runs `examples/<name>.py --smoke *extra_args` and
    returns its `result:` line as floats by name, and its whole stdout.

    A non-zero exit fails the test (the examples exit non-zero when their own checks fail),
    and so does a run without exactly one `result:` line.
    """

    def run(name: str, *extra_args: str) -> tuple[dict[str, float], str]:
        completed = subprocess.run(
            [sys.executable, str(EXAMPLES / f"{name}.py"), "--smoke", *extra_args],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        lines = [line for line in completed.stdout.splitlines() if line.startswith("result: ")]
        assert len(lines) == 1, (
            f"{name}.py printed {len(lines)} 'result:' lines, not 1\n"
            f"--- end of stdout:\n{completed.stdout[-2000:]}\n--- end of stderr:\n{completed.stderr[-2000:]}"
        )
        pairs = (item.partition("=") for item in lines[0].removeprefix("result: ").split())
        return {key: float(value) for key, _, value in pairs}, completed.stdout

    return run

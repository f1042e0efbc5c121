"""Every Python example runs against the simulator and asserts what it shows."""

import os
import pathlib
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[3] / "examples" / "python"


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")))
def test_example(example):
    env = {**os.environ, "SLUICE_EXAMPLES_SIM": "1"}
    env.pop("OPENAI_API_KEY", None)
    out = subprocess.run([sys.executable, example], cwd=EXAMPLES, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "built-in simulator" in out.stdout

"""The start-up benchmark still runs and prints its figures (one run each; no timing is asserted)."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def test_startup_bench_prints_its_figures() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "startup_bench.py"), "--repeat", "1"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for label in ("machine  :", "python -c pass", "kgsched --help", "kgsched query --help", "kgsched query (tiny store)",
                  "import kgsched.runner.agent", "kgsched runner --help", "target   :"):
        assert any(line.startswith(label) for line in lines), (label, done.stdout)
    assert sum("x  +" in line for line in lines) == 5, done.stdout  # every command as a ratio and a difference

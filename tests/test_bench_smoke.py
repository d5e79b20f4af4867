"""The planner benchmark still runs and prints its figures (tiny scale; no timing is asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_plan_bench_prints_its_figures() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "plan_bench.py"), "--scale", "0.01", "--rdflib-nodes", "7",
         "--repeat", "1"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for label in ("oxigraph :", "dict     :", "rdflib   :", "ratios   :", "target   :"):
        assert any(line.startswith(label) for line in lines), (label, done.stdout)

"""The trace benchmark still runs and prints its figures (small traces; no timing is asserted)."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import ROOT


def test_trace_bench_prints_its_figures() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "trace_bench.py"), "--single", "seismology-chameleon-100p-001",
         "--nodes", "100", "--traces", "helloworld-chain-5-chameleon,sarek-dirt02-001,montage-chameleon-dss-05d-001"],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for label in ("machine  :", "run      :", "load     :", "scratch  :", "cached   :", "bytes    :", "ratios   :"):
        assert any(line.startswith(label) for line in lines), (label, done.stdout)
    runs = [line for line in lines if line.startswith("run      :")]
    assert len(runs) == 2 and "101 tasks + 1 collecting root, 3 runners at 3 sites" in runs[0]
    assert "5 trace(s), 120 tasks" in runs[1]
    # from scratch everything is recomputed; with the products imported everything but the root is reused
    scratch = [line for line in lines if line.startswith("scratch  :")]
    cached = [line for line in lines if line.startswith("cached   :")]
    assert "102 recompute, 0 reuse, 0 cannot" in scratch[0] and "101 reuse, 1 recompute" in cached[0]
    moved = re.search(r"planner ([\d.]+ \w?B), .* lower bound ([\d.]+ \w?B)", done.stdout)
    assert moved is not None, done.stdout

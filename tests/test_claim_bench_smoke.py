"""The claim benchmark still runs and prints its figures (tiny sizes). Speed is never asserted; that
no job was claimed twice through the service is (the naive claim's duplicates are only reported)."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import ROOT


def test_claim_bench_prints_claims_per_second_for_both_setups() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "claim_bench.py"), "--quick"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    for label in ("embedded, 1 serve process", "remote, 2 replicas/Oxigraph"):
        [line] = [line for line in lines if line.startswith(label)]
        assert re.search(r"= \d+ claims/s; baseline GET /health \d+ req/s; ratio \d\.\d+", line), line
        assert "jobs claimed twice: 0;" in line, line
    assert any(line.startswith("naive single-update claim, embedded store") for line in lines)
    assert any(line.startswith("naive single-update claim, Oxigraph server") for line in lines)

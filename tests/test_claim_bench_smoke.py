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
    for label in ("embedded, 1 serve process", "remote, 1 replica/Oxigraph ", "remote, 2 replicas/Oxigraph:",
                  "remote, 1 replica/Oxigraph+Redis", "remote, 2 replicas/Oxigraph+Redis"):
        [line, reports, *cpu] = [line for line in lines if line.startswith(label)]
        assert re.search(r"= \d+ claims/s; baseline GET /health \d+ req/s; ratio \d\.\d+", line), line
        assert "jobs claimed twice: 0;" in line, line
        assert re.search(r"= \d+ reports/s; ratio \d\.\d+; jobs recorded twice: 0; refused: 0", reports), reports
        if label.startswith("remote"):  # where the CPU time goes, per process
            assert [c.split(": CPU ms per ")[1].split(":")[0] for c in cpu] == ["GET /health", "claim"], cpu
            assert all("oxigraph " in c and "redis " in c and "; total " in c for c in cpu), cpu
    assert "claim mode index" in [line for line in lines if line.startswith("embedded")][0]
    assert "claim mode coordinated" in [line for line in lines if line.startswith("remote, 2 replicas/Oxigraph+")][0]
    assert sum(line.startswith("two replicas against one") for line in lines) == 2
    for mode in ("index", "protocol"):
        [line] = [line for line in lines if line.startswith(f"in-process queue, {mode}")]
        assert "claims/s" in line and "reports/s" in line and "jobs claimed twice: 0" in line, line
    assert any(line.startswith("naive single-update claim, embedded store") for line in lines)
    assert any(line.startswith("naive single-update claim, Oxigraph server") for line in lines)

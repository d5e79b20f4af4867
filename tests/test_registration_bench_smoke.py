"""The registration benchmark still runs and prints its figures (tiny sizes). Speed is never asserted;
that every registration was accepted is."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import ROOT


def test_registration_bench_prints_its_figures_beside_pyshacl() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "registration_bench.py"), "--quick"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert re.search(r"large registration : [\d,]+ triples in [\d.]+ s = [\d,]+ triples/s", out), out
    assert re.search(r"pySHACL alone    : [\d,]+ triples validated in [\d.]+ s", out), out
    assert re.search(r"small registrations: 40 of 40 accepted from 4 clients .* registrations/s", out), out
    assert re.search(r"claims during a [\d,]+-triple registration \([\d.]+ s, status 201\): \d+ claims, p50", out), out

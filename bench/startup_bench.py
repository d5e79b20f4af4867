"""Start-up benchmark: how long the command line and the runner agent take to start, against a bare
interpreter measured in the same run.

A command that only prints its help should cost little more than the interpreter itself: the
commands import the store, the registry, the planner, pySHACL, numpy, networkx, pyoxigraph and Flask
only when they run. The runner agent (``kgsched runner``) is stdlib HTTP plus rdflib for its
description, so a runner machine pays for none of the server's stack. Each figure is the best of N
fresh processes (N=5 by default), printed as seconds, as a ratio to ``python -c pass`` and as the
difference to it. The target is ``kgsched --help`` within 0.2 s of the bare interpreter.

Usage: python bench/startup_bench.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: ``kgsched --help`` may cost at most this much more than ``python -c pass``.
TARGET_SECONDS = 0.2


def kgsched_command() -> list[str]:
    """The installed console script beside this interpreter, else ``python -m kgsched`` (same code path)."""
    script = Path(sys.executable).with_name("kgsched")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    found = shutil.which("kgsched")
    return [found] if found else [sys.executable, "-m", "kgsched"]


def best_of(command: list[str], repeat: int, env: dict[str, str]) -> float:
    """The shortest wall time of ``repeat`` runs (the least disturbed by other processes on the machine)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, env=env)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr.decode()[-2000:]}")
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="runs per command; the best is kept")
    args = parser.parse_args()
    kgsched = kgsched_command()
    with tempfile.TemporaryDirectory(prefix="kgsched-startup-") as tmp:
        store = str(Path(tmp) / "store")
        env = dict(os.environ, KGSCHED_STORE=store)
        env.pop("KGSCHED_ENDPOINT", None)
        subprocess.run([*kgsched, "init"], check=True, capture_output=True, env=env)  # a tiny store: the ontology
        cases = [
            ("python -c pass", [sys.executable, "-c", "pass"]),
            ("kgsched --help", [*kgsched, "--help"]),
            ("kgsched query --help", [*kgsched, "query", "--help"]),
            ("kgsched query (tiny store)", [*kgsched, "query", "ASK { ?s ?p ?o }"]),
            ("import kgsched.runner.agent", [sys.executable, "-c", "import kgsched.runner.agent"]),
            ("kgsched runner --help", [*kgsched, "runner", "--help"]),
        ]
        print(f"machine  : {platform.python_implementation()} {platform.python_version()} on {platform.machine()}, "
              f"{os.cpu_count()} CPU(s), load {os.getloadavg()[0]:.2f}; best of {args.repeat} fresh processes")
        baseline = None
        help_extra = 0.0
        for label, command in cases:
            seconds = best_of(command, args.repeat, env)
            if baseline is None:
                baseline = seconds
                print(f"{label:<28}: {seconds:6.3f} s  (baseline)")
                continue
            print(f"{label:<28}: {seconds:6.3f} s  {seconds / baseline:5.1f}x  +{seconds - baseline:.3f} s")
            if label == "kgsched --help":
                help_extra = seconds - baseline
    assert baseline is not None
    verdict = "met" if help_extra <= TARGET_SECONDS else "NOT met"
    print(f"target   : kgsched --help within {TARGET_SECONDS} s of python -c pass: {verdict} (+{help_extra:.3f} s)")


if __name__ == "__main__":
    main()

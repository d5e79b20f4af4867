"""``pip install .`` (a built wheel, not the checkout) then ``kgsched demo`` from another directory works.

The package is installed with ``--no-deps --target DIR`` (its dependencies are the test venv's own),
and the demo runs with ``PYTHONPATH=DIR`` from a directory outside the checkout, so every process it
starts (``sys.executable -m kgsched`` for the service and the runners inherits the environment) imports
the installed copy: the ontology, shapes, queries and the example federation must come from the
package data (kgsched/data, read through importlib.resources), not from the checkout.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("installed") / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile",
                           "--target", str(site), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not list((site / "kgsched" / "data").rglob("*.pyc")), "compiled files of the checkout were packaged"
    return site


def environment(site: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KGSCHED_")}
    env["PYTHONPATH"] = str(site)
    return env


def test_the_installed_package_carries_its_data_and_is_the_one_imported(installed: Path, tmp_path: Path) -> None:
    probe = """
import kgsched
from kgsched import resources
from kgsched.dev.federation import EXAMPLES
print(kgsched.__file__)
print(EXAMPLES)
print(resources.ontology_path())
print(len(resources.shape_files()), len(list(resources.query_dir().glob('*.rq'))))
print(sorted(p.name for p in EXAMPLES.glob('*.ttl')))
"""
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=environment(installed),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    package, examples, ontology, counts, ttl = done.stdout.splitlines()
    for path in (package, examples, ontology):
        assert Path(path).is_relative_to(installed), (path, installed)
        assert not Path(path).resolve().is_relative_to(ROOT), path
    shapes, queries = map(int, counts.split())
    assert shapes == len(list((ROOT / "shapes").glob("*.ttl"))) and queries == len(list((ROOT / "queries").glob("*.rq")))
    assert ttl == str(sorted(p.name for p in (ROOT / "examples").glob("*.ttl")))
    for name in ("requests/combined-light-curve.json", "invalid/runner-zero-cores.ttl",
                 "workflows/kgsched_examples/astro.py", "data/isgri-events-rev2670.csv"):
        assert (Path(examples) / name).is_file(), name


def test_kgsched_demo_runs_from_another_directory(installed: Path, tmp_path: Path) -> None:
    script = installed / "bin" / "kgsched"
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "kgsched"]
    done = subprocess.run([*command, "demo", "--keep", str(tmp_path / "run")], cwd=tmp_path,
                          env=environment(installed), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Done: every process the demo started is stopped" in done.stdout
    assert "no job to run: nothing is recomputed" in done.stdout  # the second request reuses everything
    assert not (tmp_path / "kgsched-data").exists()

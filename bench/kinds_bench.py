"""What executing a workflow costs by implementation kind: a callable, a notebook, a remote service.

    python bench/kinds_bench.py            # 5 runs of each
    python bench/kinds_bench.py --runs 2

The same analysis — the variability of the example light curve — is executed by the runner's
Executor (as a real runner would, products stored content-addressed) three ways: as a
``ks:PythonCallable`` (the baseline: a child Python process), through a real pygeoapi started here
(``ks:WebService``: describe, asynchronous execute, poll, fetch), and the notebook that plots it
(``ks:Notebook``: a papermill child that starts a Jupyter kernel). Times are printed as medians and
as ratios to the callable measured in the same run, so figures from different machines compare.
Nothing is asserted; the tests check outcomes, this prints cost.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from kgsched.dev.ogc_server import OgcProcessesServer
from kgsched.dev.services import EXAMPLE_PROCESSES
from kgsched.runner.executor import NOTEBOOK, PYTHON_CALLABLE, WEB_SERVICE, Executor
from kgsched.runner.storage import ProductStore

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
EVENTS = {"kind": "dataset", "dataset": "urn:events", "location": "data/isgri-events-rev2670.csv"}


def literal(value: float) -> dict:
    return {"kind": "literal", "value": value, "lexical": str(value)}


def timed(executor: Executor, job: dict, runs: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = executor.execute(job)
        times.append(time.perf_counter() - started)
        if result.outcome != "success":
            raise SystemExit(f"{job['workflow']['implementation_kind']}: {result.outcome}: {result.error}")
    return statistics.median(times), times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kgsched-kinds-") as tmp, \
            OgcProcessesServer(EXAMPLE_PROCESSES, [str(EXAMPLES / "workflows")], Path(tmp) / "ogc") as server:
        executor = Executor(ProductStore(Path(tmp) / "products"), EXAMPLES, [str(EXAMPLES / "workflows")],
                            timeout_seconds=300)
        curve = executor.execute({"workflow": {"implementation_kind": PYTHON_CALLABLE,
                                               "implementation": "kgsched_examples.astro:light_curve"},
                                  "arguments": {"events": EVENTS, "energy_min_kev": literal(20.0),
                                                "energy_max_kev": literal(100.0)}}).product
        light_curve = {"kind": "product", "product": "urn:lc", "location": str(curve.path)}
        callable_job = {"workflow": {"implementation_kind": PYTHON_CALLABLE,
                                     "implementation": "kgsched_examples.astro:variability"},
                        "arguments": {"light_curve": light_curve}}
        service_job = {"workflow": {"implementation_kind": WEB_SERVICE, "implementation": "light-curve-variability"},
                       "arguments": {"light_curve": light_curve},
                       "service": {"endpoint": server.url, "process": "light-curve-variability",
                                   "inputs": {"light_curve": "lightcurve"}}}
        variability = executor.execute(service_job).product
        notebook_job = {"workflow": {"implementation_kind": NOTEBOOK,
                                     "implementation": "notebooks/light-curve-plot.ipynb"},
                        "arguments": {"light_curve": light_curve,
                                      "variability": {"kind": "product", "product": "urn:v",
                                                      "location": str(variability.path)}}}
        same = executor.execute(callable_job).product.checksum == variability.checksum
        baseline, _ = timed(executor, callable_job, args.runs)
        print(f"{args.runs} runs each; the callable and the service give the same bytes: {same}")
        print(f"{'kind':<36} {'median':>9} {'× callable':>11}")
        print(f"{'ks:PythonCallable (child process)':<36} {baseline:>8.3f}s {1.0:>10.2f}x")
        for label, job in (("ks:WebService (pygeoapi, async job)", service_job),
                           ("ks:Notebook (papermill + kernel)", notebook_job)):
            median, _ = timed(executor, job, args.runs)
            print(f"{label:<36} {median:>8.3f}s {median / baseline:>10.2f}x")


if __name__ == "__main__":
    main()

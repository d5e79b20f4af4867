"""Running execution statistics: updated per result, rebuilt from executions, read by the planner."""

from __future__ import annotations

import pytest
from rdflib import URIRef

from kgsched.graph import queries
from kgsched.graph.store import Store
from kgsched.namespaces import KS
from kgsched.planning.expressions import build_dag, expression_iri
from kgsched.planning.planner import plan_request, store_plan
from kgsched.provenance import statistics
from planner_support import ALICE, add_failed_execution, add_product, light_curve, runner

WORKFLOW = URIRef("https://example.org/fed/workflow/light-curve")


def stats(store: Store) -> dict:
    rows = queries.select(store, "execution-statistics", [{"workflow": WORKFLOW}])
    return {row["runner"]: (int(row["runs"]), float(row["meanDuration"]),
                            float(row["meanOutputBytes"]) if "meanOutputBytes" in row else None)
            for row in rows}


def test_running_mean_and_rebuild_agree(federation: Store) -> None:
    request = light_curve(20, 40)
    store_plan(federation, plan_request(federation, request, ALICE))
    expression = expression_iri(build_dag(federation, request).root.address)
    add_product(federation, expression, runner("geneva-batch"), duration=10.0, size=100)
    add_product(federation, expression, runner("geneva-batch"), duration=20.0, size=300)
    add_product(federation, expression, runner("paris-cluster"), duration=5.0, size=50)
    add_failed_execution(federation, expression, runner("geneva-batch"))
    incremental = stats(federation)
    assert incremental[runner("geneva-batch")] == (2, pytest.approx(15.0), pytest.approx(200.0))
    assert incremental[runner("paris-cluster")] == (1, pytest.approx(5.0), pytest.approx(50.0))
    before = federation.quad_count()
    assert statistics.rebuild(federation) == 2
    assert stats(federation) == incremental
    assert federation.quad_count() == before


def test_statistics_are_one_resource_per_pair(federation: Store) -> None:
    for duration in (1.0, 2.0, 3.0):
        statistics.record_execution(federation, WORKFLOW, runner("alice-laptop"), duration, None)
    rows = federation.select("SELECT ?s WHERE { ?s a ?c }", [{"c": KS.ExecutionStatistics}])
    assert len(rows) == 1
    assert stats(federation)[runner("alice-laptop")][:2] == (3, pytest.approx(2.0))

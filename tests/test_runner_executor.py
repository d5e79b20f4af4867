"""The runner's execution of workflows, as real child processes, on the example data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import EXAMPLES
from kgsched.runner.executor import COMMAND_LINE, PYTHON_CALLABLE, Executor
from kgsched.runner.storage import CorruptTransfer, ProductServer, ProductStore, sha256_file

EVENTS = {"kind": "dataset", "dataset": "https://example.org/fed/data/isgri-events-rev2670",
          "location": "data/isgri-events-rev2670.csv"}


def job(implementation: str, arguments: dict, kind: str = PYTHON_CALLABLE, sources: tuple[str, ...] = ()) -> dict:
    return {"workflow": {"implementation_kind": kind, "implementation": implementation}, "arguments": arguments,
            "product_sources": list(sources)}


def literal(value) -> dict:
    return {"kind": "literal", "value": value, "lexical": str(value)}


@pytest.fixture
def executor(tmp_path: Path) -> Executor:
    return Executor(ProductStore(tmp_path / "products"), EXAMPLES, [str(EXAMPLES / "workflows")], timeout_seconds=60)


def test_python_callable_success_is_a_content_addressed_product(executor: Executor) -> None:
    result = executor.execute(job("kgsched_examples.astro:light_curve",
                                  {"events": EVENTS, "energy_min_kev": literal(20.0), "energy_max_kev": literal(40.0)}))
    assert result.outcome == "success", result.error
    assert result.product.path.read_bytes() and sha256_file(result.product.path) == result.product.checksum
    assert result.product.size_bytes == result.product.path.stat().st_size
    curve = json.loads(result.product.path.read_text())
    assert curve["kind"] == "light curve" and curve["total_counts"] > 1000
    assert result.used == [EVENTS["dataset"]]


def test_analysis_exception_is_a_product(executor: Executor) -> None:
    result = executor.execute(job("kgsched_examples.astro:light_curve",
                                  {"events": EVENTS, "energy_min_kev": literal(5000.0), "energy_max_kev": literal(6000.0)}))
    assert result.outcome == "analysis_exception"
    assert "no photons" in json.loads(result.product.path.read_text())["message"]


def test_unhandled_exception_reports_the_traceback(executor: Executor) -> None:
    result = executor.execute(job("kgsched_examples.astro:fail_on_purpose", {"events": EVENTS}))
    assert result.outcome == "unhandled_exception" and result.product is None
    assert "Traceback" in result.error and "ZeroDivisionError" in result.error


def test_products_travel_between_runners_with_checksum_verified(tmp_path: Path, executor: Executor) -> None:
    soft = executor.execute(job("kgsched_examples.astro:light_curve",
                                {"events": EVENTS, "energy_min_kev": literal(20.0), "energy_max_kev": literal(40.0)}))
    hard = executor.execute(job("kgsched_examples.astro:light_curve",
                                {"events": EVENTS, "energy_min_kev": literal(40.0), "energy_max_kev": literal(100.0)}))
    server = ProductServer(executor.store).start()
    try:
        elsewhere = Executor(ProductStore(tmp_path / "elsewhere"), EXAMPLES, [str(EXAMPLES / "workflows")])

        def product(p) -> dict:
            return {"kind": "product", "product": "urn:p:" + p.checksum[-6:], "location": server.url_for(p.checksum),
                    "checksum": p.checksum}

        result = elsewhere.execute(job("kgsched_examples.astro:combine_light_curves",
                                       {"soft": product(soft.product), "hard": product(hard.product)},
                                       sources=(server.base_url,)))
        assert result.outcome == "success", result.error
        assert "hardness_ratio" in json.loads(result.product.path.read_text())
        # a transfer whose bytes do not match the recorded checksum is detected and not used
        lie = dict(product(soft.product), checksum="sha256:" + "0" * 64)
        bad = Executor(ProductStore(tmp_path / "third"), EXAMPLES, [str(EXAMPLES / "workflows")]).execute(
            job("kgsched_examples.astro:combine_light_curves", {"soft": lie, "hard": product(hard.product)},
                sources=(server.base_url,)))
        assert bad.outcome == "unhandled_exception" and "corrupted transfer" in bad.error
        assert not list((tmp_path / "third").rglob("0" * 64))
        with pytest.raises(CorruptTransfer):
            ProductStore(tmp_path / "fourth").fetch(server.url_for(soft.product.checksum), "sha256:" + "1" * 64)
    finally:
        server.stop()


def test_command_line_templating_and_its_exit_codes(executor: Executor, tmp_path: Path) -> None:
    curve = executor.execute(job("kgsched_examples.astro:light_curve",
                                 {"events": EVENTS, "energy_min_kev": literal(20.0), "energy_max_kev": literal(40.0)}))
    template = "python -m kgsched_examples.periodogram --input {light_curve} --min-period {min_period_s} --output {output}"
    server = ProductServer(executor.store).start()
    try:
        args = {"light_curve": {"kind": "product", "product": "urn:p:lc",
                                "location": server.url_for(curve.product.checksum),
                                "checksum": curve.product.checksum}, "min_period_s": literal(200)}
        result = executor.execute(job(template, args, COMMAND_LINE, (server.base_url,)))
        assert result.outcome == "success", result.error
        assert json.loads(result.product.path.read_text())["kind"] == "periodogram"
        tiny = tmp_path / "tiny.json"
        tiny.write_text(json.dumps({"time_s": [1, 2], "rate_cts_per_s": [1, 2]}))
        stored = executor.store.put(tiny)
        args["light_curve"] = {"kind": "product", "location": server.url_for(stored.checksum),
                               "checksum": stored.checksum}
        assert executor.execute(job(template, args, COMMAND_LINE, (server.base_url,))).outcome == "analysis_exception"
    finally:
        server.stop()


def test_an_argument_cannot_inject_options_or_commands(executor: Executor, tmp_path: Path) -> None:
    probe = tmp_path / "pwned"
    template = "python -c {code} {text}"
    args = {"code": literal("import sys; open(sys.argv[1], 'w').write('x')"),
            "text": literal(f"{tmp_path}/ok; touch {probe}")}
    executor.execute(job(template, args, COMMAND_LINE))
    assert not probe.exists()


def test_missing_dataset_is_a_staging_failure(executor: Executor) -> None:
    missing = dict(EVENTS, location="data/not-there.csv")
    result = executor.execute(job("kgsched_examples.astro:light_curve",
                                  {"events": missing, "energy_min_kev": literal(1.0), "energy_max_kev": literal(2.0)}))
    assert result.outcome == "unhandled_exception" and "no file at" in result.error

"""The command line, as a user types it: exit status, stdout and stderr, and the store after."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import EXAMPLES, quads
from kgsched.cli import main

EXAMPLE_FILES = [str(p) for p in sorted(EXAMPLES.glob("*.ttl"))]
RUNNER_COUNT = "SELECT (COUNT(*) AS ?n) WHERE { ?r a/rdfs:subClassOf ks:Runner }"


def test_register_then_count_runners(cli) -> None:
    result = cli("register", "--by-party", *EXAMPLE_FILES)
    assert result.exit_code == 0, result.output
    assert "registered 40 resources" in result.output and "each by its party" in result.output
    counted = cli("query", RUNNER_COUNT, "--format", "json")
    assert json.loads(counted.output) == [{"n": "5"}]


def test_query_formats_and_packaged_queries(cli) -> None:
    cli("register", "--by-party", *EXAMPLE_FILES)
    table = cli("query", "runners")
    assert "runner/geneva-batch" in table.output and "(5 rows)" in table.output
    csv = cli("query", "runners", "--format", "csv")
    assert csv.output.splitlines()[0] == "runner,kind,label,site,owner,cores,memoryBytes"
    assert cli("query", "ASK { ?s a ks:Site }").output.strip() == "true"
    construct = cli("query", "CONSTRUCT { ?s a ks:Site } WHERE { ?s a ks:Site }")
    assert "ks:Site" in construct.output


@pytest.mark.parametrize("path", sorted((EXAMPLES / "invalid").glob("*.ttl")), ids=lambda p: p.name)
def test_every_invalid_file_exits_1_with_reason_and_no_change(cli, path: Path) -> None:
    cli("register", "--by-party", *EXAMPLE_FILES)
    before = quads(cli.store)
    result = CliRunner().invoke(main, ["--store", cli.store, "register", "--as",
                                       "https://example.org/fed/person/mallory", str(path)])
    assert result.exit_code == 1
    assert result.stderr.startswith("rejected:")
    expected = path.read_text().splitlines()[0].removeprefix("# expect: ")
    assert expected in result.stderr
    assert quads(cli.store) == before


def test_validate_writes_nothing(cli, tmp_path: Path) -> None:
    result = cli("validate", "--by-party", *EXAMPLE_FILES)
    assert result.exit_code == 0 and "valid: 40 resources" in result.output, result.output
    refused = cli("validate", *EXAMPLE_FILES)  # one registrant for everyone's runners and verifications
    assert refused.exit_code == 1 and "not entitled" in refused.stderr
    assert not Path(cli.store).exists()
    bad = CliRunner().invoke(main, ["--store", cli.store, "validate", str(EXAMPLES / "invalid" / "runner-no-owner.ttl")])
    assert bad.exit_code == 1 and "ks:ownedBy" in bad.stderr


def test_bad_query_is_a_clear_error(cli) -> None:
    cli("init")
    result = CliRunner().invoke(main, ["--store", cli.store, "query", "SELECT ?x WHERE { ?x ?y }"])
    assert result.exit_code == 1 and "syntax error" in result.stderr
    deep = "SELECT * WHERE " + "{" * 3000 + "}" * 3000
    refused = CliRunner().invoke(main, ["--store", cli.store, "query", deep])
    assert refused.exit_code == 1 and "nests" in refused.stderr
    update = CliRunner().invoke(main, ["--store", cli.store, "query", "DROP ALL"])
    assert update.exit_code == 1


def test_query_without_a_store_says_so(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--store", str(tmp_path / "none"), "query", "ASK {}"])
    assert result.exit_code == 1 and "no store" in result.stderr


def test_plan_reads_well(cli) -> None:
    cli("register", "--by-party", *EXAMPLE_FILES)
    result = cli("plan", str(EXAMPLES / "requests" / "combined-light-curve.json"),
                 "--as", "https://example.org/fed/person/alice")
    assert result.exit_code == 0, result.output
    assert "3 step(s) — 0 reuse, 3 recompute, 0 cannot" in result.output
    assert "combine-light-curves 1.0.0(hard=#1, soft=#2)" in result.output
    assert "why: not cached;" in result.output
    as_json = json.loads(cli("plan", str(EXAMPLES / "requests" / "periodogram.json"), "--format", "json").output)
    assert as_json["summary"]["cannot"] == 1
    turtle = cli("plan", str(EXAMPLES / "requests" / "spi-acs-light-curve.json"), "--format", "turtle",
                 "--as", "https://example.org/fed/person/alice")
    assert "ks:chosenRunner" in turtle.output and "paris-cluster" in turtle.output


def test_plan_with_bad_json_exits_1(cli, tmp_path: Path) -> None:
    cli("register", "--by-party", *EXAMPLE_FILES)
    bad = tmp_path / "bad.json"
    bad.write_text('{"workflow": ')
    result = CliRunner().invoke(main, ["--store", cli.store, "plan", str(bad)])
    assert result.exit_code == 1 and "invalid JSON at line 1" in result.stderr


def test_console_script_runs(tmp_path: Path) -> None:
    """The installed entry point, as a separate process."""
    script = Path(sys.executable).parent / "kgsched"
    store = str(tmp_path / "s")
    done = subprocess.run([str(script), "--store", store, "register", "--by-party", *EXAMPLE_FILES], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    counted = subprocess.run([str(script), "--store", store, "query", RUNNER_COUNT, "--format", "csv"],
                             capture_output=True, text=True)
    assert counted.stdout.split() == ["n", "5"]


def test_remote_store_through_the_cli(oxigraph_server) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["--endpoint", oxigraph_server.url, "register", "--by-party", *EXAMPLE_FILES])
    assert result.exit_code == 0, result.output
    counted = runner.invoke(main, ["--endpoint", oxigraph_server.url, "query", RUNNER_COUNT, "--format", "csv"])
    assert counted.output.split() == ["n", "5"]

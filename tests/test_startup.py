"""Start-up: what a fresh interpreter imports for ``kgsched --help``, each command's help, and the runner.

Each case runs in a new interpreter (the test session itself has imported everything) and reports
its ``sys.modules``; the assertions are on which modules are loaded, never on times (those are in
bench/startup_bench.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from conftest import EXAMPLES
from kgsched.cli import COMMANDS, load_command

#: What the server needs and a command line's help or a runner machine does not.
HEAVY = ("numpy", "networkx", "pyshacl", "pyoxigraph", "flask")
MARKER = "--- modules ---"


def loaded_modules(code: str) -> tuple[list[str], str]:
    """Run ``code`` in a fresh interpreter; return the modules it loaded and what it printed before."""
    script = textwrap.dedent(code) + textwrap.dedent(f"""
        import json, sys
        print({MARKER!r})
        print(json.dumps(sorted(sys.modules)))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    printed, _, modules = done.stdout.rpartition(MARKER + "\n")
    return json.loads(modules), printed


def heavy(modules: list[str], packages: tuple[str, ...] = HEAVY) -> list[str]:
    return sorted({name.split(".")[0] for name in modules} & set(packages))


def run_main(*args: str) -> str:
    return f"""
        from kgsched.cli import main
        try:
            main({list(args)!r}, prog_name="kgsched")
        except SystemExit as exc:
            assert exc.code in (0, None), exc.code
    """


def test_help_loads_neither_the_server_stack_nor_rdflib() -> None:
    modules, printed = loaded_modules(run_main("--help"))
    assert heavy(modules, (*HEAVY, "rdflib")) == []
    # every command is listed, with its line, although none of their modules was imported
    for name, (_target, line) in COMMANDS.items():
        assert f"  {name} " in printed and line[:20] in printed, (name, printed)
    assert not [m for m in modules if m.startswith("kgsched.cli.") and m != "kgsched.cli.common"]
    assert not [m for m in modules if m.startswith(("kgsched.graph.", "kgsched.registry", "kgsched.planning"))]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_commands_help_loads_none_of_the_server_stack(command: str) -> None:
    modules, printed = loaded_modules(run_main(command, "--help"))
    assert f"Usage: kgsched {command}" in printed
    assert heavy(modules) == [], command


def test_the_listing_is_what_click_writes_once_every_command_is_loaded() -> None:
    """The table's lines are the commands' own: the lazy listing equals the one of the loaded commands."""
    _, printed = loaded_modules("""
        import click
        from kgsched.cli import COMMANDS, main

        def listing():
            with click.Context(main, info_name="kgsched") as ctx:
                return main.get_help(ctx)

        lazy = listing()
        with click.Context(main) as ctx:
            for name in COMMANDS:
                main.get_command(ctx, name)
        assert set(main.commands) == set(COMMANDS)
        loaded = listing()
        print("same" if lazy == loaded else lazy + "\\n=====\\n" + loaded)
    """)
    assert printed.strip() == "same", printed


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_tables_help_line_is_the_commands_own(name: str) -> None:
    command = load_command(name)
    assert command.name == name
    assert command.get_short_help_str(limit=1000) == COMMANDS[name][1]


def test_the_runner_agent_is_stdlib_only() -> None:
    modules, _ = loaded_modules("""
        import kgsched.runner.agent, kgsched.runner.call, kgsched.runner.executor, kgsched.runner.storage
        import kgsched.runner.site_storage
    """)
    # boto3 only when an S3 storage is used (kgsched.runner.s3 imports it inside its functions)
    assert heavy(modules, (*HEAVY, "rdflib", "click", "boto3", "botocore")) == []
    ours = {m for m in modules if m.startswith("kgsched")}
    # its own package, and only the stdlib base modules it shares with the service
    outside = {m for m in ours if not m.startswith("kgsched.runner")}
    assert outside <= {"kgsched", "kgsched.vocabulary", "kgsched.product_urls", "kgsched.analysis"}, outside


def test_the_runner_command_loads_none_of_the_server_stack() -> None:
    """``kgsched runner --config`` cuts its own description out of the file without the registry or Oxigraph."""
    modules, printed = loaded_modules(f"""
        from pathlib import Path
        from kgsched.cli.runner import runner_description
        iri, description = runner_description(Path({str(EXAMPLES / "runners.ttl")!r}),
                                              "https://example.org/fed/runner/geneva-batch")
        print(iri, len(description))
    """)
    assert printed.startswith("https://example.org/fed/runner/geneva-batch ")
    assert int(printed.split()[1]) > 5
    assert heavy(modules) == []
    assert not [m for m in modules if m.startswith(("kgsched.graph.", "kgsched.registry", "kgsched.service"))]


@pytest.mark.parametrize("runner", ["geneva-batch", "alice-laptop", "paris-cluster"])
def test_the_runners_description_is_the_one_the_registry_would_cut(runner: str) -> None:
    """rdflib's parse and Oxigraph's strict one give the same bounded description of a valid file."""
    from rdflib.compare import isomorphic
    from rdflib.namespace import RDF

    from kgsched.cli.runner import runner_description
    from kgsched.descriptions import describe_closure
    from kgsched.graph.rdfio import parse_rdf

    path = EXAMPLES / "runners.ttl"
    iri, description = runner_description(path, f"https://example.org/fed/runner/{runner}")
    strict = parse_rdf(path.read_bytes(), source=path.name)
    expected = strict.__class__()
    for triple in describe_closure(strict, [iri]):
        expected.add(triple)
    assert isomorphic(description, expected)
    assert (iri, RDF.type, None) in description


def test_a_config_that_is_not_turtle_is_a_usage_error_naming_the_file(tmp_path) -> None:
    import click

    from kgsched.cli.runner import runner_description

    bad = EXAMPLES / "invalid" / "syntax-error.ttl"
    with pytest.raises(click.UsageError, match=r"syntax-error\.ttl is not valid Turtle: at line \d+"):
        runner_description(bad, None)
    with pytest.raises(click.UsageError, match="describes 5 runners; say which with --runner"):
        runner_description(EXAMPLES / "runners.ttl", None)


def test_a_query_loads_the_store_but_not_the_registry_planner_or_service(cli) -> None:
    assert cli("init").exit_code == 0
    modules, printed = loaded_modules(run_main("--store", cli.store, "query", "ASK { ?s a owl:Class }"))
    assert printed.strip() == "true"
    assert heavy(modules) == ["pyoxigraph"]
    assert not [m for m in modules if m.startswith(("kgsched.registry", "kgsched.planning", "kgsched.service"))]

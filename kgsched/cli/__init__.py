"""The ``kgsched`` command line: the group ``main`` and the table of its commands.

Each command lives in its own module and is imported only when it runs or shows its help, and each
imports the heavy parts it uses (the store and pyoxigraph, the registry and pySHACL, the planner and
numpy, networkx, Flask) inside its function. So ``kgsched --help`` and ``kgsched runner`` start in
about the time of a bare interpreter (bench/startup_bench.py), and no command module imports this
one: the table below is the only place that knows them all, so nothing can import in a circle.

Exit status 0 on success, 1 when the input is rejected (the reason goes to stderr), so scripts and CI
can rely on it.
"""

from __future__ import annotations

import importlib

import click

from kgsched.cli.common import StoreOptions
from kgsched.graph import DEFAULT_STORE_DIR

#: Command name → ("module:attribute" of the click command, its one-line help for ``kgsched --help``).
#: The line is kept here so that listing the commands imports none of them; a test checks that each
#: line is the command's own short help.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("kgsched.cli.demo:demo",
             "Run the demo: service, example federation, runners, a request, provenance, credits, reuse."),
    "export": ("kgsched.cli.export:export",
               "Export the whole provenance of PRODUCT (a data product IRI), through every product it used."),
    "import-wfcommons": ("kgsched.cli.wfcommons:import_wfcommons",
                         "Import TRACE_FILE, a WfCommons workflow instance (WfFormat 1.5, .json or .json.gz)."),
    "init": ("kgsched.cli.registry:init", "Load (or refresh) the ontology into the store."),
    "plan": ("kgsched.cli.plan:plan",
             "Plan REQUEST_FILE (JSON expression or Turtle ks:Request): reuse, recompute or cannot, and why."),
    "query": ("kgsched.cli.query:query",
              "Run a read-only SPARQL query (text, a .rq file, or the name of a packaged query)."),
    "register": ("kgsched.cli.registry:register", "Validate FILES (Turtle) and register them, all or nothing."),
    "runner": ("kgsched.cli.runner:runner_command",
               "Join the federation: register, then claim, execute and report jobs until stopped."),
    "register-service": ("kgsched.cli.register_service:register_service",
                         "Read the service's process descriptions and write the Turtle to review and register."),
    "serve": ("kgsched.cli.serve:serve",
              "Serve the SPARQL endpoint, registration, plans, the job queue and credits over HTTP."),
    "unregister": ("kgsched.cli.registry:unregister", "Remove everything the registrant registered."),
    "validate": ("kgsched.cli.registry:validate", "Check FILES as 'register' would, writing nothing."),
}


def load_command(name: str) -> click.Command:
    """Import the module of command ``name`` and return its click command."""
    module_name, _, attribute = COMMANDS[name][0].partition(":")
    command = getattr(importlib.import_module(module_name), attribute)
    if not isinstance(command, click.Command):  # pragma: no cover - a wrong table entry
        raise TypeError(f"{COMMANDS[name][0]} is not a click command")
    return command


class LazyGroup(click.Group):
    """A group whose commands are imported on first use; the listing in --help imports none."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in COMMANDS:
            command = load_command(cmd_name)
            self.add_command(command, cmd_name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The listing of ``kgsched --help`` as click writes it, from the table's lines for commands not loaded."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            if name in COMMANDS and name not in self.commands:
                rows.append((name, click.utils.make_default_short_help(COMMANDS[name][1], limit)))
                continue
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup)
@click.option("--store", "store_dir", envvar="KGSCHED_STORE", default=None,
              help=f"Directory of the embedded store (default {DEFAULT_STORE_DIR}; env KGSCHED_STORE).")
@click.option("--endpoint", envvar="KGSCHED_ENDPOINT", default=None,
              help="A SPARQL 1.1 server instead (its root or query URL; env KGSCHED_ENDPOINT).")
@click.version_option(package_name="kgsched")
@click.pass_context
def main(ctx: click.Context, store_dir: str | None, endpoint: str | None) -> None:
    """kgsched: provenance knowledge graph and scheduler for federated analysis."""
    ctx.obj = StoreOptions(store_dir, endpoint)


if __name__ == "__main__":  # pragma: no cover
    main()

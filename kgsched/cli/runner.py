"""``kgsched runner``: join this machine to the federation as a runner, in one command.

Like the agent it starts (kgsched.runner), this command imports nothing of the server: no store, no
registry, no pySHACL, numpy, networkx, pyoxigraph or Flask (tests/test_startup.py). rdflib is imported
only to cut this runner's description out of --config; the service checks it strictly when it is
registered (Oxigraph's parser, then the SHACL shapes).
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kgsched.runner.agent import RunnerAgent, ServiceClient, ServiceError
from kgsched.runner.executor import Executor
from kgsched.runner.policy import PolicyFileError, RunnerPolicy
from kgsched.runner.site_storage import StorageAccess, StorageConfigError
from kgsched.runner.storage import ProductServer, ProductStore

if TYPE_CHECKING:
    from rdflib import Graph, URIRef


def runner_description(path: Path, runner: str | None) -> tuple[URIRef, Graph]:
    """The one runner the config describes (or the one named), with its description only."""
    from rdflib import Graph, URIRef
    from rdflib.namespace import RDF

    from kgsched.descriptions import describe_closure
    from kgsched.namespaces import KS, bind_prefixes

    runner_kinds = {KS.AnonymousJobTokenRunner, KS.JobRunner, KS.SessionRunner, KS.UserRunner, KS.GroupRunner,
                    KS.Runner, KS.ServiceRunner}
    graph = Graph()
    try:
        graph.parse(data=path.read_bytes(), format="turtle")
    except Exception as exc:  # rdflib raises several kinds (BadSyntax, ValueError, …) for bad Turtle
        raise click.UsageError(f"{path} is not valid Turtle: {exc}") from exc
    runners = sorted({s for kind in runner_kinds for s in graph.subjects(RDF.type, kind)})
    if runner is not None:
        chosen = URIRef(runner)
        if chosen not in runners:
            raise click.UsageError(f"{path} does not describe runner {runner}")
    elif len(runners) == 1:
        chosen = runners[0]
    else:
        raise click.UsageError(f"{path} describes {len(runners)} runners; say which with --runner")
    description = Graph()
    bind_prefixes(description)
    for triple in describe_closure(graph, [chosen]):
        description.add(triple)
    return chosen, description


def join(client: ServiceClient, config: Path | None, runner: str | None,
         endpoint: str | None = None) -> tuple[ServiceClient, str]:
    """Register the description (when the token may) and return a client holding the runner's token.

    ``endpoint`` (the product server's base URL) is registered as the runner's ``ks:productEndpoint``,
    so the service accepts product locations there and other runners may fetch from it."""
    me = client.whoami()
    if config is None:
        if not me.get("runner_kinds"):
            raise click.UsageError("this token is not a runner's; give --config with the runner's description")
        return client, me["agent"]
    iri, description = runner_description(config, runner)
    if endpoint is not None:
        from rdflib import Literal
        from rdflib.namespace import XSD

        from kgsched.namespaces import KS

        description.set((iri, KS.productEndpoint, Literal(endpoint, datatype=XSD.anyURI)))
    turtle = description.serialize(format="turtle").encode()
    if me["agent"] == str(iri):
        try:
            client.register(turtle)
        except ServiceError as exc:
            if exc.status != 403:
                raise
            logging.getLogger("kgsched.runner").info("description managed by its registrant; not updated")
        return client, str(iri)
    from rdflib.namespace import RDFS

    from kgsched.namespaces import KS

    owner = description.value(iri, KS.ownedBy)
    client.register(turtle, as_registrant=str(owner) if me.get("admin") and owner is not None else None)
    label = str(description.value(iri, RDFS.label) or iri)
    token = client.issue_token(str(iri), f"runner agent for {label}")
    return ServiceClient(client.base_url, token, client.timeout), str(iri)


def runner_policy(config: Path | None, runner: str | None, trusted: tuple[str, ...], modules: tuple[str, ...],
                  executables: tuple[str, ...], policy_file: Path | None, notebooks: tuple[str, ...] = (),
                  services: tuple[str, ...] = ()) -> RunnerPolicy:
    """The owner's policy from the options and the policy file; trusted verifiers default to the
    ``ks:trusts`` of the runner's own description (``--config``)."""
    default: list[str] = []
    if config is not None:
        from kgsched.namespaces import KS

        iri, description = runner_description(config, runner)
        default = sorted(str(agent) for agent in description.objects(iri, KS.trusts))
    try:
        return RunnerPolicy.build(trusted=trusted, modules=modules, executables=executables, notebooks=notebooks,
                                  services=services, policy_file=policy_file, default_trusted=default)
    except (PolicyFileError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None


def check_service_mode(config: Path, runner: str | None, service_mode: bool) -> str | None:
    """A ks:ServiceRunner starts only with --service, and only when its endpoint answers; its endpoint."""
    from kgsched.namespaces import KS
    from kgsched.runner.service_mode import ServiceModeError, check_endpoint, check_mode

    iri, description = runner_description(config, runner)
    try:
        endpoint = check_mode(description, iri, service_mode)
        if endpoint is not None:
            offered = [str(w) for w in description.objects(iri, KS.offersWorkflow)]
            ids = check_endpoint(endpoint)
            logging.getLogger("kgsched.runner").info("service mode: %s offers %d process(es) for %d workflow(s)",
                                                     endpoint, len(ids), len(offered))
    except ServiceModeError as exc:
        raise click.ClickException(str(exc)) from None
    return endpoint


@click.command("runner")
@click.option("--server", required=True, envvar="KGSCHED_SERVER", help="The kgsched service's base URL.")
@click.option("--token", required=True, envvar="KGSCHED_TOKEN",
              help="The runner's token, or its owner's (then the agent registers itself and gets one).")
@click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Turtle describing this runner (registered or updated on start).")
@click.option("--runner", "runner_iri", default=None, help="Which runner of --config, if it describes several.")
@click.option("--storage", "storage_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("./kgsched-products"), show_default=True,
              help="Where products are kept (content-addressed; runners of a site may share it).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True,
              help="Datasets' relative ks:location is resolved here.")
@click.option("--workflow-path", multiple=True, help="Directories added to the Python path of workflows.")
@click.option("--listen", default="127.0.0.1:0", show_default=True,
              help="host:port where products are served to other runners (port 0: any free one).")
@click.option("--once", is_flag=True, help="Run one job and exit (anonymous job-token runners).")
@click.option("--max-idle", type=float, default=None, help="With --once: leave after waiting this long (s).")
@click.option("--poll", type=float, default=1.0, show_default=True, help="Seconds between claims when idle.")
@click.option("--job-timeout", type=float, default=None, help="Kill a job running longer than this (s).")
@click.option("--grace", type=float, default=30.0, show_default=True, help="On SIGTERM, seconds to finish the job.")
@click.option("--product-url", default=None,
              help="The URL other runners reach this runner's product server at, e.g. http://host.example.org:8700 "
                   "(default: from --listen); products are served under its /products/, registered as the "
                   "runner's ks:productEndpoint.")
@click.option("--trust-verifier", "trusted", multiple=True, metavar="IRI",
              help="Run only workflows verified by this agent (repeatable). Default: the ks:trusts of --config.")
@click.option("--allow-module", "modules", multiple=True, metavar="PREFIX",
              help="Allow Python callables (and 'python -m') in modules under this dotted prefix (repeatable). "
                   "Default: none.")
@click.option("--allow-executable", "executables", multiple=True, metavar="NAME",
              help="Allow command lines starting with this executable, a bare name or an absolute path "
                   "(repeatable; 'python' is this runner's interpreter, only as 'python -m <allowed module>'). "
                   "Default: none.")
@click.option("--policy", "policy_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="TOML file with trust_verifiers, allow_modules, allow_executables (added to the options).")
@click.option("--allow-notebook", "notebooks", multiple=True, metavar="DIR",
              help="Allow Jupyter notebooks under this directory of the workflow path (repeatable). Default: none.")
@click.option("--service", "service_mode", is_flag=True,
              help="Act for a remote OGC API - Processes service (a ks:ServiceRunner in --config): execute its "
                   "jobs by calling it.")
@click.option("--storage-credentials", "storage_credentials", type=click.Path(exists=True, dir_okay=False,
              path_type=Path), default=None, envvar="KGSCHED_STORAGE_CREDENTIALS",
              help="TOML with this machine's side of its site storages, per storage IRI: S3 access_key_id, "
                   "secret_access_key, region; a shared directory's local path. Never in the graph.")
@click.option("-v", "--verbose", is_flag=True)
def runner_command(server: str, token: str, config: Path | None, runner_iri: str | None, storage_dir: Path,
                   data_dir: Path, workflow_path: tuple[str, ...], listen: str, once: bool, max_idle: float | None,
                   poll: float, job_timeout: float | None, grace: float, product_url: str | None,
                   trusted: tuple[str, ...], modules: tuple[str, ...], executables: tuple[str, ...],
                   policy_file: Path | None, notebooks: tuple[str, ...], service_mode: bool,
                   storage_credentials: Path | None, verbose: bool) -> None:
    """Join the federation: register, then claim, execute and report jobs until stopped.

    Every claimed job is first checked against this machine's policy (trusted verifiers, allowed
    Python modules and executables); what it does not allow is handed back unrun."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s runner %(levelname)s %(message)s", stream=sys.stderr)
    endpoint = None
    if config is not None:
        endpoint = check_service_mode(config, runner_iri, service_mode)
    elif service_mode:
        raise click.UsageError("--service needs --config with the service's description (a ks:ServiceRunner)")
    # a service runner calls its own service, and only that one
    policy = runner_policy(config, runner_iri, trusted, modules, executables, policy_file, notebooks,
                           (endpoint,) if endpoint else ())
    try:
        access = StorageAccess.from_file(storage_credentials)
    except StorageConfigError as exc:
        raise click.UsageError(str(exc)) from None
    host, _, port = listen.rpartition(":")
    store = ProductStore(storage_dir)
    # the product server runs before registering, so its address is part of the registered description
    product_server = ProductServer(store, host or "127.0.0.1", int(port or 0), public_url=product_url).start()
    try:
        client, iri = join(ServiceClient(server, token), config, runner_iri, product_server.base_url)
    except BaseException:
        product_server.stop()
        raise
    executor = Executor(store, data_dir.resolve(), [str(Path(p).resolve()) for p in workflow_path],
                        timeout_seconds=job_timeout, allowed_modules=policy.allowed_modules,
                        storage_access=access)
    agent = RunnerAgent(client, executor, product_server, once=once, poll_seconds=poll, grace_seconds=grace,
                        max_idle_seconds=max_idle, policy=policy)

    def on_signal(signum: int, _frame: Any) -> None:
        logging.getLogger("kgsched.runner").info("signal %d: finishing the job in hand, claiming no more", signum)
        agent.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    logging.getLogger("kgsched.runner").info("%s ready; serving products at %s", iri, product_server.base_url)
    logging.getLogger("kgsched.runner").info("policy: %s", policy.describe())
    if not policy.trusted_verifiers or not (policy.allowed_modules or policy.allowed_executables):
        logging.getLogger("kgsched.runner").warning(
            "this policy allows no job: give --config (its ks:trusts) or --trust-verifier, and --allow-module "
            "or --allow-executable")
    try:
        code = agent.run()
    finally:
        product_server.stop()
    sys.exit(code)

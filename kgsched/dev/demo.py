"""The demo (``kgsched demo``, ``make demo``): the whole loop, for real, on one machine.

It starts the service on an embedded store in a temporary directory, registers the example
federation, starts three runner agents as processes at two sites, and lets Alice ask for a combined
light curve: the plan, the runs (with a progress line), the provenance lineage of the result, the
credits and the acknowledgement sentence. Then it asks again (everything is reused), and once more
with one argument changed (only what depends on it is recomputed). Its last acts add a web service
and a notebook, then a living federation: a product kept in the site's shared storage outlives the
runner that made it, and a volunteer joining after the plan takes the job that reads it. It stops
everything it started.

Harness, not product: the command (kgsched.cli.demo) imports this module only when it runs, and the
end-to-end test drives ``demo_flow`` directly.
"""

from __future__ import annotations

import copy
import hashlib
import json
import textwrap
from pathlib import Path
from typing import Any

import click
from rdflib import URIRef

from kgsched.dev.demo_living import living_federation
from kgsched.dev.demo_services import services_and_notebooks
from kgsched.dev.federation import DEMO_RUNNERS, EXAMPLES, FED, Federation, ServiceError, new_workdir
from kgsched.dev.notebooks import short as short_name
from kgsched.errors import KgschedError
from kgsched.namespaces import KS
from kgsched.runner.agent import ServiceClient

ALICE = FED + "person/alice"


def heading(text: str) -> None:
    click.echo("\n" + click.style(f"== {text} ", bold=True) + "=" * max(0, 74 - len(text)))


def short(iri: str | None) -> str:
    """The notebooks' short name of an IRI, cut to fit the demo's columns ("-" for none)."""
    if not iri:
        return "-"
    name = short_name(iri)
    return name[:40] + "…" if len(name) > 41 else name


def show_plan(plan: dict[str, Any]) -> None:
    summary = plan["summary"]
    click.echo(f"plan {short(plan['plan'])}: {summary['reuse']} reuse, {summary['recompute']} recompute, "
               f"{summary['cannot']} cannot")
    for n, step in enumerate(plan["steps"], start=1):
        who = {"reuse": f"reuse {short(step['product'])}", "recompute": f"recompute on {short(step['runner'])}",
               "cannot": "CANNOT"}[step["decision"]]
        click.echo(f"  #{n} {short(step['workflow']):<22} {step['decision'].upper():<9} {who}")
        click.echo(textwrap.fill(step["reason"], width=96, initial_indent="       why: ",
                                 subsequent_indent="            "))


_last_line: list[str] = [""]


def progress_line(states: list[dict[str, Any]]) -> None:
    """One line per change of the jobs' states (redrawn in place on a terminal)."""
    done = sum(1 for job in states if job["state"] == "done")
    failed = sum(1 for job in states if job["state"] == "failed")
    running = sum(1 for job in states if job["state"] == "claimed")
    bar = "#" * done + "x" * failed + ">" * running + "." * (len(states) - done - failed - running)
    line = f"  [{bar}] {done}/{len(states)} done, {running} running, {failed} failed"
    if line != _last_line[0]:
        _last_line[0] = line
        tty = click.get_text_stream("stdout").isatty()
        click.echo(("\r" + line) if tty else line, nl=not tty)


def run_request(federation: Federation, token: str, request: dict[str, Any]) -> dict[str, Any]:
    answer = federation.submit(token, request)
    show_plan(answer["plan"])
    jobs = [job["job"] for job in answer["jobs"]]
    if jobs:
        click.echo(f"waiting for {len(jobs)} job(s):")
        states = federation.wait_for_jobs(jobs, progress=progress_line)
        if click.get_text_stream("stdout").isatty():
            click.echo()
        failed = [job for job in states if job["state"] == "failed"]
        if failed:
            raise click.ClickException(f"{len(failed)} job(s) failed: {failed}")
    else:
        click.echo("no job to run: nothing is recomputed")
    return answer


def show_result(federation: Federation, plan: dict[str, Any]) -> str:
    product = federation.product_of(plan["root"])
    if product is None:
        raise click.ClickException("the root expression has no product")
    data = federation.fetch(product["location"])
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    same = digest == product["checksum"] and len(data) == int(product["sizeBytes"])
    verdict = "match" if same else "DO NOT match"
    click.echo(f"product {short(product['product'])}: {len(data)} bytes at {product['location']}")
    click.echo(f"  its checksum and size {verdict} the graph ({product['checksum'][:23]}…)")
    curve = json.loads(data)
    if "hardness_ratio" in curve:
        peak = max(range(len(curve["rate_cts_per_s"])), key=curve["rate_cts_per_s"].__getitem__)
        click.echo(f"  combined light curve: {len(curve['time_s'])} bins, peak {curve['rate_cts_per_s'][peak]:.2f} "
                   f"cts/s at t = {curve['time_s'][peak]:.0f} s, hardness there {curve['hardness_ratio'][peak]:+.2f}")
    return product["product"]


def show_lineage(federation: Federation, product: str) -> None:
    rows = federation.named("product-lineage", {"product": [URIRef(product)]})
    by_entity: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = by_entity.setdefault(row["entity"], {**row, "used": set()})
        if "used" in row:
            entry["used"].add(row.get("usedLabel") or short(row["used"]))
    for entity, row in sorted(by_entity.items(), key=lambda item: item[0] != product):
        duration = f"{float(row['duration']):.2f} s" if row.get("duration") else "?"
        click.echo(f"  {short(entity)}")
        click.echo(f"     = {short(row['workflow'])} on {short(row['runner'])} (owner {short(row.get('owner'))}), "
                   f"{short(row['outcome'])}, {duration}")
        click.echo(f"     used: {', '.join(sorted(row['used'])) or '-'}")


def show_credits(federation: Federation, product: str) -> None:
    credits = federation.credits()
    click.echo(f"  {'agent':<48} {'total':>7}  by reason")
    for agent in credits["agents"]:
        reasons = ", ".join(f"{k} {v:g}" for k, v in sorted(agent["by_reason"].items()))
        click.echo(f"  {agent.get('name') or short(agent['agent']):<48} {agent['total']:>7.2f}  {reasons}")
    acknowledgement = federation.acknowledgements(product)
    click.echo()
    click.echo(textwrap.fill(acknowledgement["sentence"], width=100, initial_indent="  ", subsequent_indent="  "))


def show_rejection(federation: Federation) -> None:
    bad = EXAMPLES / "invalid" / "runner-zero-cores.ttl"
    before = federation.named("quad-count")[0]["n"]
    try:
        federation.admin.register(bad.read_bytes(), as_registrant=FED + "person/mallory")
    except ServiceError as exc:
        click.echo(f"{bad.name}: HTTP {exc.status}: {exc.payload.get('detail', '').splitlines()[-1]}")
    after = federation.named("quad-count")[0]["n"]
    click.echo(f"store unchanged: {before} quads before, {after} after")


FORGED = f"""@prefix ks: <{KS}> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
<https://example.org/fed/workflow/shell> a ks:Workflow ; rdfs:label "anything" ; ks:version "1" ;
    ks:implementationKind ks:PythonCallable ; ks:implementation "os:system" ;
    ks:author <https://example.org/fed/person/bob> ; ks:verifiedBy <https://example.org/fed/person/carol> .
""".encode()


def show_authority(federation: Federation) -> None:
    """Who may say what (docs/authority.md): carol's verifications count because she stated them in her
    own graph; bob cannot state them for her."""
    rows = federation.named("verifications", [{"verifier": URIRef(FED + "person/carol")}])
    click.echo("Carol's verifications, stated in her own graph (each pinned to version and implementation):")
    for row in rows:
        click.echo(f"  {short(row['workflow'])} {row['version']}")
    bob = ServiceClient(federation.url, federation.token_for(FED + "person/bob"))
    try:
        bob.register(FORGED)
    except ServiceError as exc:
        click.echo(f"Bob registers a workflow 'verified by Carol' himself: HTTP {exc.status}: "
                   f"{exc.payload.get('detail', '').split(':')[0]}")


def demo_flow(federation: Federation) -> dict[str, Any]:
    """The demo's steps; returns what it saw (the end-to-end test asserts on it)."""
    seen: dict[str, Any] = {}
    heading(f"Service on an embedded store at {federation.url}")
    # the planned runners' head start before any able runner may take a job (late binding): short, so the
    # last act's volunteer, joining after its plan, need not wait the default half minute
    federation.service_env.setdefault("KGSCHED_PREFERENCE_SECONDS", "3")
    federation.start_service()
    results = federation.register_base()
    click.echo(f"registered {sum(len(r['resources']) for r in results)} resources in {len(results)} registrations, "
               "each by its party: people themselves; the administrator sites, datasets, workflows; Carol her "
               "verifications")
    show_rejection(federation)
    show_authority(federation)

    heading("Three runners join, at Geneva and Paris (each registers itself)")
    for name in DEMO_RUNNERS:
        federation.start_runner(name)
        click.echo(f"  runner {name} registered and waiting for jobs")

    alice = federation.token_for(ALICE)
    request = json.loads((EXAMPLES / "requests" / "combined-light-curve.json").read_text())
    heading("Alice asks for a combined light curve (soft 20-40 keV + hard 40-100 keV)")
    first = run_request(federation, alice, request)
    seen["first"] = first
    product = show_result(federation, first["plan"])
    seen["product"] = product

    heading("Provenance lineage of the result (queries/product-lineage.rq)")
    show_lineage(federation, product)
    heading("Credits and acknowledgement")
    show_credits(federation, product)

    heading("Alice asks again: every node is reused, nothing is recomputed")
    seen["second"] = run_request(federation, alice, request)

    changed = copy.deepcopy(request)
    changed["args"]["hard"]["args"]["energy_max_kev"] = 150
    heading("The hard band changes to 40-150 keV: only its downstream cone is recomputed")
    seen["third"] = run_request(federation, alice, changed)
    seen["third_product"] = show_result(federation, seen["third"]["plan"])
    seen["credits"] = federation.credits()
    seen.update(services_and_notebooks(federation, alice, heading=heading, run_request=run_request,
                                       show_lineage=show_lineage))
    seen.update(living_federation(federation, alice, heading=heading, run_request=run_request))
    return seen


def run_demo(keep: Path | None = None) -> None:
    """Run the demo in a temporary directory (or in ``keep``, left in place with its store and logs)."""
    with new_workdir() as tmp:
        workdir = keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        with Federation(workdir) as federation:
            try:
                demo_flow(federation)
            except (KgschedError, ServiceError, TimeoutError, RuntimeError) as exc:
                raise click.ClickException(f"{exc} (logs in {workdir})") from exc
        heading("Done: every process the demo started is stopped")

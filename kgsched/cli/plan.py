"""``kgsched plan``: plan a request from a JSON or Turtle file and show the decisions."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kgsched.cli.common import DEFAULT_REGISTRANT, StoreOptions, reports_errors
from kgsched.errors import SyntaxProblem

if TYPE_CHECKING:
    from kgsched.planning.model import Plan

#: The local administrator asks, as it registers, unless --as / KGSCHED_REQUESTER says who.
DEFAULT_REQUESTER = DEFAULT_REGISTRANT


def read_request(path: Path) -> dict[str, Any] | Any:
    """A request file: JSON (the expression) or Turtle (a ks:Request)."""
    data = path.read_bytes()
    if path.suffix in (".ttl", ".turtle"):
        from kgsched.graph.rdfio import parse_rdf

        return parse_rdf(data, source=path.name)
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise SyntaxProblem(f"{path.name}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
                            extra={"line": exc.lineno, "column": exc.colno}) from exc


def render_plan(plan: Plan, width: int = 100) -> str:
    """The plan as a person reads it: one block per step, in the order they happen."""
    from kgsched.planning.expressions import expression_iri
    from kgsched.planning.words import human_seconds, short

    counts = plan.summary()
    lines = [
        f"Plan {plan.iri}",
        f"  for {short(plan.requester)}: {len(plan.steps)} step(s) — {counts['reuse']} reuse, "
        f"{counts['recompute']} recompute, {counts['cannot']} cannot",
        "",
    ]
    labels = {step.expression: f"#{n}" for n, step in enumerate(plan.steps, start=1)}
    for n, step in enumerate(plan.steps, start=1):
        expression = next(e for e in plan.expressions if e.iri == step.expression)
        args = []
        for argument in expression.arguments:
            if argument.kind == "literal":
                args.append(f"{argument.name}={argument.value}")
            elif argument.kind == "dataset":
                args.append(f"{argument.name}={short(argument.value)}")
            else:
                args.append(f"{argument.name}={labels.get(expression_iri(str(argument.value)), '(cached)')}")
        who = {"reuse": f"reuse {short(step.product)}", "recompute": f"recompute on {short(step.runner)}",
               "cannot": "CANNOT"}[step.decision]
        cost = "" if step.estimated_cost_seconds is None else f"  (~{human_seconds(step.estimated_cost_seconds)})"
        lines.append(f"#{n} {short(step.workflow)} {expression.workflow.version}({', '.join(args)})")
        lines.append(f"   {step.decision.upper():<9} {who}{cost}")
        lines += textwrap.wrap(step.reason, width=width, initial_indent="   why: ", subsequent_indent="        ")
        lines.append(f"   expression {step.address[:16]}…")
        lines.append("")
    for expression, reason in plan.skipped.items():
        lines.append(f"skipped {short(expression)}: {reason}")
    return "\n".join(lines).rstrip()


@click.command()
@click.argument("request_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--as", "requester", envvar="KGSCHED_REQUESTER", default=DEFAULT_REQUESTER, show_default=True,
              help="IRI of the requester (decides which runners serve the request).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "turtle"]), default="table", show_default=True)
@click.option("--force", is_flag=True, help="Recompute every node, whatever is cached.")
@click.option("--max-age", type=float, default=None, help="Reuse only products younger than this (seconds).")
@click.option("--prefer", "preferred_runner", default=None, help="Run on this runner when it is able.")
@click.option("--trust-owner", "trusted_owners", multiple=True,
              help="Reuse only products made by runners of these owners (repeatable; default: any registered runner).")
@click.option("--deliver-to", "deliver_to_site", default=None, help="Site where the final product is wanted.")
@click.option("--store-plan/--no-store-plan", "store_plan_flag", default=True, show_default=True,
              help="Record the plan in the graph (plans graph).")
@click.pass_obj
@reports_errors
def plan(options: StoreOptions, request_file: Path, requester: str, fmt: str, force: bool, max_age: float | None,
         preferred_runner: str | None, trusted_owners: tuple[str, ...], deliver_to_site: str | None,
         store_plan_flag: bool) -> None:
    """Plan REQUEST_FILE (JSON expression or Turtle ks:Request): reuse, recompute or cannot, and why."""
    from kgsched.graph.binding import check_iri
    from kgsched.planning.model import PlanOptions
    from kgsched.planning.planner import plan_request, store_plan

    plan_options = PlanOptions.from_mapping({
        "force_recompute": force, "max_age_seconds": max_age, "preferred_runner": preferred_runner,
        "trusted_owners": list(trusted_owners) or None, "deliver_to_site": deliver_to_site,
    })
    request = read_request(request_file)
    with options.open(read_only=not store_plan_flag) as store:
        result = plan_request(store, request, check_iri(requester), plan_options)
        if store_plan_flag:
            store_plan(store, result)
    if fmt == "json":
        click.echo(json.dumps(result.to_json(), indent=2))
    elif fmt == "turtle":
        click.echo(result.to_graph().serialize(format="turtle"))
    else:
        click.echo(render_plan(result))

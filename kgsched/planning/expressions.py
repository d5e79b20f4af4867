"""Requests become DAGs of content-addressed expressions.

A workflow is a pure function, so an expression — a workflow applied to arguments — is named by a
hash of what determines its value: the workflow IRI, its version, its declared environment, and its
arguments, each typed (nested expressions by their own address). Equal requests from different
users, processes or machines therefore get the same IRI, and a new workflow version gets new ones.
The canonical form is documented in docs/expressions.md; change it only with a new ``form`` number.

Arguments are checked against the workflow's declared parameters before anything is hashed:
unknown, missing and wrongly typed arguments are refused with a message naming them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Literal

import networkx as nx
from rdflib import Graph, URIRef
from rdflib import Literal as RDFLiteral
from rdflib.namespace import RDF, XSD

from kgsched.errors import InvalidRequest
from kgsched.graph import queries
from kgsched.graph.binding import check_iri
from kgsched.graph.store import Store
from kgsched.namespaces import KS, KSID

CANONICAL_FORM = 1
# rdflib's namespace attributes build a new URIRef on every access; the hot paths use these.
DATASET_VALUE = URIRef(str(KS.DatasetValue))
X_STRING, X_BOOLEAN, X_INTEGER = URIRef(str(XSD.string)), URIRef(str(XSD.boolean)), URIRef(str(XSD.integer))
X_DECIMAL, X_DOUBLE = URIRef(str(XSD.decimal)), URIRef(str(XSD.double))
X_DATE, X_DATETIME = URIRef(str(XSD.date)), URIRef(str(XSD.dateTime))
MAX_DEPTH = 64
MAX_NODES = 200_000

ArgumentKind = Literal["literal", "dataset", "expression"]


@dataclass(frozen=True)
class Parameter:
    name: str
    type: URIRef
    optional: bool = False
    default: RDFLiteral | None = None

    @property
    def takes_data(self) -> bool:
        return self.type is DATASET_VALUE or str(self.type) == str(DATASET_VALUE)


@dataclass(frozen=True)
class WorkflowInfo:
    """What the registry says about a workflow, as far as expressions and the planner care."""

    iri: URIRef
    version: str
    kind: URIRef
    environment: str | None
    parameters: Mapping[str, Parameter]
    estimated_duration: float | None = None
    estimated_output_bytes: int | None = None
    requires_cores: int = 1
    requires_memory_bytes: int = 0


@dataclass(frozen=True)
class Argument:
    name: str
    kind: ArgumentKind
    value: RDFLiteral | URIRef | str  # literal; dataset IRI; address of the input expression

    def canonical(self) -> list[str]:
        if self.kind == "literal":
            assert isinstance(self.value, RDFLiteral)
            return [self.name, "literal", str(self.value), str(self.value.datatype)]
        return [self.name, self.kind, str(self.value)]


@dataclass
class Expression:
    address: str
    workflow: WorkflowInfo
    arguments: tuple[Argument, ...]
    inputs: list[str] = field(default_factory=list)  # addresses of input expressions

    @property
    def iri(self) -> URIRef:
        try:
            return self._iri
        except AttributeError:
            self._iri: URIRef = expression_iri(self.address)
            return self._iri

    @property
    def datasets(self) -> tuple[URIRef, ...]:
        """The datasets among the arguments, sorted (cached: the planner asks for them often)."""
        try:
            return self._datasets
        except AttributeError:
            self._datasets: tuple[URIRef, ...] = tuple(sorted(a.value for a in self.arguments if a.kind == "dataset"))
            return self._datasets

    def to_graph(self, graph: Graph) -> None:
        """Add the expression's description (arguments as IRIs below it, so rewriting is idempotent)."""
        graph.add((self.iri, RDF.type, KS.Expression))
        graph.add((self.iri, KS.workflow, self.workflow.iri))
        graph.add((self.iri, KS.contentAddress, RDFLiteral(self.address)))
        for argument in self.arguments:
            node = URIRef(f"{self.iri}/arg/{argument.name}")
            graph.add((self.iri, KS.argument, node))
            graph.add((node, RDF.type, KS.Argument))
            graph.add((node, KS.name, RDFLiteral(argument.name)))
            if argument.kind == "literal":
                graph.add((node, KS.value, argument.value))
            elif argument.kind == "dataset":
                graph.add((node, KS.dataset, URIRef(argument.value)))
            else:
                graph.add((node, KS.expression, expression_iri(str(argument.value))))


def expression_iri(address: str) -> URIRef:
    return URIRef(KSID[f"expression/{address}"])


def canonical_form(workflow: WorkflowInfo, arguments: tuple[Argument, ...]) -> bytes:
    """The bytes that are hashed: compact JSON, keys sorted, arguments sorted by name, UTF-8.

    The document is ``{"args": …, "environment": …, "form": …, "version": …, "workflow": …}``
    with its keys in that (sorted) order; everything after ``args`` depends only on the workflow, so
    it is encoded once per workflow and only the arguments per expression (a third of the time of
    building a 10,000-node DAG went to encoding whole documents, measured). The bytes are the same
    as ``json.dumps(document, sort_keys=True, …)`` — tests/test_expressions.py pins them."""
    args = _dumps([a.canonical() for a in sorted(arguments, key=_by_name)])
    return f'{{"args":{args}{_canonical_tail(str(workflow.iri), workflow.version, workflow.environment)}'.encode()


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _by_name(argument: Argument) -> str:
    return argument.name


@lru_cache(maxsize=1024)
def _canonical_tail(workflow: str, version: str, environment: str | None) -> str:
    return (f',"environment":{_dumps(environment)},"form":{CANONICAL_FORM},"version":{_dumps(version)},'
            f'"workflow":{_dumps(workflow)}}}')


def content_address(workflow: WorkflowInfo, arguments: tuple[Argument, ...]) -> str:
    return hashlib.sha256(canonical_form(workflow, arguments)).hexdigest()


# --------------------------------------------------------------------------------------------------
# Typed literals
# --------------------------------------------------------------------------------------------------

def _decimal_lexical(value: Decimal) -> str:
    """XSD canonical decimal: no exponent, at least one digit after the point."""
    text = format(value.normalize(), "f")
    if "." not in text:
        text += ".0"
    return "0.0" if text in ("-0.0", "-0") else text


_TYPES = {str(t): t for t in (X_STRING, X_BOOLEAN, X_INTEGER, X_DECIMAL, X_DOUBLE, X_DATE, X_DATETIME)}


def typed_literal(name: str, value: Any, datatype: URIRef) -> RDFLiteral:
    """A JSON value → the canonical typed literal for the parameter's datatype, or a clear error."""

    datatype = _TYPES.get(str(datatype), datatype)  # the shared constant, so the checks below compare identity

    def wrong(expected: str) -> InvalidRequest:
        return InvalidRequest(f"argument {name!r} must be {expected}, got {value!r}")

    if isinstance(value, Mapping) and set(value) == {"value", "datatype"}:
        # the explicit form {"value": lexical, "datatype": IRI}, as Turtle requests and defaults give it
        if URIRef(value["datatype"]) != datatype and not (
            datatype in (X_DECIMAL, X_DOUBLE) and URIRef(value["datatype"]) in (X_INTEGER, X_DECIMAL)
        ):
            raise wrong(f"of type {datatype}")
        value = RDFLiteral(str(value["value"]), datatype=URIRef(value["datatype"])).toPython()
        if isinstance(value, RDFLiteral):
            raise wrong(f"a valid {datatype} lexical form")
        if isinstance(value, Decimal):
            value = str(value)
        elif isinstance(value, dt.datetime | dt.date):
            value = value.isoformat()
    if datatype is X_STRING:
        if not isinstance(value, str):
            raise wrong("a string")
        return RDFLiteral(value)
    if datatype is X_BOOLEAN:
        if not isinstance(value, bool):
            raise wrong("true or false")
        return RDFLiteral("true" if value else "false", datatype=X_BOOLEAN)
    if datatype is X_INTEGER:
        if type(value) is int:  # the common case, without the checks below
            return RDFLiteral(str(value), datatype=X_INTEGER)
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
                value = int(value)
            else:
                raise wrong("an integer")
        return RDFLiteral(str(int(value)), datatype=X_INTEGER)
    if datatype is X_DECIMAL:
        if isinstance(value, bool):
            raise wrong("a decimal number")
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise wrong("a decimal number") from None
        if not number.is_finite():
            raise wrong("a finite decimal number")
        return RDFLiteral(_decimal_lexical(number), datatype=X_DECIMAL)
    if datatype is X_DOUBLE:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise wrong("a number")
        try:
            number_f = float(value)
        except ValueError:
            raise wrong("a number") from None
        if math.isnan(number_f) or math.isinf(number_f):
            raise wrong("a finite number")
        return RDFLiteral(repr(number_f), datatype=X_DOUBLE)
    if datatype in (X_DATE, X_DATETIME):
        if not isinstance(value, str):
            raise wrong("an ISO 8601 " + ("date" if datatype == X_DATE else "date-time") + " string")
        try:
            if datatype == X_DATE:
                return RDFLiteral(dt.date.fromisoformat(value).isoformat(), datatype=X_DATE)
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise wrong("an ISO 8601 date" + ("" if datatype == X_DATE else "-time")) from None
        if moment.tzinfo is not None:
            moment = moment.astimezone(dt.UTC)
            return RDFLiteral(moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ").replace(".000000Z", "Z"), datatype=X_DATETIME)
        return RDFLiteral(moment.isoformat(), datatype=X_DATETIME)
    raise InvalidRequest(f"parameter {name!r} has an unsupported type {datatype}")


# --------------------------------------------------------------------------------------------------
# Loading workflow declarations
# --------------------------------------------------------------------------------------------------

def load_workflows(store: Store, iris: list[URIRef]) -> dict[URIRef, WorkflowInfo]:
    """Declarations of the given workflows, in one query."""
    if not iris:
        return {}
    rows = queries.select(store, "workflow-parameters", {"workflow": sorted(set(iris))})
    by_workflow: dict[URIRef, dict[str, Any]] = {}
    for row in rows:
        iri = row["workflow"]
        info = by_workflow.setdefault(iri, {"row": row, "params": {}})
        if "paramName" in row:
            name = str(row["paramName"])
            info["params"][name] = Parameter(
                name, row["paramType"], bool(row["optional"].toPython()) if "optional" in row else False,
                row.get("default"),
            )
    result = {}
    for iri, info in by_workflow.items():
        row = info["row"]
        result[iri] = WorkflowInfo(
            iri=iri,
            version=str(row["version"]),
            kind=row["kind"],
            environment=str(row["environment"]) if "environment" in row else None,
            parameters=info["params"],
            estimated_duration=float(row["estimatedDuration"]) if "estimatedDuration" in row else None,
            estimated_output_bytes=int(row["estimatedOutputBytes"]) if "estimatedOutputBytes" in row else None,
            requires_cores=int(row["requiresCores"]) if "requiresCores" in row else 1,
            requires_memory_bytes=int(row["requiresMemoryBytes"]) if "requiresMemoryBytes" in row else 0,
        )
    return result


# --------------------------------------------------------------------------------------------------
# Requests → DAG
# --------------------------------------------------------------------------------------------------

def _is_mapping(value: Any) -> bool:
    """isinstance(value, Mapping), with JSON's dicts answered without the ABC machinery (measured:
    the ABC check was a tenth of building a 10,000-node DAG)."""
    return type(value) is dict or isinstance(value, Mapping)


def _workflow_iris(request: Mapping[str, Any], depth: int = 0) -> set[URIRef]:
    if depth > MAX_DEPTH:
        raise InvalidRequest(f"request nests deeper than {MAX_DEPTH} levels")
    if not _is_mapping(request) or "workflow" not in request:
        raise InvalidRequest('an expression is an object {"workflow": IRI, "args": {...}}')
    unknown = set(request) - {"workflow", "args"}
    if unknown:
        raise InvalidRequest(f"unknown key(s) in expression: {', '.join(sorted(unknown))}")
    if not isinstance(request["workflow"], str):
        raise InvalidRequest("'workflow' must be an IRI string")
    found = {check_iri(request["workflow"])}
    args = request.get("args", {})
    if not _is_mapping(args):
        raise InvalidRequest("'args' must be an object mapping parameter names to values")
    for value in args.values():
        if _is_mapping(value) and "workflow" in value:
            found |= _workflow_iris(value, depth + 1)
    return found


class ExpressionBuilder:
    """Turns request JSON into Expressions, checking arguments, memoising equal sub-expressions."""

    def __init__(self, workflows: Mapping[URIRef, WorkflowInfo]) -> None:
        # by the IRI's plain string: a request names workflows as strings, and a URIRef key compares
        # in Python (rdflib's __eq__) on every lookup
        self._workflow_by_string = {str(iri): info for iri, info in workflows.items()}
        self.dag = nx.DiGraph()
        #: expressions in the order they were first built: every input before its consumers (the
        #: recursion builds arguments first), so it is a topological order that costs nothing to keep
        self.order: list[Expression] = []

    def build(self, request: Mapping[str, Any]) -> Expression:
        workflow = self._workflow_by_string.get(request["workflow"])
        if workflow is None:
            raise InvalidRequest(f"unknown workflow {request['workflow']}: it is not registered")
        given = dict(request.get("args", {}))
        unknown = sorted(set(given) - set(workflow.parameters))
        if unknown:
            raise InvalidRequest(
                f"{workflow.iri} has no parameter(s) {', '.join(unknown)}; "
                f"it takes {', '.join(sorted(workflow.parameters)) or 'none'}")
        arguments: list[Argument] = []
        inputs: list[str] = []
        for name, parameter in sorted(workflow.parameters.items()):
            if name not in given:
                if not parameter.optional:
                    raise InvalidRequest(f"{workflow.iri} needs argument {name!r} ({parameter.type})")
                if parameter.default is not None and not parameter.takes_data:
                    # An explicit default and an omitted argument must give the same address.
                    lexical = {"value": str(parameter.default), "datatype": str(parameter.type)}
                    arguments.append(Argument(name, "literal", typed_literal(name, lexical, parameter.type)))
                continue
            value = given[name]
            if parameter.takes_data:
                if _is_mapping(value) and set(value) == {"dataset"}:
                    arguments.append(Argument(name, "dataset", check_iri(value["dataset"])))
                elif _is_mapping(value) and "workflow" in value:
                    child = self.build(value)
                    arguments.append(Argument(name, "expression", child.address))
                    inputs.append(child.address)
                else:
                    raise InvalidRequest(
                        f"argument {name!r} takes data: {{\"dataset\": IRI}} or a nested expression, got {value!r}")
            else:
                if _is_mapping(value) and ("workflow" in value or "dataset" in value):
                    raise InvalidRequest(f"argument {name!r} takes a {parameter.type} literal, not data")
                arguments.append(Argument(name, "literal", typed_literal(name, value, parameter.type)))
        frozen = tuple(sorted(arguments, key=lambda a: a.name))
        address = content_address(workflow, frozen)
        if address not in self.dag:
            if len(self.dag) >= MAX_NODES:
                raise InvalidRequest(f"request has more than {MAX_NODES} expressions")
            expression = Expression(address, workflow, frozen, sorted(set(inputs)))
            self.dag.add_node(address, expression=expression)
            self.order.append(expression)
            for child in set(inputs):
                self.dag.add_edge(child, address)
        return self.dag.nodes[address]["expression"]


@dataclass
class RequestDag:
    """A request's expressions as a networkx DAG (edges: input → consumer) and its root."""

    dag: nx.DiGraph
    root: Expression
    _order: list[Expression] | None = field(default=None, repr=False, compare=False)

    def expressions(self) -> list[Expression]:
        """Topological order: inputs before the expressions that use them, deterministic. For a DAG
        from build_dag, the order in which its depth-first walk of the request (arguments by name)
        first met each expression; otherwise a lexicographic sort of the networkx DAG, which costs a
        tenth of a 10,000-node plan (measured)."""
        if self._order is None:
            order = nx.lexicographical_topological_sort(self.dag)
            self._order = [self.dag.nodes[a]["expression"] for a in order]
        return list(self._order)


def build_dag(store: Store, request: Mapping[str, Any] | Graph) -> RequestDag:
    """Check a request (JSON or a Turtle ks:Request graph) against the registry and build its DAG."""
    if isinstance(request, Graph):
        request = request_from_graph(request)
    workflows = load_workflows(store, sorted(_workflow_iris(request)))
    builder = ExpressionBuilder(workflows)
    root = builder.build(request)
    return RequestDag(builder.dag, root, builder.order)


def request_from_graph(graph: Graph) -> dict[str, Any]:
    """A ks:Request (or a lone root ks:Expression) in RDF → the JSON form."""
    roots = list(graph.objects(None, KS.rootExpression))
    if not roots:
        expressions = set(graph.subjects(RDF.type, KS.Expression))
        nested = set(graph.objects(None, KS.expression))
        roots = sorted(expressions - nested)
    if len(roots) != 1:
        raise InvalidRequest("a Turtle request needs exactly one ks:Request with one ks:rootExpression")
    return _expression_json(graph, roots[0], 0)


def _expression_json(graph: Graph, node: Any, depth: int) -> dict[str, Any]:
    if depth > MAX_DEPTH:
        raise InvalidRequest(f"request nests deeper than {MAX_DEPTH} levels")
    workflow = graph.value(node, KS.workflow)
    if workflow is None:
        raise InvalidRequest(f"expression {node} has no ks:workflow")
    args: dict[str, Any] = {}
    for argument in graph.objects(node, KS.argument):
        name = graph.value(argument, KS.name)
        if name is None:
            raise InvalidRequest("every ks:argument needs a ks:name")
        if (value := graph.value(argument, KS.value)) is not None:
            args[str(name)] = {"value": str(value), "datatype": str(value.datatype or XSD.string)}
        elif (dataset := graph.value(argument, KS.dataset)) is not None:
            args[str(name)] = {"dataset": str(dataset)}
        elif (child := graph.value(argument, KS.expression)) is not None:
            args[str(name)] = _expression_json(graph, child, depth + 1)
        else:
            raise InvalidRequest(f"argument {name} needs ks:value, ks:dataset or ks:expression")
    return {"workflow": str(workflow), "args": args}

"""The /sparql pre-check (each limit, the tokenizer that strings, IRIs, escapes and comments cannot fool,
SERVICE only to allowed endpoints) and strict literals (every XSD datatype's lexical space, on any
property, refused with the line and the value, the store unchanged)."""

from __future__ import annotations

import pytest

from conftest import MALLORY
from kgsched.errors import SyntaxProblem
from kgsched.graph.guard import Limits, QueryRefused, check_query, nesting_depth, tokens
from kgsched.graph.literals import XSD, lexical_problem
from kgsched.graph.store import Store
from kgsched.registry.registration import Registry

P = "PREFIX ex: <http://example.org/> "
SMALL = Limits(max_chars=100_000, max_tokens=5_000, max_nesting=8, max_chain=5, max_path_steps=4,
               max_expression_operators=10)


@pytest.mark.parametrize(("query", "fragment"), [
    (P + "ASK { " + "{" * 9 + "}" * 9 + " }", "nests more than 8"),
    (P + "ASK { FILTER(" + "(" * 9 + "1" + ")" * 9 + ") }", "nests more than 8"),
    (P + "ASK { ?s ?p ?o " + "OPTIONAL { ?s ex:q ?x } " * 6 + "}", "OPTIONAL/UNION/MINUS"),
    (P + "ASK { " + " UNION ".join(["{ ?s ?p ?o }"] * 7) + " }", "OPTIONAL/UNION/MINUS"),
    (P + "ASK { ?s ?p ?o " + "MINUS { ?s ex:q ?x } " * 6 + "}", "OPTIONAL/UNION/MINUS"),
    (P + "ASK { ?s " + "/".join(["ex:p"] * 6) + " ?o }", "property path"),
    (P + "ASK { ?s " + "|".join(["ex:p"] * 6) + " ?o }", "property path"),
    (P + "ASK { ?s ^ex:p/(ex:q|<http://x/r>)/ex:a/ex:b/ex:c ?o }", "property path"),
    (P + "ASK { FILTER(" + "+".join(["1"] * 12) + " > 0) }", "operators"),
    (P + "ASK { FILTER(" + "!" * 12 + "true) }", "operators"),
    (P + "SELECT ((" + "*".join(["?x"] * 12) + ") AS ?y) WHERE { ?x ?p ?o }", "operators"),
    (P + "ASK { " + "?s ?p ?o . " * 1300 + "}", "tokens"),
    ("ASK { ?s ?p ?o } " + "#" * 100_001, "characters"),
    (P + "ASK { ?s ex:a\\' ?o . " + "{" * 9 + "}" * 9 + " }", "nests more than 8"),
    (P + "ASK { ?s ex:a\\} ?o . " + "{" * 9 + "}" * 9 + " }", "nests more than 8"),
    (P + "ASK { ?s ex:a" + "\\{" * 9 + " ?o }", "nests more than 8"),
])
def test_each_limit_refuses_with_its_reason(query: str, fragment: str) -> None:
    with pytest.raises(QueryRefused) as caught:
        check_query(query, SMALL)
    assert fragment in caught.value.detail


@pytest.mark.parametrize("query", [
    P + "SELECT ?s (COUNT(*) AS ?n) WHERE { ?s ex:a/ex:b* ?o . FILTER(?o < 3 && ?o >= 1) } GROUP BY ?s",
    'ASK { ?s ?p "{{{{{{{{{{{{ OPTIONAL UNION SERVICE <http://x/> \\" }}}" }',
    "ASK { ?s ?p '''{{{{{{{{{{\n SERVICE <http://x/> ''' }",
    "ASK { ?s ?p ?o # {{{{{{{{{{ SERVICE <http://x/>\n }",
    "ASK { <http://x/{{{{{{{{{{{{{> ?p ?o }".replace("{", "a"),
    P + "ASK { ?s ex:SERVICE ?o . ?s ex:OPTIONAL ?x }",
    P + "ASK { ?s ?p ?o FILTER(?o < 3) FILTER(?o > <http://x/>) }",
])
def test_what_looks_hostile_only_inside_strings_iris_comments_and_names_passes(query: str) -> None:
    assert check_query(query, SMALL) == query


def test_escaped_quote_in_a_prefixed_name_is_one_token() -> None:
    assert [t.text for t in tokens("SELECT * { ?s ex:a\\' 'x{' }")] == ["SELECT", "*", "{", "?s", "ex:a\\'",
                                                                      "'x{'", "}"]
    assert nesting_depth(P + "ASK { ?s ex:a\\' ?o . {{{}}} }") == 4


@pytest.mark.parametrize("service", [
    "SERVICE <http://127.0.0.1:9/sparql>", "SERVICE SILENT <http://127.0.0.1:9/sparql>",
    "\\u0053ERVICE <http://127.0.0.1:9/sparql>", "service <http://127.0.0.1:9/sparql>",
    "SERVICE ?endpoint", "SERVICE ex:endpoint", "SERVICE <file:///etc/passwd>", "SERVICE <sparql>",
])
def test_service_is_refused_unless_its_endpoint_is_allowed(service: str) -> None:
    with pytest.raises(QueryRefused) as caught:
        check_query(P + f"SELECT * WHERE {{ ?endpoint ?p ?o {service} {{ ?s ?p ?x }} }}")
    assert "SERVICE" in caught.value.detail


def test_an_allowed_endpoint_passes() -> None:
    query = "SELECT * WHERE { SERVICE <https://query.wikidata.org/sparql> { ?s ?p ?o } }"
    assert check_query(query, Limits(service_allowlist=("https://query.wikidata.org/sparql",))) == query
    with pytest.raises(QueryRefused):
        check_query(query.replace("query.wikidata", "evil"),
                    Limits(service_allowlist=("https://query.wikidata.org/sparql",)))


BAD = [("1", "negativeInteger"), ("0", "positiveInteger"), ("abc", "integer"), ("1.5", "integer"),
       (" 1", "integer"), ("256", "unsignedByte"), ("-1", "nonNegativeInteger"), ("2147483648", "int"),
       ("yes", "boolean"), ("True", "boolean"), ("1.2.3", "decimal"), ("1e3", "decimal"), ("one", "double"),
       ("2024-02-30", "date"), ("2023-02-29", "date"), ("2024-1-01", "date"), ("2024-01-01T25:00:00", "dateTime"),
       ("2024-01-01", "dateTime"), ("2024-01-01T10:00:00", "dateTimeStamp"), ("10:60:00", "time"),
       ("P", "duration"), ("P1DT", "duration"), ("P1Y", "dayTimeDuration"), ("abc", "hexBinary"),
       ("a$b", "base64Binary"), ("en_GB", "language"), ("1abc", "NCName"), ("a  b", "token"), ("x", "gYear"),
       ("--13", "gMonth"), ("x", "notADatatype")]
GOOD = [("-1", "negativeInteger"), ("+7", "integer"), ("0", "nonPositiveInteger"), ("255", "unsignedByte"),
        ("true", "boolean"), ("0", "boolean"), ("1.", "decimal"), ("-.5", "decimal"), ("1E-3", "double"),
        ("INF", "float"), ("NaN", "double"), ("2024-02-29", "date"), ("2024-02-29Z", "date"),
        ("2024-01-01T24:00:00", "dateTime"), ("2024-01-01T10:00:00.5+14:00", "dateTimeStamp"),
        ("P1Y2M3DT4H5M6.5S", "duration"), ("-PT5M", "dayTimeDuration"), ("P2Y", "yearMonthDuration"),
        ("0fA9", "hexBinary"), ("aGk=", "base64Binary"), ("en-GB", "language"), ("a b", "token"),
        ("--02-29", "gMonthDay"), ("---31", "gDay"), ("2024-12", "gYearMonth"), ("any thing", "string"),
        ("not even a URI", "anyURI")]


@pytest.mark.parametrize(("value", "datatype"), BAD)
def test_ill_typed_literals(value: str, datatype: str) -> None:
    assert lexical_problem(value, XSD + datatype) is not None


@pytest.mark.parametrize(("value", "datatype"), GOOD)
def test_well_typed_literals(value: str, datatype: str) -> None:
    assert lexical_problem(value, XSD + datatype) is None


RUNNER = """@prefix ks: <https://w3id.org/kgsched#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
<https://example.org/fed/person/mallory> a <http://xmlns.com/foaf/0.1/Person> ; <http://xmlns.com/foaf/0.1/name> "M" .
<https://example.org/m/runner> a ks:JobRunner ; rdfs:label "m" ;
    ks:ownedBy <https://example.org/fed/person/mallory> ; ks:atSite <https://example.org/fed/site/paris> ;
    ks:cores 4 ; ks:memoryBytes 1000 ; ks:supports ks:PythonCallable ; ks:serves ks:Anyone ;
    rdfs:comment [ rdfs:seeAlso "%s"^^xsd:%s ] .
"""


@pytest.mark.parametrize(("value", "datatype"), [("1", "negativeInteger"), ("abc", "integer"),
                                                 ("2024-02-30", "date"), ("maybe", "boolean")])
def test_registration_refuses_an_ill_typed_literal_on_any_property(federation: Store, value: str,
                                                                  datatype: str) -> None:
    before = federation.quad_count()
    with pytest.raises(SyntaxProblem) as caught:
        Registry(federation).register([("runner.ttl", RUNNER % (value, datatype))], MALLORY)
    assert f"'{value}'" in caught.value.detail and "runner.ttl, line 8" in caught.value.detail
    assert caught.value.extra["line"] == 8 and caught.value.extra["value"] == value
    assert federation.quad_count() == before
    Registry(federation).register([("runner.ttl", RUNNER % ("-1", "negativeInteger"))], MALLORY)

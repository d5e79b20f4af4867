"""Every namespace kgsched uses, in one place, so no IRI string is spelled twice."""

from __future__ import annotations

from rdflib import Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, ORG, OWL, PROV, RDF, RDFS, SH, XSD

from kgsched.vocabulary import KS_IRI, KSG_IRI, KSID_IRI, KSS_IRI

KS = Namespace(KS_IRI)
KSS = Namespace(KSS_IRI)
#: Base for IRIs kgsched mints itself (expressions, products, executions, plans, jobs).
KSID = Namespace(KSID_IRI)
#: Base for the named graphs the store is partitioned into.
KSG = Namespace(KSG_IRI)

ONTOLOGY_GRAPH = URIRef(KSG["ontology"])
PROVENANCE_GRAPH = URIRef(KSG["provenance"])
PLANS_GRAPH = URIRef(KSG["plans"])
JOBS_GRAPH = URIRef(KSG["jobs"])
SYSTEM_GRAPH = URIRef(KSG["system"])
REGISTRANT_GRAPH_BASE = str(KSG["registrant/"])
#: The local operator: the command line's default registrant and the service's default administrator.
#: No registrant may describe it (docs/authority.md).
LOCAL_ADMIN = URIRef("urn:kgsched:agent:local-admin")

PREFIXES: dict[str, Namespace] = {
    "ks": KS,
    "kss": KSS,
    "ksid": KSID,
    "prov": Namespace(str(PROV)),
    "dcat": Namespace(str(DCAT)),
    "dct": Namespace(str(DCTERMS)),
    "foaf": Namespace(str(FOAF)),
    "org": Namespace(str(ORG)),
    "owl": Namespace(str(OWL)),
    "rdf": Namespace(str(RDF)),
    "rdfs": Namespace(str(RDFS)),
    "sh": Namespace(str(SH)),
    "xsd": Namespace(str(XSD)),
}

__all__ = [
    "DCAT", "DCTERMS", "FOAF", "JOBS_GRAPH", "KS", "KSG", "KSID", "KSS", "LOCAL_ADMIN", "ONTOLOGY_GRAPH", "ORG", "OWL",
    "PLANS_GRAPH", "PREFIXES", "PROV", "PROVENANCE_GRAPH", "RDF", "RDFS", "REGISTRANT_GRAPH_BASE", "SH",
    "SYSTEM_GRAPH", "XSD", "bind_prefixes", "sparql_prefixes",
]


def bind_prefixes(graph) -> None:
    """Give a graph our prefixes so its Turtle reads like the examples."""
    for prefix, namespace in PREFIXES.items():
        graph.bind(prefix, namespace, override=True)


def sparql_prefixes() -> str:
    """PREFIX lines for ad-hoc queries (the CLI prepends them when the user wrote none)."""
    return "".join(f"PREFIX {p}: <{ns}>\n" for p, ns in PREFIXES.items())

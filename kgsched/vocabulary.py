"""The vocabulary's base IRIs as plain strings, spelled here and nowhere else.

Standard library only, so the runner agent (which must not import rdflib's namespaces or anything of
the server) names implementation kinds from the same strings as kgsched.namespaces, which builds its
rdflib ``Namespace`` objects from these.
"""

from __future__ import annotations

#: The vocabulary (classes and properties).
KS_IRI = "https://w3id.org/kgsched#"
#: The SHACL shapes.
KSS_IRI = "https://w3id.org/kgsched/shapes#"
#: Base for IRIs kgsched mints itself (expressions, products, executions, plans, jobs).
KSID_IRI = "https://w3id.org/kgsched/id/"
#: Base for the named graphs the store is partitioned into.
KSG_IRI = "https://w3id.org/kgsched/graph/"
#: The ontology document itself.
ONTOLOGY_IRI = "https://w3id.org/kgsched"

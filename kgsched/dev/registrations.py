"""Generated registration bodies (runners, datasets, workflows) for the registration benchmark and the
load tests: valid against the shapes, referring to the example federation's sites, people and storage."""

from __future__ import annotations

#: triples one unit (a runner, a dataset and a workflow with two parameters) writes
TRIPLES_PER_UNIT = 38

_PREFIXES = """@prefix ks: <https://w3id.org/kgsched#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix foaf: <http://xmlns.com/foaf/0.1/> .
@prefix fed: <https://example.org/fed/> .
@prefix b: <https://example.org/bench/%(tag)s/> .
"""

_UNIT = """
b:runner-%(i)d a ks:JobRunner ; rdfs:label "bench runner %(i)d" ;
    ks:ownedBy <%(owner)s> ; ks:atSite fed:site\\/geneva ;
    ks:cores %(cores)d ; ks:memoryBytes 8000000000 ; ks:storageBytes 1000000000 ;
    ks:supports ks:PythonCallable, ks:CommandLine ; ks:usesStorage fed:storage\\/geneva-disk ;
    ks:holds b:dataset-%(i)d ; ks:trusts fed:person\\/carol ; ks:serves ks:Anyone .
b:dataset-%(i)d a ks:Dataset ; rdfs:label "bench dataset %(i)d" ;
    ks:heldAt fed:site\\/geneva ; ks:storedAt fed:storage\\/geneva-disk ; ks:location "data/bench-%(i)d.csv" ;
    ks:sizeBytes %(size)d ; ks:providedBy fed:person\\/erin ;
    ks:checksum "sha256:%(checksum)s" .
b:workflow-%(i)d a ks:Workflow ; rdfs:label "bench workflow %(i)d" ; ks:version "1.0.%(i)d" ;
    ks:implementationKind ks:PythonCallable ; ks:implementation "kgsched_examples.astro:light_curve" ;
    ks:author fed:person\\/bob ; ks:estimatedDurationSeconds 30 ;
    ks:requiresCores 1 ; ks:requiresMemoryBytes 1000000000 ;
    ks:parameter [ ks:name "events" ; ks:parameterType ks:DatasetValue ],
        [ ks:name "bin_s" ; ks:parameterType xsd:decimal ; ks:optional true ; ks:defaultValue 100.0 ] .
"""


ALICE = "https://example.org/fed/person/alice"


def registration_body(units: int, tag: str = "r", start: int = 0, owner: str = ALICE,
                      describe_owner: bool = False) -> bytes:
    """Turtle for ``units`` runner+dataset+workflow triples (TRIPLES_PER_UNIT triples each). The runners are
    ``owner``'s, so the body is for ``owner`` to register (docs/authority.md); ``describe_owner`` adds the
    owner's own description (two triples) for an owner not registered yet."""
    parts = [_PREFIXES % {"tag": tag}]
    if describe_owner:
        parts.append(f'<{owner}> a foaf:Person ; foaf:name "bench registrant {tag}" .\n')
    for i in range(start, start + units):
        parts.append(_UNIT % {"i": i, "cores": 1 + i % 64, "size": 1000 + i, "checksum": f"{i:064x}",
                              "owner": owner})
    return "".join(parts).encode()

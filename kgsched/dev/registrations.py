"""Generated registration bodies (runners, datasets, workflows) for the registration benchmark and the
load tests: valid against the shapes, referring to the example federation's sites, people and storage."""

from __future__ import annotations

#: triples one unit (a runner, a dataset and a workflow with two parameters) writes
TRIPLES_PER_UNIT = 39

_PREFIXES = """@prefix ks: <https://w3id.org/kgsched#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix fed: <https://example.org/fed/> .
@prefix b: <https://example.org/bench/%(tag)s/> .
"""

_UNIT = """
b:runner-%(i)d a ks:JobRunner ; rdfs:label "bench runner %(i)d" ;
    ks:ownedBy fed:person\\/alice ; ks:atSite fed:site\\/geneva ;
    ks:cores %(cores)d ; ks:memoryBytes 8000000000 ; ks:storageBytes 1000000000 ;
    ks:supports ks:PythonCallable, ks:CommandLine ; ks:usesStorage fed:storage\\/geneva-disk ;
    ks:holds b:dataset-%(i)d ; ks:trusts fed:person\\/carol ; ks:serves ks:Anyone .
b:dataset-%(i)d a ks:Dataset ; rdfs:label "bench dataset %(i)d" ;
    ks:heldAt fed:site\\/geneva ; ks:storedAt fed:storage\\/geneva-disk ; ks:location "data/bench-%(i)d.csv" ;
    ks:sizeBytes %(size)d ; ks:providedBy fed:person\\/erin ;
    ks:checksum "sha256:%(checksum)s" .
b:workflow-%(i)d a ks:Workflow ; rdfs:label "bench workflow %(i)d" ; ks:version "1.0.%(i)d" ;
    ks:implementationKind ks:PythonCallable ; ks:implementation "kgsched_examples.astro:light_curve" ;
    ks:author fed:person\\/bob ; ks:verifiedBy fed:person\\/carol ; ks:estimatedDurationSeconds 30 ;
    ks:requiresCores 1 ; ks:requiresMemoryBytes 1000000000 ;
    ks:parameter [ ks:name "events" ; ks:parameterType ks:DatasetValue ],
        [ ks:name "bin_s" ; ks:parameterType xsd:decimal ; ks:optional true ; ks:defaultValue 100.0 ] .
"""


def registration_body(units: int, tag: str = "r", start: int = 0) -> bytes:
    """Turtle for ``units`` runner+dataset+workflow triples (TRIPLES_PER_UNIT triples each)."""
    parts = [_PREFIXES % {"tag": tag}]
    for i in range(start, start + units):
        parts.append(_UNIT % {"i": i, "cores": 1 + i % 64, "size": 1000 + i, "checksum": f"{i:064x}"})
    return "".join(parts).encode()

"""The OpenAPI 3.1 description of the REST part (``/openapi.json``). ``/sparql`` follows the SPARQL 1.1
Protocol and is described there only briefly. A test checks every route is documented here."""

from __future__ import annotations

from typing import Any

ERROR = {"$ref": "#/components/responses/Error"}
BEARER = [{"bearer": []}]


def _json_body(schema: dict[str, Any], media: str = "application/json") -> dict[str, Any]:
    return {"required": True, "content": {media: {"schema": schema}}}


def _ok(description: str, media: str = "application/json") -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": {"type": "object"}}}}


RDF_MEDIA = {m: {"schema": {"type": "string"}} for m in
             ("text/turtle", "application/ld+json", "application/n-triples", "application/rdf+xml")}


def document(version: str) -> dict[str, Any]:
    job_id = {"name": "job_id", "in": "path", "required": True,
              "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"}}
    claim_token = {"type": "string", "description": "the claim_token the claim answered with"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "kgsched", "version": version,
                 "description": "Provenance knowledge graph and scheduler for federated analysis. Errors are "
                                "JSON objects {error, detail}."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {"Error": {"description": "a JSON error", "content": {"application/json": {"schema": {
                "type": "object", "required": ["error", "detail"],
                "properties": {"error": {"type": "string"}, "detail": {"type": "string"}}}}}}},
        },
        "paths": {
            "/": {"get": {"summary": "HTML query page (YASGUI; ?query= runs a query and renders its table, "
                                     "also without JavaScript)",
                          "responses": {"200": {"description": "the page"}, "400": {"description": "the page, "
                                                                                    "with the query's error"}}}},
            "/resource": {"get": {"summary": "HTML page of ?iri=IRI: a product's lineage picture, checksum, "
                                             "replicas and acknowledgement; a runner's jobs and credits; else its "
                                             "triples",
                                  "responses": {"200": {"description": "the page"}, "400": ERROR}}},
            "/static/yasgui/{name}": {"get": {"summary": "the vendored YASGUI build (MIT) the page uses",
                                              "parameters": [{"name": "name", "in": "path", "required": True,
                                                              "schema": {"type": "string"}}],
                                              "responses": {"200": {"description": "the file"}, "404": ERROR}}},
            "/sparql": {
                "get": {"summary": "SPARQL 1.1 query (Protocol): ?query=, default-graph-uri, named-graph-uri; "
                                   "results negotiated (SPARQL JSON/XML/CSV/TSV; Turtle, N-Triples, JSON-LD, "
                                   "RDF/XML); updates 403; time and size limits; CORS (any origin); a browser "
                                   "asking for HTML is sent to /?query=",
                        "responses": {"200": {"description": "results"}, "400": ERROR, "403": ERROR, "406": ERROR,
                                      "503": ERROR}},
                "post": {"summary": "the same, as application/sparql-query or a form body (else 415)",
                         "responses": {"200": {"description": "results"}, "400": ERROR, "403": ERROR,
                                       "415": ERROR, "503": ERROR}},
            },
            "/health": {"get": {"summary": "liveness and store kind", "responses": {"200": _ok("ok")}}},
            "/openapi.json": {"get": {"summary": "this document", "responses": {"200": _ok("OpenAPI")}}},
            "/whoami": {"get": {"summary": "the agent the bearer token stands for", "security": BEARER,
                                "responses": {"200": _ok("identity"), "401": ERROR}}},
            "/tokens": {
                "post": {"summary": "issue a token (admin: any agent; others: themselves and the runners they "
                                    "registered; anonymous job-token runners get one-job tokens)",
                         "security": BEARER,
                         "requestBody": _json_body({"type": "object", "properties": {
                             "agent": {"type": "string", "format": "iri"}, "one_job": {"type": "boolean"},
                             "label": {"type": "string"}}}),
                         "responses": {"201": _ok("the token, shown once"), "400": ERROR, "401": ERROR,
                                       "403": ERROR, "415": ERROR}},
                "get": {"summary": "your tokens (admin: all, or ?agent=)", "security": BEARER,
                        "responses": {"200": _ok("token records, never secrets"), "401": ERROR, "403": ERROR}},
            },
            "/tokens/{token_id}": {"delete": {
                "summary": "revoke a token", "security": BEARER,
                "parameters": [{"name": "token_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": _ok("revoked"), "401": ERROR, "403": ERROR, "404": ERROR}}},
            "/registrations": {
                "post": {"summary": "register Turtle into your own graph (admin: ?as=IRI)", "security": BEARER,
                         "requestBody": _json_body({"type": "string"}, "text/turtle"),
                         "responses": {"201": _ok("what was registered"), "400": ERROR, "401": ERROR,
                                       "403": ERROR, "413": ERROR, "415": ERROR,
                                       "422": {"description": "SHACL violations: JSON with 'report' (text), "
                                                              "'report_turtle' and 'results'; or the report as "
                                                              "text/turtle or text/plain on request"}}},
                "get": {"summary": "your registered graph", "security": BEARER,
                        "responses": {"200": {"description": "RDF", "content": RDF_MEDIA}, "401": ERROR,
                                      "404": ERROR}},
                "delete": {"summary": "remove your registered graph", "security": BEARER,
                           "responses": {"200": _ok("triples removed"), "401": ERROR, "404": ERROR}},
            },
            "/plans": {"post": {
                "summary": "plan a request (JSON expression, {request, options}, or a Turtle ks:Request); recompute "
                           "steps become jobs",
                "security": BEARER,
                "requestBody": _json_body({"type": "object"}),
                "responses": {"201": _ok("the plan and its jobs"), "400": ERROR, "401": ERROR, "403": ERROR,
                              "415": ERROR}}},
            "/plans/{plan_id}": {"get": {
                "summary": "a recorded plan as RDF",
                "parameters": [{"name": "plan_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "RDF", "content": RDF_MEDIA}, "404": ERROR}}},
            "/plans/{plan_id}/jobs": {"get": {
                "summary": "the jobs a plan queued; a queued job no registered runner may run now has a reason "
                           "in stalled",
                "parameters": [{"name": "plan_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": _ok("jobs"), "404": ERROR}}},
            "/plans/{plan_id}/replan": {"post": {
                "summary": "decide the plan's request again against today's federation and cache (the plan's "
                           "requester or the administrator): what is done is reused, queued jobs get the new runners",
                "security": BEARER,
                "parameters": [{"name": "plan_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"201": _ok("the new plan and its jobs"), "401": ERROR, "403": ERROR, "404": ERROR}}},
            "/jobs": {"get": {
                "summary": "jobs (oldest 1,000), ?state=queued|claimed|done|failed, ?runner=IRI",
                "responses": {"200": _ok("jobs"), "400": ERROR}}},
            "/jobs/claim": {"post": {
                "summary": "claim a job this runner may run, under a lease", "security": BEARER,
                "responses": {"200": _ok("the job: claim_token, lease_until, workflow, arguments"),
                              "204": {"description": "nothing to claim now"}, "401": ERROR, "403": ERROR,
                              "503": ERROR}}},
            "/jobs/{job_id}": {"get": {"summary": "a job, its claims and executions", "parameters": [job_id],
                                       "responses": {"200": _ok("the job"), "404": ERROR}}},
            "/jobs/{job_id}/heartbeat": {"post": {
                "summary": "extend the lease (fenced by the claim token)", "security": BEARER,
                "parameters": [job_id],
                "requestBody": _json_body({"type": "object", "required": ["claim_token"], "properties": {
                    "claim_token": claim_token, "progress": {"type": "number", "minimum": 0, "maximum": 1}}}),
                "responses": {"200": _ok("new lease_until"), "400": ERROR, "401": ERROR, "403": ERROR,
                              "404": ERROR, "409": ERROR}}},
            "/jobs/{job_id}/refuse": {"post": {
                "summary": "hand a claimed job back unrun: the runner owner's policy does not allow it (the runner "
                           "is excluded for the job; no attempt is counted)", "security": BEARER,
                "parameters": [job_id],
                "requestBody": _json_body({"type": "object", "required": ["claim_token", "reason"], "properties": {
                    "claim_token": claim_token, "reason": {"type": "string", "minLength": 1}}}),
                "responses": {"200": _ok("the job's next state"), "400": ERROR, "401": ERROR, "403": ERROR,
                              "404": ERROR, "409": ERROR}}},
            "/jobs/{job_id}/result": {"post": {
                "summary": "report the result (idempotent; fenced by the claim token)", "security": BEARER,
                "parameters": [job_id],
                "requestBody": _json_body({"type": "object", "required": ["claim_token", "outcome",
                                                                          "duration_seconds"], "properties": {
                    "claim_token": claim_token,
                    "outcome": {"enum": ["success", "analysis_exception", "unhandled_exception"]},
                    "duration_seconds": {"type": "number", "minimum": 0},
                    "location": {"type": "string"}, "size_bytes": {"type": "integer", "minimum": 0},
                    "checksum": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"},
                    "storage": {"type": "string", "format": "iri"}, "started_at": {"type": "string",
                                                                                    "format": "date-time"},
                    "error_message": {"type": "string"},
                    "executed_notebook": {  # a ks:Notebook workflow's notebook as it ran
                        "type": "object", "required": ["location", "checksum", "size_bytes"], "properties": {
                            "location": {"type": "string"}, "size_bytes": {"type": "integer", "minimum": 0},
                            "checksum": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"}}},
                    "replicas": {  # further copies in the runner's site storages (content-addressed)
                        "type": "array", "maxItems": 16, "items": {
                            "type": "object", "required": ["storage", "location"], "properties": {
                                "storage": {"type": "string", "format": "iri"}, "location": {"type": "string"}}}}}}),
                "responses": {"200": _ok("what was recorded"), "400": ERROR, "401": ERROR, "403": ERROR,
                              "404": ERROR, "409": ERROR, "503": ERROR}}},
            "/jobs/{job_id}/replica-failures": {"post": {
                "summary": "the holder of a live claim reports replicas of the job's inputs it could not read; the "
                           "service marks them (a product with no readable replica is no longer cache)",
                "security": BEARER, "parameters": [job_id],
                "requestBody": _json_body({"type": "object", "required": ["claim_token", "failures"], "properties": {
                    "claim_token": claim_token,
                    "failures": {"type": "array", "minItems": 1, "maxItems": 64, "items": {
                        "type": "object", "required": ["replica", "status"], "properties": {
                            "replica": {"type": "string", "format": "iri"},
                            "status": {"enum": ["unreachable", "missing", "corrupt"]},
                            "reason": {"type": "string"}}}}}}),
                "responses": {"200": _ok("the replicas marked, by status"), "400": ERROR, "401": ERROR,
                              "403": ERROR, "404": ERROR, "409": ERROR}}},
            "/credits": {"get": {"summary": "credit totals per agent by reason (?agent=IRI)",
                                 "responses": {"200": _ok("credits")}}},
            "/acknowledgements": {"get": {
                "summary": "everyone to acknowledge for ?product=IRI across its provenance chain, with a citable "
                           "sentence (text/plain: the sentence only)",
                "responses": {"200": _ok("agents and sentence"), "400": ERROR, "404": ERROR}}},
            "/products/{product_id}/provenance": {"get": {
                "summary": "the product's PROV graph",
                "parameters": [{"name": "product_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "RDF", "content": RDF_MEDIA}, "404": ERROR, "406": ERROR}}},
        },
    }

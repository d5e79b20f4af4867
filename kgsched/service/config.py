"""Configuration: defaults, then a file (TOML or JSON), then ``KGSCHED_*`` environment variables,
then what the caller passes (the CLI's options, or a test's config) — later wins.

| key | default | meaning |
| --- | --- | --- |
| STORE | ./kgsched-data | directory of the embedded store (env KGSCHED_STORE) |
| ENDPOINT | None | a SPARQL 1.1 server instead (env KGSCHED_ENDPOINT): its base URL (Oxigraph layout) |
| QUERY_ENDPOINT, UPDATE_ENDPOINT | None | the server's query and update URLs (else /query, /update) |
| STORE_ENDPOINT | None | its Graph Store Protocol URL (else /store) |
| ENDPOINT_USER, ENDPOINT_PASSWORD | None | credentials for the server; never written to the graph |
| ENDPOINT_AUTH | basic | basic or digest |
| ADMIN_TOKEN / ADMIN_TOKEN_SHA256 | None | the administrator's bearer token, or just its SHA-256 |
| ADMIN_AGENT | urn:kgsched:agent:local-admin | the agent the admin token acts as |
| LEASE_SECONDS | 60 | lease a claim gets, renewed by each heartbeat |
| CLOCK_SKEW_SECONDS | 2 | clock difference allowed between replicas |
| PREFERENCE_SECONDS | 30 | the plan's runners' head start on a job; then any runner able at claim time may take it |
| RUNNER_SILENCE_SECONDS | 300 | a queued job whose able runners have all been silent this long is reported stalled |
| CLAIM_MODE | auto | auto: in-memory queue index if this app opened an embedded store, else Redis locks if |
| | | COORDINATION_URL is set, else the claim protocol; or index, coordinated, protocol (docs/claim-protocol.md) |
| COORDINATION_URL | None | redis://host:port/db: replicas lock jobs there (kgsched.jobs.coordination) |
| COORDINATION_LOCK_SECONDS | 10 | the longest a replica holds a job's lock |
| MAX_ATTEMPTS | 3 | claims that may end without a result before a job fails |
| QUERY_TIMEOUT_SECONDS | 10 | /sparql answers 503 after this |
| MAX_RESULT_BYTES | 50,000,000 | /sparql refuses results larger than this |
| QUERY_WORKERS | 4 | /sparql queries running at once (more get 503); worker processes on an on-disk store |
| QUERY_ISOLATION | auto | auto: worker processes on an on-disk store, else threads; or thread; or process |
| QUERY_MAX_CHARS | 200,000 | /sparql pre-check: longest query text |
| QUERY_MAX_TOKENS | 20,000 | … most tokens (strings, IRIs and names count one each) |
| QUERY_MAX_NESTING | 64 | … deepest nesting of { ( [ |
| QUERY_MAX_CHAIN | 100 | … most OPTIONAL/UNION/MINUS in one group |
| QUERY_MAX_PATH_STEPS | 64 | … most / and | in one property path |
| QUERY_MAX_EXPRESSION_OPERATORS | 256 | … most operators in one parenthesised expression (FILTER, BIND, SELECT) |
| SERVICE_ALLOWLIST | [] | endpoint IRIs a query's SERVICE may call (any other SERVICE is refused) |
| MAX_CONTENT_LENGTH | 5,000,000 | request bodies larger than this get 413 |
| REGISTRATION_CHUNK_TRIPLES | 2,000 | a larger registration is written in updates of about this many triples |
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from kgsched.errors import InvalidRequest
from kgsched.graph.store import DEFAULT_STORE_DIR

DEFAULTS: dict[str, Any] = {
    "STORE": DEFAULT_STORE_DIR,
    "ENDPOINT": None,
    "QUERY_ENDPOINT": None,
    "UPDATE_ENDPOINT": None,
    "STORE_ENDPOINT": None,
    "ENDPOINT_USER": None,
    "ENDPOINT_PASSWORD": None,
    "ENDPOINT_AUTH": "basic",
    "STORE_INSTANCE": None,  # a ready Store (tests, embedding); the app then never closes it
    "ADMIN_TOKEN": None,
    "ADMIN_TOKEN_SHA256": None,
    "ADMIN_AGENT": "urn:kgsched:agent:local-admin",
    "LOAD_ONTOLOGY": True,
    "LEASE_SECONDS": 60,
    "CLOCK_SKEW_SECONDS": 2,
    "MAX_ATTEMPTS": 3,
    "PREFERENCE_SECONDS": 30,
    "RUNNER_SILENCE_SECONDS": 300,
    "CLAIM_ROUNDS": 12,
    "CLAIM_MODE": "auto",
    "COORDINATION_URL": None,
    "COORDINATION_LOCK_SECONDS": 10,
    "QUERY_TIMEOUT_SECONDS": 10,
    "MAX_RESULT_BYTES": 50_000_000,
    "QUERY_WORKERS": 4,
    "QUERY_ISOLATION": "auto",
    "QUERY_MAX_CHARS": 200_000,
    "QUERY_MAX_TOKENS": 20_000,
    "QUERY_MAX_NESTING": 64,
    "QUERY_MAX_CHAIN": 100,
    "QUERY_MAX_PATH_STEPS": 64,
    "QUERY_MAX_EXPRESSION_OPERATORS": 256,
    "SERVICE_ALLOWLIST": [],
    "MAX_CONTENT_LENGTH": 5_000_000,
    "REGISTRATION_CHUNK_TRIPLES": 2_000,
    "JSON_SORT_KEYS": False,
}


def load_config(app: Flask, overrides: Mapping[str, Any] | None = None) -> None:
    """Fill ``app.config`` in the documented order."""
    app.config.from_mapping(DEFAULTS)
    config_file = (overrides or {}).get("CONFIG_FILE") or os.environ.get("KGSCHED_CONFIG")
    if config_file:
        load_file(app, Path(config_file))
    app.config.from_prefixed_env("KGSCHED")
    if overrides:
        app.config.from_mapping({k: v for k, v in overrides.items() if v is not None or k in DEFAULTS})


def load_file(app: Flask, path: Path) -> None:
    """A TOML or JSON file of upper-case keys (``LEASE_SECONDS = 30``)."""
    if not path.is_file():
        raise InvalidRequest(f"configuration file {path} does not exist")
    if path.suffix == ".toml":
        app.config.from_file(str(path), load=tomllib.load, text=False)
    elif path.suffix == ".json":
        app.config.from_file(str(path), load=json.load)
    else:
        raise InvalidRequest(f"configuration file {path} must be .toml or .json")

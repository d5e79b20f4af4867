"""When each runner was last in touch with the service: the other half of "is this job stalled?".

A registered runner that is able to run a job but has not polled for work for a long time (its machine
is off, the volunteer went home) will not take the job either. The service notes a runner's contact
when the runner calls it with its own token (claim, heartbeat, result, refusal) as
``<contact> ks:runner runner ; ks:lastContact t`` in the jobs graph — a service fact, like the jobs
themselves; registrants cannot state it. The runner's IRI is only an object there: its subject
belongs to its registrant (registration refuses a subject described elsewhere). To keep the claim
path cheap it writes at most once per ``every`` seconds per runner and process (a quarter of
``RUNNER_SILENCE_SECONDS``); a replica deletes only the value it wrote itself, so with several
replicas a runner may carry one value per replica, and readers take the latest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from rdflib import URIRef

from kgsched.clock import dt_literal, from_literal, utcnow
from kgsched.graph import queries
from kgsched.graph.store import Store
from kgsched.graph.updates import data_update
from kgsched.namespaces import JOBS_GRAPH, KS, KSID


@dataclass
class RunnerContacts:
    store: Store
    every_seconds: float = 75.0
    clock: Callable[[], dt.datetime] = utcnow
    graph: URIRef = JOBS_GRAPH
    _written: dict[URIRef, dt.datetime] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def note(self, runner: URIRef) -> None:
        """The runner called us: record it, unless this process did so less than ``every_seconds`` ago."""
        now = self.clock()
        with self._lock:
            previous = self._written.get(runner)
            if previous is not None and (now - previous).total_seconds() < self.every_seconds:
                return
            self._written[runner] = now
        node = contact_iri(runner)
        delete = [] if previous is None else [(node, KS.lastContact, dt_literal(previous))]
        self.store.update(data_update(
            insert={self.graph: [(node, KS.runner, runner), (node, KS.lastContact, dt_literal(now))]},
            delete={self.graph: delete}))


def contact_iri(runner: URIRef) -> URIRef:
    """The service's node for a runner's contacts, derived from the runner's IRI."""
    return URIRef(KSID[f"contact/{hashlib.sha256(str(runner).encode()).hexdigest()[:32]}"])


def last_contacts(store: Store, runners: Iterable[URIRef], graph: URIRef = JOBS_GRAPH) -> dict[URIRef, dt.datetime]:
    """The latest recorded contact of each runner (absent: never in touch since contacts were recorded)."""
    runners = sorted(set(runners))
    if not runners:
        return {}
    latest: dict[URIRef, dt.datetime] = {}
    for row in queries.select(store, "runner-contacts", [{"runner": r, "jobs": graph} for r in runners]):
        moment = from_literal(row["contact"])
        if row["runner"] not in latest or moment > latest[row["runner"]]:
            latest[row["runner"]] = moment
    return latest

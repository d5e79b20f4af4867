"""The job queue of a service that is its store's only writer: an in-memory index makes a claim one pick
and one write.

Only one process can open an on-disk pyoxigraph store for writing, so a service on the embedded store
is the sole writer of its jobs graph, and every read-modify-write of a job already runs under
``store.write_lock``. The multi-replica protocol (bid, read every claim, hold or withdraw —
docs/claim-protocol.md) buys nothing there: no other bid can ever land between our read and our
write. This queue keeps, in memory, what the protocol would read back from the graph — every queued or
claimed job with its claims (the same :class:`~kgsched.jobs.states.JobRecord`), its eligible and
excluded runners, what it waits for and when it was queued — rebuilt from the graph when the queue is
made (``queries/jobs-index-*.rq``) and kept in step by every write the queue makes (enqueue, claim,
heartbeat, report, refusal) and by ``reload`` after code outside the queue rewrote a job
(kgsched.jobs.replan). Then:

* **claim**: pick a candidate from the index, decide with the same pure rule (``decide_claim``: live
  claims, reports, exclusions, ``maxAttempts``), and write the claim and the job's new state in **one
  update**. Late binding is unchanged: once a job has waited ``PREFERENCE_SECONDS``, a runner the plan
  did not name finds it through ``late_candidates`` (the planner's own rules, read from the graph) —
  asked only when the index holds such a job at all;
* **report**: the same steps and the same ``decide_report`` as the protocol, on the index; the report
  mark is written together with the result (PROV, credits, state) in one update instead of first;
* **heartbeat, refusal**: the protocol's code, then the job is read back into the index.

The graph still records every job, claim and result exactly as the protocol writes them, so SPARQL,
the planner and ``GET /jobs`` see the queue; only the deciding reads come from memory. Anything that
writes the jobs graph behind the queue's back would make the index wrong: the service uses this
queue only for a store it opened itself (kgsched.service.state), never for one handed to it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from rdflib import Literal, URIRef
from rdflib.namespace import DCTERMS

from kgsched.clock import from_literal
from kgsched.errors import InvalidRequest
from kgsched.graph import queries
from kgsched.jobs.grant_context import claim_context
from kgsched.jobs.late_binding import late_candidates
from kgsched.jobs.queue import (
    NOT_HELD,
    Grant,
    JobQueue,
    NewJob,
    Triple,
    _unexpected,
    record_from_rows,
)
from kgsched.jobs.states import (
    COMPLETING,
    Action,
    ClaimRecord,
    JobRecord,
    NotYourJob,
    Verdict,
    decide_claim,
)
from kgsched.namespaces import KS
from kgsched.provenance.recording import ExecutionContext
from kgsched.registry.generation import registry_cache
from kgsched.registry.tokens import token_hash

#: How often jobs waiting for inputs are checked against the graph's products (products recorded by
#: this queue make their dependants ready at once; this catches products written any other way).
READY_RECHECK_SECONDS = 1.0

@dataclass(frozen=True)
class Entry:
    """A queued or claimed job, as the index keeps it."""

    record: JobRecord
    eligible: frozenset[URIRef]
    excluded: frozenset[URIRef]  # ks:excludedRunner
    depends_on: tuple[URIRef, ...]
    created: dt.datetime
    chosen: URIRef | None
    plan: URIRef | None
    ready: bool  # every input has a product


@dataclass
class LocalJobQueue(JobQueue):
    """A :class:`JobQueue` for the sole writer of its store (see the module's docstring)."""

    _jobs: dict[URIRef, Entry] = field(default_factory=dict, repr=False)
    _queued: dict[URIRef, dict[URIRef, None]] = field(default_factory=dict, repr=False)  # runner → jobs, oldest first
    _queued_all: dict[URIRef, None] = field(default_factory=dict, repr=False)
    _claimed: dict[URIRef, None] = field(default_factory=dict, repr=False)
    _waiting: dict[URIRef, None] = field(default_factory=dict, repr=False)  # queued, inputs not ready
    _produced: set[URIRef] = field(default_factory=set, repr=False)
    _marks: dict[URIRef, list[Triple]] = field(default_factory=dict, repr=False)
    _ready_checked: float = field(default=0.0, repr=False)
    mode = "index"

    def __post_init__(self) -> None:
        self.rebuild()

    # -- the index -----------------------------------------------------------------------------------
    def rebuild(self) -> None:
        """Read every queued or claimed job from the graph (two queries)."""
        with self.store.write_lock:
            for index in (self._jobs, self._queued, self._queued_all, self._claimed, self._waiting):
                index.clear()
            entries = self._read([{"jobs": self.graph}])
            for entry in sorted(entries.values(), key=lambda e: (e.created, str(e.record.iri))):
                self._put(entry)
            self._check_ready(force=True)

    def reload(self, jobs: Sequence[URIRef]) -> None:
        """Read these jobs back from the graph (after a write the index did not make itself)."""
        if not jobs:
            return
        with self.store.write_lock:
            entries = self._read([{"job": job, "jobs": self.graph} for job in jobs])
            for job in jobs:
                old = self._jobs.get(job)
                entry = entries.get(job)
                if entry is None:
                    self._remove(job)
                    continue
                if old is not None and old.ready:
                    entry = replace(entry, ready=True)
                self._put(entry)
            self._check_ready(force=True)

    def inputs_changed(self) -> None:
        """Replicas were marked unreadable: an input counted as produced may need recomputing now, so
        every queued job with inputs waits again until the graph says its inputs can be read."""
        with self.store.write_lock:
            self._produced.clear()
            for job in list(self._queued_all):
                entry = self._jobs[job]
                if entry.ready and entry.depends_on:
                    self._put(replace(entry, ready=False))
            self._check_ready(force=True)

    def _read(self, values: list[dict[str, URIRef]]) -> dict[URIRef, Entry]:
        rows: dict[URIRef, list[Mapping[str, Any]]] = defaultdict(list)
        for row in queries.select(self.store, "jobs-index-records", values):
            rows[row["job"]].append(row)
        links: dict[URIRef, dict[URIRef, list[Any]]] = defaultdict(lambda: defaultdict(list))
        for row in queries.select(self.store, "jobs-index-links", values):
            links[row["job"]][row["link"]].append(row["value"])
        entries = {}
        for job, job_rows in rows.items():
            facts = links[job]
            created = facts.get(DCTERMS.created)
            depends = tuple(dict.fromkeys(facts.get(KS.dependsOn, ())))
            entries[job] = Entry(record_from_rows(job, job_rows), frozenset(facts.get(KS.eligibleRunner, ())),
                                 frozenset(facts.get(KS.excludedRunner, ())), depends,
                                 min(from_literal(c) for c in created) if created else NOT_HELD,
                                 next(iter(facts.get(KS.chosenRunner, ())), None),
                                 next(iter(facts.get(KS.fromPlan, ())), None), not depends)
        return entries

    def _put(self, entry: Entry) -> None:
        """Store ``entry`` and file it under its state (done and failed jobs leave the index)."""
        job = entry.record.iri
        old = self._jobs.get(job)
        if old is not None:
            self._unfile(job, old)
        state = entry.record.stored_state
        if state not in ("queued", "claimed"):
            self._jobs.pop(job, None)
            return
        self._jobs[job] = entry
        if state == "claimed":
            self._claimed[job] = None
            return
        self._queued_all[job] = None
        for runner in entry.eligible:
            self._queued.setdefault(runner, {})[job] = None
        if not entry.ready:
            self._waiting[job] = None

    def _unfile(self, job: URIRef, entry: Entry) -> None:
        self._claimed.pop(job, None)
        self._queued_all.pop(job, None)
        self._waiting.pop(job, None)
        for runner in entry.eligible:
            self._queued.get(runner, {}).pop(job, None)

    def _remove(self, job: URIRef) -> None:
        old = self._jobs.pop(job, None)
        if old is not None:
            self._unfile(job, old)

    def _check_ready(self, force: bool = False) -> None:
        """Mark waiting jobs ready whose inputs all have products: those this queue recorded at once,
        the graph's at most every READY_RECHECK_SECONDS (or when forced)."""
        if not self._waiting:
            return
        now = time.monotonic()
        if force or now - self._ready_checked >= READY_RECHECK_SECONDS:
            self._ready_checked = now
            needed = sorted({d for job in self._waiting for d in self._jobs[job].depends_on} - self._produced)
            if needed:
                rows = queries.select(self.store, "expressions-produced", [{"expression": e} for e in needed])
                self._produced |= {row["expression"] for row in rows}
        for job in list(self._waiting):
            entry = self._jobs[job]
            if all(d in self._produced for d in entry.depends_on):
                self._waiting.pop(job)
                self._jobs[job] = replace(entry, ready=True)

    # -- reading -------------------------------------------------------------------------------------
    def record(self, job: URIRef) -> JobRecord:
        entry = self._jobs.get(job)
        return entry.record if entry is not None else super().record(job)

    def runners(self, job: URIRef) -> tuple[frozenset[URIRef], URIRef | None]:
        entry = self._jobs.get(job)
        return (entry.eligible, entry.chosen) if entry is not None else super().runners(job)

    def candidates(self, runner: URIRef, now: dt.datetime) -> list[URIRef]:
        """As the protocol's: queued jobs the runner is eligible for and not excluded from, inputs ready;
        then claimed ones whose holder's lease ran out; then late candidates (jobs the plan did not name
        the runner for, past the head start, that it may run now)."""
        pool = self.settings.candidate_pool
        self._check_ready()
        found: list[URIRef] = []
        for job in self._queued.get(runner, {}):
            entry = self._jobs[job]
            if entry.ready and runner not in entry.excluded:
                found.append(job)
                if len(found) >= pool:
                    return found
        cutoff = now - dt.timedelta(seconds=self.settings.clock_skew_seconds)
        for job in self._claimed:
            entry = self._jobs[job]
            if runner in entry.eligible and runner not in entry.excluded and max(entry.record.held_until) <= cutoff:
                found.append(job)
                if len(found) >= pool:
                    return found
        if self._late_possible(runner, now):
            late = late_candidates(self.store, runner, now, self.settings.preference_seconds, self.graph)
            found += [job for job in late if job in self._queued_all and job not in found
                      and runner not in self._jobs[job].excluded]
        return found

    def _late_possible(self, runner: URIRef, now: dt.datetime) -> bool:
        """Whether some queued job could be a late candidate for ``runner`` (then the graph is asked)."""
        cutoff = now - dt.timedelta(seconds=self.settings.preference_seconds)
        for job in self._queued_all:
            entry = self._jobs[job]
            if entry.created <= cutoff and entry.ready and entry.plan is not None and runner not in entry.eligible \
                    and runner not in entry.excluded:
                return True
        return False

    def context(self, job: URIRef, claim: URIRef, runner: URIRef, claimed_at: dt.datetime,
                expression: URIRef | None = None, generation: frozenset[str] | None = None) -> ExecutionContext:
        """As the protocol's, with the expression read in a batch with the next candidates' (prefetched
        rows are kept only for expressions that read no other expression's product, which may change)."""
        entry = self._jobs.get(job)
        if expression is None and entry is not None:
            expression = entry.record.expression
        if expression is None or claim in self._contexts:
            return super().context(job, claim, runner, claimed_at, expression, generation)
        generation = registry_cache(self.store).current() if generation is None else generation
        with self.store.write_lock:
            if self._contexts.get(claim) is None:
                nexts = (self._jobs[other].record.expression for other in self._queued.get(runner, {}))
                rows = self._expression_rows.get(self.store, expression, generation,
                                                 ahead=(e for e in nexts if e is not None))
                context = claim_context(self.store, self.graph, job, expression, claim, runner, claimed_at,
                                        generation, rows)
                if context is not None:
                    if len(self._contexts) >= self.CONTEXT_CACHE:
                        self._contexts.pop(next(iter(self._contexts)))
                    self._contexts[claim] = context
        return super().context(job, claim, runner, claimed_at, expression, generation)

    # -- writing -------------------------------------------------------------------------------------
    def enqueued(self, jobs: list[tuple[URIRef, NewJob]], created: dt.datetime) -> None:
        with self.store.write_lock:
            for job, new in jobs:
                attempts = new.max_attempts or self.settings.max_attempts
                record = JobRecord(job, new.expression, "queued", attempts, stored_states=frozenset({"queued"}),
                                   held_until=frozenset({NOT_HELD}))
                depends = tuple(dict.fromkeys(new.depends_on))
                self._put(Entry(record, frozenset(new.eligible), frozenset(), depends, created, new.chosen, new.plan,
                                not depends))
            self._check_ready(force=True)

    def claim(self, runner: URIRef, token: URIRef | None = None, one_job: bool = False) -> Grant | None:
        """One pick from the index and one write: the claim and the job's state together."""
        if one_job and token is None:
            raise InvalidRequest("a one-job claim needs its token")
        with self.store.write_lock:
            if one_job and self.token_claims(token):  # type: ignore[arg-type]
                raise NotYourJob("this token was good for one job and has made its claim")
            now = self.clock()
            candidates = self.candidates(runner, now)
            for _ in range(self.settings.claim_rounds):
                if not candidates:
                    return None
                job = self.rng.choice(candidates[: self.settings.candidate_pool])
                candidates.remove(job)
                entry = self._jobs[job]
                placed = self.new_bid(job, runner, token, now)
                placed_expression = entry.record.expression
                mine = ClaimRecord(placed.iri, runner, token_hash(placed.secret), now, placed.lease_until, token,
                                   lease_values=frozenset({placed.lease_until}))
                record = replace(entry.record, claims=(*entry.record.claims, mine))
                verdict = decide_claim(record, placed.iri, now, self.settings.clock_skew_seconds, 0,
                                       self.settings.grace)
                self.counters["bids"] += 1
                match verdict.action:
                    case Action.HOLD:
                        self.store.update(self._state_update(entry.record, "claimed", list(placed.triples),
                                                             held=placed.lease_until))
                        self.counters["held"] += 1
                        self._put(replace(entry, record=_moved(record, "claimed", placed.lease_until)))
                        break
                    case Action.FAIL:  # its claims ran out of lease as often as it allows (no bid written)
                        self.store.update(self._state_update(entry.record, "failed"))
                        self._remove(job)
                    case Action.WITHDRAW:  # e.g. a report still being recorded blocks it
                        self.counters["withdrawn"] += 1
                    case _:
                        raise _unexpected("a bid", verdict)
            else:
                return None
        return self.grant(placed, placed_expression)

    def heartbeat(self, job: URIRef, runner: URIRef, claim_token: str, *, token: URIRef | None = None,
                  one_job: bool = False, progress: float | None = None) -> dt.datetime:
        with self.store.write_lock:
            try:
                return super().heartbeat(job, runner, claim_token, token=token, one_job=one_job, progress=progress)
            finally:
                self.reload([job])

    def refuse(self, job: URIRef, runner: URIRef, claim_token: str, reason: str, *, token: URIRef | None = None,
               one_job: bool = False) -> dict[str, Any]:
        with self.store.write_lock:
            try:
                return super().refuse(job, runner, claim_token, reason, token=token, one_job=one_job)
            finally:
                self.reload([job])

    # -- the report: the protocol's steps, on the index --------------------------------------------
    def mark_report(self, claim: URIRef, digest: str, outcome: URIRef) -> list[Triple]:
        """Note the report in the index only; it is written with the result (``unwritten_mark``)."""
        mark: list[Triple] = [(claim, KS.reportedOutcome, outcome), (claim, KS.reportDigest, Literal(digest))]
        entry = self._entry_of_claim(claim)
        if entry is None:
            return super().mark_report(claim, digest, outcome)
        self._marks[claim] = mark
        self._replace_claim(entry, claim, lambda c: replace(c, outcomes=c.outcomes | {outcome},
                                                            digests=c.digests | {digest}))
        return mark

    def unmark_report(self, mark: list[Triple]) -> None:
        claim = mark[0][0]
        if self._marks.pop(claim, None) is None:  # type: ignore[arg-type]
            super().unmark_report(mark)
            return
        entry = self._entry_of_claim(claim)  # type: ignore[arg-type]
        if entry is not None:
            outcome, digest = mark[0][2], str(mark[1][2])
            self._replace_claim(entry, claim, lambda c: replace(c, outcomes=c.outcomes - {outcome},  # type: ignore[arg-type]
                                                                digests=c.digests - {digest}))

    def unwritten_mark(self, claim: URIRef) -> list[Triple]:
        return list(self._marks.get(claim, ()))

    def record_result(self, record: JobRecord, claim: ClaimRecord, verdict: Verdict, graph: Any,
                      context: Any, report: Any) -> None:
        """As the protocol's (the report mark is written with the result), then the index follows."""
        with self.store.write_lock:
            try:
                super().record_result(record, claim, verdict, graph, context, report)
            finally:
                self._marks.pop(claim.iri, None)
            if report.outcome_iri in COMPLETING:
                self._produced.add(record.expression)
                self._remove(record.iri)
                self._check_ready(force=False)
            else:
                self.reload([record.iri])

    def _entry_of_claim(self, claim: URIRef) -> Entry | None:
        entry = self._jobs.get(URIRef(str(claim).split("/claim/", 1)[0]))
        return entry if entry is not None and entry.record.claim(claim) is not None else None

    def _replace_claim(self, entry: Entry, claim: URIRef, change: Any) -> None:
        claims = tuple(change(c) if c.iri == claim else c for c in entry.record.claims)
        self._jobs[entry.record.iri] = replace(entry, record=replace(entry.record, claims=claims))


def _moved(record: JobRecord, state: Any, held: dt.datetime) -> JobRecord:
    """The record after the holder wrote its state and lease copy (kgsched.jobs.queue._state_update)."""
    return dataclasses.replace(record, stored_state=state, stored_states=frozenset({state}),
                               held_until=frozenset({held}))

"""The job queue in the graph: enqueue, claim, heartbeat, report — the I/O half of kgsched.jobs.states.

Why this is correct is written down in docs/claim-protocol.md; in short:

* inside one process every read-modify-write of a job runs under ``store.write_lock``;
* across processes sharing one SPARQL server, nothing relies on an update's WHERE being isolated
  (measured: it is not). A runner *bids* by inserting its own claim (a fresh IRI, a secret token
  kept only as a hash), then reads every claim on the job; it holds the job only if no other claim
  is live and no result is reported, and otherwise deletes its bid and backs off. Results are
  arbitrated the same way: the report is written on the claim first, then checked;
* heartbeats and results are fenced by the claim token: they act only on the claim whose token
  hash matches, and only while that claim's lease runs.

Every write is ``INSERT DATA`` / ``DELETE DATA`` of exact triples (kgsched.graph.updates), and the queries
are files in ``queries/`` with values bound as VALUES blocks.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rdflib import Literal, URIRef
from rdflib.namespace import DCTERMS, RDF, XSD
from rdflib.term import Node

from kgsched.clock import dt_literal, from_literal, iso, utcnow
from kgsched.errors import InvalidRequest, NotFound
from kgsched.graph import queries
from kgsched.graph.store import Store
from kgsched.graph.updates import data_update, joined
from kgsched.jobs.grant_context import ExpressionRows, cached_product_sources, claim_context
from kgsched.jobs.late_binding import late_candidates
from kgsched.jobs.product_sources import ProductSources, place
from kgsched.jobs.service_call import service_call
from kgsched.jobs.states import (
    COMPLETING,
    IRI_OUTCOME,
    IRI_STATE,
    STATE_IRI,
    Action,
    ClaimRecord,
    Contention,
    JobRecord,
    LeaseLost,
    NotYourJob,
    State,
    Verdict,
    decide_claim,
    decide_heartbeat,
    decide_refusal,
    decide_report,
)
from kgsched.literals import decimal_literal, optional_str
from kgsched.namespaces import JOBS_GRAPH, KS, KSID, PROVENANCE_GRAPH
from kgsched.provenance import replicas, statistics
from kgsched.provenance.recording import ExecutionContext, ResultReport, execution_graph, read_context
from kgsched.registry.generation import registry_cache
from kgsched.registry.tokens import token_hash

Triple = tuple[Node, Node, Node]
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")
_STATE_ORDER: dict[State, int] = {"queued": 0, "claimed": 1, "failed": 2, "done": 3}
#: ks:heldUntil of a job nobody holds: long past, whatever the clock skew allowance.
NOT_HELD = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
#: A refusal's reason is kept up to this length (it is the runner's words, shown to people).
MAX_REFUSAL_CHARS = 2_000


def job_iri(job_id: str) -> URIRef:
    """The job IRI for the id in a URL (the hex after ``job/``); anything else is not found."""
    if not _JOB_ID.match(job_id):
        raise NotFound(f"no job {job_id!r}")
    return URIRef(KSID[f"job/{job_id}"])


def job_id(job: URIRef) -> str:
    return str(job).rsplit("/", 1)[-1]


@dataclass(frozen=True)
class QueueSettings:
    """Tunables, from the service configuration (see kgsched.service.config)."""

    lease_seconds: float = 60.0
    clock_skew_seconds: float = 2.0
    heartbeat_margin_seconds: float | None = None  # default: a quarter of the lease, at most 15 s
    max_attempts: int = 3
    claim_rounds: int = 12  # bids per claim request before answering "contention, retry"
    candidate_pool: int = 16  # a bid goes to a random one of the oldest this many candidates
    backoff_seconds: float = 0.01  # random back-off after a lost bid: up to this × 2^round, capped
    max_backoff_seconds: float = 0.5
    report_rounds: int = 40
    report_grace_seconds: float | None = None  # default: ten leases, at least 5 minutes
    preference_seconds: float = 30.0  # the plan's runners' head start before late binding (jobs/late_binding.py)

    @property
    def grace(self) -> float:
        """How long after its claim's lease an unrecorded report still blocks the job."""
        if self.report_grace_seconds is not None:
            return self.report_grace_seconds
        return max(10 * self.lease_seconds, 300.0)

    @property
    def margin(self) -> float:
        if self.heartbeat_margin_seconds is not None:
            return self.heartbeat_margin_seconds
        return min(self.lease_seconds / 4, 15.0)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> QueueSettings:
        def number(key: str, default: float, minimum: float) -> float:
            value = config.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
                raise InvalidRequest(f"configuration {key} must be a number ≥ {minimum}; got {value!r}")
            return float(value)

        margin = config.get("HEARTBEAT_MARGIN_SECONDS")
        return cls(
            lease_seconds=number("LEASE_SECONDS", cls.lease_seconds, 0.1),
            clock_skew_seconds=number("CLOCK_SKEW_SECONDS", cls.clock_skew_seconds, 0),
            heartbeat_margin_seconds=None if margin is None else number("HEARTBEAT_MARGIN_SECONDS", 0, 0),
            max_attempts=int(number("MAX_ATTEMPTS", cls.max_attempts, 1)),
            claim_rounds=int(number("CLAIM_ROUNDS", cls.claim_rounds, 1)),
            preference_seconds=number("PREFERENCE_SECONDS", cls.preference_seconds, 0),
        )


@dataclass(frozen=True)
class NewJob:
    """A job to queue: what to compute, who may, and which expressions must have products first."""

    expression: URIRef
    eligible: tuple[URIRef, ...]
    chosen: URIRef | None = None
    plan: URIRef | None = None
    depends_on: tuple[URIRef, ...] = ()
    max_attempts: int | None = None


@dataclass(frozen=True)
class PlacedClaim:
    """A bid we wrote: its triples (to withdraw exactly them) and its secret (shown to the runner once)."""

    job: URIRef
    iri: URIRef
    secret: str
    runner: URIRef
    token: URIRef | None
    claimed_at: dt.datetime
    lease_until: dt.datetime
    triples: tuple[Triple, ...]


@dataclass
class Grant:
    """A won claim and what the runner needs to execute the job."""

    claim: PlacedClaim
    context: ExecutionContext
    lease_seconds: float
    product_sources: tuple[str, ...] = ()
    service: dict[str, Any] | None = None  # a ks:WebService job: endpoint, process, inputs (jobs/service_call.py)

    def to_json(self) -> dict[str, Any]:
        ctx = self.context
        return {
            "job": job_id(self.claim.job), "job_iri": str(self.claim.job), "claim": str(self.claim.iri),
            "claim_token": self.claim.secret, "lease_until": iso(self.claim.lease_until),
            "lease_seconds": self.lease_seconds, "runner": str(self.claim.runner),
            "expression": str(ctx.expression), "address": ctx.address,
            "workflow": {"iri": str(ctx.workflow), "version": ctx.version,
                         "implementation_kind": optional_str(ctx.implementation_kind),
                         "implementation": ctx.implementation, "verifiers": [str(v) for v in ctx.verifiers]},
            "arguments": ctx.arguments_json(),
            "storage": [str(s) for s in ctx.runner_storage],
            "storages": ctx.storages_json(),  # how to write to them: kind, directory or S3 bucket (no credentials)
            "product_sources": list(self.product_sources),
            **({"service": self.service} if self.service is not None else {}),
        }


@dataclass
class Receipt:
    """What recording a result did."""

    job: URIRef
    state: State
    execution: URIRef
    product: URIRef | None
    reason: str
    already: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"job": job_id(self.job), "state": self.state, "execution": str(self.execution),
                "product": None if self.product is None else str(self.product), "detail": self.reason,
                "already_recorded": self.already}


@dataclass
class JobQueue:
    """The queue over one store. ``clock``, ``rng`` and ``sleep`` are injectable so the tests can
    drive expiry and interleavings without waiting."""

    store: Store
    settings: QueueSettings = field(default_factory=QueueSettings)
    clock: Callable[[], dt.datetime] = utcnow
    rng: random.Random = field(default_factory=random.Random)
    sleep: Callable[[float], None] = time.sleep
    graph: URIRef = JOBS_GRAPH
    _contexts: dict[URIRef, ExecutionContext] = field(default_factory=dict, repr=False)
    _expression_rows: ExpressionRows = field(default_factory=ExpressionRows, repr=False)
    #: What this process's bids did: placed, held, withdrawn (lost to another bid), contention answers.
    counters: Counter[str] = field(default_factory=Counter, repr=False)
    #: Where the registry generation comes from (the service: read once per request); None: read it.
    generation_source: Callable[[], frozenset[str]] | None = field(default=None, repr=False)

    #: How claims are decided: "protocol" (bid, check, hold: docs/claim-protocol.md) or "index" (local_queue).
    mode = "protocol"

    #: Contexts kept per claim, so a report to the replica that granted the claim does not read them again.
    CONTEXT_CACHE = 4096

    def context(self, job: URIRef, claim: URIRef, runner: URIRef, claimed_at: dt.datetime,
                expression: URIRef | None = None, generation: frozenset[str] | None = None) -> ExecutionContext:
        """What the job's execution needs (expression, workflow, inputs, who to credit); read once per
        claim in this process. Inputs do not change while a job is held: they were ready when it was
        claimed, and products are only ever added. Knowing the job's expression, one query and cached
        registry facts do (kgsched.jobs.grant_context)."""
        cached = self._contexts.get(claim)
        if cached is None:
            if expression is not None and generation is None:
                generation = self.registry_generation()
            cached = None if expression is None else claim_context(
                self.store, self.graph, job, expression, claim, runner, claimed_at, generation,
                self._expression_rows.get(self.store, expression, generation))
            if cached is None:
                cached = read_context(self.store, job, claim, runner, claimed_at, self.graph)
            if len(self._contexts) >= self.CONTEXT_CACHE:
                self._contexts.pop(next(iter(self._contexts)))
            self._contexts[claim] = cached
        return cached

    # -- queueing ----------------------------------------------------------------------------------
    def enqueue(self, jobs: Sequence[NewJob]) -> list[URIRef]:
        """Queue jobs in one update (so a plan's jobs appear together or not at all)."""
        now = dt_literal(self.clock())
        triples: list[Triple] = []
        iris: list[URIRef] = []
        for new in jobs:
            if not new.eligible:
                raise InvalidRequest(f"a job for {new.expression} needs at least one eligible runner")
            job = URIRef(KSID[f"job/{uuid.uuid4().hex}"])
            iris.append(job)
            attempts = new.max_attempts or self.settings.max_attempts
            triples += [(job, RDF.type, KS.Job), (job, KS.forExpression, new.expression),
                        (job, KS.state, KS.Queued), (job, DCTERMS.created, now),
                        (job, KS.heldUntil, dt_literal(NOT_HELD)),
                        (job, KS.maxAttempts, Literal(attempts, datatype=XSD.integer))]
            triples += [(job, KS.eligibleRunner, runner) for runner in dict.fromkeys(new.eligible)]
            triples += [(job, KS.dependsOn, upstream) for upstream in dict.fromkeys(new.depends_on)]
            if new.chosen is not None:
                triples.append((job, KS.chosenRunner, new.chosen))
            if new.plan is not None:
                triples.append((job, KS.fromPlan, new.plan))
        if triples:
            self.store.update(data_update(insert={self.graph: triples}))
            self.enqueued(list(zip(iris, jobs, strict=True)), from_literal(now))
        return iris

    def enqueued(self, jobs: list[tuple[URIRef, NewJob]], created: dt.datetime) -> None:
        """Called after ``jobs`` were written (kgsched.jobs.local_queue keeps its index in step here)."""

    def reload(self, jobs: Sequence[URIRef]) -> None:
        """Called after code outside the queue rewrote these jobs' facts (kgsched.jobs.replan)."""

    def enqueue_plan(self, plan: Any) -> list[dict[str, Any]]:
        """A job per recompute step of a planner Plan, unless the expression already has one queued or
        claimed (then that job is reused). Read and write under the lock, so one process never queues
        an expression twice; two replicas might, which costs a recomputation, not correctness."""
        steps = [s for s in plan.steps if s.decision == "recompute"]
        if not steps:
            return []
        with self.store.write_lock:
            rows = queries.select(self.store, "active-jobs",
                                  [{"expression": s.expression, "jobs": self.graph} for s in steps])
            active = {row["expression"]: row["job"] for row in rows}
            fresh = [s for s in steps if s.expression not in active]
            new_iris = self.enqueue([
                NewJob(s.expression, tuple(s.candidates) or ((s.runner,) if s.runner else ()), s.runner, plan.iri,
                       tuple(s.depends_on)) for s in fresh])
        created = dict(zip([s.expression for s in fresh], new_iris, strict=True))
        return [{"expression": str(s.expression), "job": job_id(created.get(s.expression) or active[s.expression]),
                 "job_iri": str(created.get(s.expression) or active[s.expression]),
                 "new": s.expression in created, "runner": None if s.runner is None else str(s.runner)}
                for s in steps]

    # -- reading -----------------------------------------------------------------------------------
    def record(self, job: URIRef) -> JobRecord:
        """The job and all its claims, from one query (one snapshot)."""
        rows = queries.select(self.store, "job-record", [{"job": job, "jobs": self.graph}])
        if not rows:
            raise NotFound(f"no job {job}")
        return record_from_rows(job, rows)

    def runners(self, job: URIRef) -> tuple[frozenset[URIRef], URIRef | None]:
        """The job's eligible runners and the planner's choice among them."""
        rows = queries.select(self.store, "job-eligible", [{"job": job, "jobs": self.graph}])
        chosen = next((r["chosen"] for r in rows if r.get("chosen") is not None), None)
        return frozenset(r["runner"] for r in rows), chosen

    def eligible(self, job: URIRef) -> frozenset[URIRef]:
        return self.runners(job)[0]

    def candidates(self, runner: URIRef, now: dt.datetime) -> list[URIRef]:
        """Jobs worth a bid: queued ones first (a cheap indexed search); claimed ones whose lease ran out
        only when those are too few (that search walks every held job)."""
        jobs = [row["job"] for row in queries.select(self.store, "job-candidates",
                                                       [{"runner": runner, "jobs": self.graph}])]
        if len(jobs) < self.settings.candidate_pool:
            cutoff = now - dt.timedelta(seconds=self.settings.clock_skew_seconds)
            jobs += [row["job"] for row in queries.select(self.store, "job-candidates-expired", [
                {"runner": runner, "now": dt_literal(cutoff), "jobs": self.graph}])]
        if len(jobs) < self.settings.candidate_pool:  # late binding: jobs the plan did not name us for
            jobs += late_candidates(self.store, runner, now, self.settings.preference_seconds, self.graph)
        return jobs

    # -- the claim protocol, step by step (the tests interleave these) ------------------------------
    def place_claim(self, job: URIRef, runner: URIRef, token: URIRef | None = None,
                    now: dt.datetime | None = None) -> PlacedClaim:
        """Step 1: write our bid — a claim nobody else can have written (fresh IRI, fresh secret)."""
        placed = self.new_bid(job, runner, token, now or self.clock())
        self.store.update(data_update(insert={self.graph: list(placed.triples)}))
        return placed

    def new_bid(self, job: URIRef, runner: URIRef, token: URIRef | None, now: dt.datetime) -> PlacedClaim:
        """A bid's IRI, secret, lease and triples, not yet written."""
        secret = secrets.token_urlsafe(32)
        claim = URIRef(f"{job}/claim/{uuid.uuid4().hex}")
        until = now + dt.timedelta(seconds=self.settings.lease_seconds)
        triples: list[Triple] = [
            (claim, RDF.type, KS.Claim), (claim, KS.claimOf, job), (claim, KS.claimedBy, runner),
            (claim, KS.claimTokenHash, Literal(token_hash(secret))), (claim, KS.claimedAt, dt_literal(now)),
            (claim, KS.leaseUntil, dt_literal(until))]
        if token is not None:
            triples.append((claim, KS.claimedWith, token))
        return PlacedClaim(job, claim, secret, runner, token, now, until, tuple(triples))

    def check_claim(self, placed: PlacedClaim, one_job: bool = False) -> tuple[Verdict, JobRecord]:
        """Step 2: read every claim on the job (after our write finished) and decide."""
        record = self.record(placed.job)
        others = 0
        if one_job and placed.token is not None:
            others = sum(1 for claim in self.token_claims(placed.token) if claim != placed.iri)
        verdict = decide_claim(record, placed.iri, self.clock(), self.settings.clock_skew_seconds, others,
                               self.settings.grace)
        return verdict, record

    def withdraw(self, placed: PlacedClaim) -> None:
        """Step 3a: delete exactly our bid."""
        self.store.update(data_update(delete={self.graph: placed.triples}))

    def hold(self, placed: PlacedClaim, record: JobRecord) -> None:
        """Step 3b: we hold the job; write the state view (only a holder writes a job's state) and copy
        our lease onto the job, where the candidate search reads it."""
        self.store.update(self._state_update(record, "claimed", held=placed.lease_until))

    def token_claims(self, token: URIRef) -> list[URIRef]:
        return [r["claim"] for r in queries.select(self.store, "token-claims", [{"token": token, "jobs": self.graph}])]

    def claim(self, runner: URIRef, token: URIRef | None = None, one_job: bool = False) -> Grant | None:
        """Bid for a job the runner may run; None when there is none. Raises Contention when every bid
        collided (the caller answers 503 and the runner retries)."""
        if one_job:
            if token is None:
                raise InvalidRequest("a one-job claim needs its token")
            used = self.token_claims(token)
            if used:
                raise NotYourJob("this token was good for one job and has made its claim")
        contended = False
        for attempt in range(self.settings.claim_rounds):
            with self.store.write_lock:
                candidates = self.candidates(runner, self.clock())
                if not candidates:
                    return None
                job = self.rng.choice(candidates[: self.settings.candidate_pool])
                placed = self.place_claim(job, runner, token)
                verdict, record = self.check_claim(placed, one_job)
                self.counters["bids"] += 1
                match verdict.action:
                    case Action.HOLD:
                        self.hold(placed, record)
                        self.counters["held"] += 1
                        break
                    case Action.FAIL:
                        # We hold it only to write that it failed; then give it up.
                        self.store.update(self._state_update(record, "failed"))
                        self.withdraw(placed)
                        continue
                    case Action.TOKEN_SPENT:
                        self.withdraw(placed)
                        self.counters["withdrawn"] += 1
                        raise NotYourJob("this token was good for one job and has made its claim")
                    case Action.WITHDRAW:
                        self.withdraw(placed)
                        self.counters["withdrawn"] += 1
                        contended = True
                    case _:
                        self.withdraw(placed)
                        raise _unexpected("a bid", verdict)
            self.sleep(self._backoff(attempt))
        else:
            if contended:
                self.counters["contention"] += 1
                raise Contention("every bid collided with another runner's; retry in a moment")
            return None
        return self.grant(placed, record.expression)

    def grant(self, placed: PlacedClaim, expression: URIRef | None = None) -> Grant:
        """What the runner of a won claim needs: the execution context, where products may be fetched
        from, and for a web-service job the call to make (registry facts: one generation read)."""
        generation = self.registry_generation()
        context = self.context(placed.job, placed.iri, placed.runner, placed.claimed_at, expression, generation)
        return Grant(placed, context, self.settings.lease_seconds, tuple(self.product_sources(generation).all()),
                     service_call(self.store, context.implementation_kind, context.workflow, placed.runner,
                                  context.implementation))

    def inputs_changed(self) -> None:
        """Replicas were marked unreadable. The protocol reads inputs' readiness from the graph at every
        claim (job-candidates.rq), so there is nothing to forget; an index of ready jobs overrides this."""

    def product_sources(self, generation: frozenset[str] | None = None) -> ProductSources:
        """The registered product endpoints and storages (kgsched.jobs.product_sources), cached per process
        under the registry generation."""
        return cached_product_sources(self.store, self.registry_generation() if generation is None else generation)

    def registry_generation(self) -> frozenset[str]:
        """The registry generation (kgsched.registry.generation); the service gives the one it read for
        the request (``generation_source``), so a request reads it once."""
        if self.generation_source is not None:
            return self.generation_source()
        return registry_cache(self.store).current()

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.settings.max_backoff_seconds, self.settings.backoff_seconds * 2 ** attempt)
        return self.rng.uniform(0, ceiling)

    # -- fenced operations of the holder ----------------------------------------------------------
    def own_claim(self, record: JobRecord, runner: URIRef, claim_token: str, token: URIRef | None = None,
                  one_job: bool = False) -> ClaimRecord:
        """The caller's claim on the job, found by the hash of its claim token; 403 if the job is not the
        caller's, 409 if the token names no current claim of the caller's."""
        if not isinstance(claim_token, str) or not claim_token:
            raise InvalidRequest("claim_token is required")
        claim = record.claim_by_token(token_hash(claim_token))
        if claim is None:
            if any(c.runner == runner for c in record.claims):
                raise LeaseLost("no claim of yours on this job has that claim token (it was withdrawn or replaced)")
            raise NotYourJob("you hold no claim on this job")
        if claim.runner != runner:
            raise NotYourJob("this job was claimed by another runner")
        if one_job and claim.token != token:
            raise NotYourJob("this one-job token was issued for another job")
        return claim

    def heartbeat(self, job: URIRef, runner: URIRef, claim_token: str, *, token: URIRef | None = None,
                  one_job: bool = False, progress: float | None = None) -> dt.datetime:
        """Extend the holder's lease (and note its progress); LeaseLost once the lease ran out."""
        if progress is not None and (isinstance(progress, bool) or not isinstance(progress, int | float)
                                     or not 0 <= progress <= 1):
            raise InvalidRequest("progress must be a number between 0 and 1")
        with self.store.write_lock:
            record = self.record(job)
            claim = self.own_claim(record, runner, claim_token, token, one_job)
            now = self.clock()
            verdict = decide_heartbeat(record, claim.iri, now, self.settings.margin)
            if verdict.action is not Action.ACCEPT:  # REFUSE
                raise LeaseLost(verdict.reason)
            until = now + dt.timedelta(seconds=self.settings.lease_seconds)
            delete = [(claim.iri, KS.leaseUntil, dt_literal(v)) for v in claim.lease_values]
            delete += [(job, KS.heldUntil, dt_literal(v)) for v in record.held_until]
            insert = [(claim.iri, KS.leaseUntil, dt_literal(until)), (job, KS.heldUntil, dt_literal(until))]
            if progress is not None:
                if claim.progress is not None:
                    delete.append((claim.iri, KS.progress, decimal_literal(claim.progress, 4)))
                insert.append((claim.iri, KS.progress, decimal_literal(float(progress), 4)))
            self.store.update(data_update(insert={self.graph: insert}, delete={self.graph: delete}))
        return until

    def report(self, job: URIRef, runner: URIRef, claim_token: str, report: ResultReport, *,
               token: URIRef | None = None, one_job: bool = False) -> Receipt:
        """Record the holder's result: PROV, credits and the job's next state, in one update — once.

        The report is first written on the claim, then checked against every claim on the job (the same
        bid-then-check as claiming), and withdrawn unless accepted. A repeat of a recorded report answers
        what was recorded; a different report, or one after the lease ran out, is refused."""
        digest, outcome = report.digest(), report.outcome_iri
        context: ExecutionContext | None = None
        for attempt in range(self.settings.report_rounds):
            with self.store.write_lock:
                record = self.record(job)
                claim = self.own_claim(record, runner, claim_token, token, one_job)
                now = self.clock()
                if context is None:
                    context = self.context(job, claim.iri, runner, claim.claimed_at)
                    # the product's location must be under the runner's own sources (400 otherwise)
                    report = place(report, runner, context.runner_storage, self.product_sources(),
                                   context.storages)
                believed = report.bounded_by(claim.claimed_at, now)  # never longer than the service saw
                graph, execution, product = execution_graph(context, believed)  # a bad report fails here
                verdict = decide_report(record, claim.iri, digest, outcome, now, self.settings.clock_skew_seconds)
                match verdict.action:
                    case Action.ALREADY:
                        return Receipt(job, record.stored_state, execution, product, verdict.reason, already=True)
                    case Action.REFUSE:
                        self._drop_unrecorded_report(record, claim)
                        raise LeaseLost(verdict.reason)
                    case Action.RETRY:
                        pass
                    case Action.ACCEPT:
                        mark = self.mark_report(claim.iri, digest, outcome)
                        verdict, record = self.check_report(job, claim.iri, digest, outcome)
                        match verdict.action:
                            case Action.ACCEPT:
                                self.record_result(record, claim, verdict, graph, context, believed)
                                return Receipt(job, verdict.next_state or record.stored_state, execution, product,
                                               verdict.reason)
                            case Action.ALREADY:
                                return Receipt(job, record.stored_state, execution, product, verdict.reason,
                                               already=True)
                            case Action.REFUSE:
                                self.unmark_report(mark)
                                raise LeaseLost(verdict.reason)
                            case Action.RETRY:
                                self.unmark_report(mark)
                            case _:
                                self.unmark_report(mark)
                                raise _unexpected("a report", verdict)
                    case _:
                        raise _unexpected("a report", verdict)
            self.sleep(self._backoff(attempt))
        raise Contention("the report kept colliding with other claims on the job; send it again in a moment")

    def refuse(self, job: URIRef, runner: URIRef, claim_token: str, reason: str, *, token: URIRef | None = None,
               one_job: bool = False) -> dict[str, Any]:
        """The holder hands the job back unrun, because its owner's policy does not allow it: the claim is
        released with ``ks:refusalReason``, the runner is excluded for the job (``ks:excludedRunner``), and
        the job is queued again without spending an attempt — or fails if no other eligible runner is left.

        Fenced like a report (the claim token, a live lease, nothing reported yet), and written in one
        update by the holder only, so it races with nothing: while the claim is live nobody else holds the job."""
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidRequest("reason must be a non-empty string saying why the job is refused")
        reason = reason.strip()[:MAX_REFUSAL_CHARS]
        with self.store.write_lock:
            record = _with_eligible(self.record(job), self.eligible(job))
            claim = self.own_claim(record, runner, claim_token, token, one_job)
            verdict = decide_refusal(record, claim.iri, self.clock())
            if verdict.action != Action.ACCEPT:
                raise LeaseLost(verdict.reason)
            assert verdict.next_state is not None
            extra: list[Triple] = [(claim.iri, KS.released, Literal(True)),
                                   (claim.iri, KS.refusalReason, Literal(reason)),
                                   (record.iri, KS.excludedRunner, claim.runner)]
            self.store.update(self._state_update(record, verdict.next_state, extra, held=NOT_HELD))
        return {"job": job_id(job), "state": verdict.next_state, "detail": verdict.reason, "reason": reason}

    # -- the report protocol, step by step (the tests interleave these with bids) -------------------
    def mark_report(self, claim: URIRef, digest: str, outcome: URIRef) -> list[Triple]:
        """Step 1: write the report on our claim, so a bid that reads after this sees it."""
        mark: list[Triple] = [(claim, KS.reportedOutcome, outcome), (claim, KS.reportDigest, Literal(digest))]
        self.store.update(data_update(insert={self.graph: mark}))
        return mark

    def check_report(self, job: URIRef, claim: URIRef, digest: str, outcome: URIRef) -> tuple[Verdict, JobRecord]:
        """Step 2: read every claim on the job and decide (accept only with no other live claim)."""
        record = self.record(job)
        if outcome == KS.UnhandledException:
            record = _with_eligible(record, self.eligible(job))
        return decide_report(record, claim, digest, outcome, self.clock(), self.settings.clock_skew_seconds), record

    def unwritten_mark(self, claim: URIRef) -> list[Triple]:
        """Report marks not yet in the graph, written with the result (none here: ``mark_report`` wrote it)."""
        return []

    def unmark_report(self, mark: list[Triple]) -> None:
        """Step 3a: take our report back (not accepted)."""
        self.store.update(data_update(delete={self.graph: mark}))

    def record_result(self, record: JobRecord, claim: ClaimRecord, verdict: Verdict, graph: Any,
                      context: ExecutionContext, report: ResultReport) -> None:
        """Step 3b: accepted — in one update: PROV, credits, the job's next state, any report mark not
        yet written (``unwritten_mark``), for a product the running statistics
        (kgsched.provenance.statistics; read now, under the caller's ``store.write_lock``), and the
        dropping of any older failure status of a replica stored again. After an unhandled exception
        the claim is released and its runner excluded, so another runner retries the job."""
        assert verdict.next_state is not None
        extra: list[Triple] = self.unwritten_mark(claim.iri)
        held = None
        if report.outcome_iri == KS.UnhandledException:
            extra += [(claim.iri, KS.released, Literal(True)), (record.iri, KS.excludedRunner, claim.runner)]
            held = NOT_HELD
        running_means = statistics.execution_update(self.store, context.workflow, claim.runner,
                                                    report.duration_seconds, report.size_bytes) \
            if report.outcome_iri in COMPLETING else ""
        self.store.update(joined(
            self._state_update(record, verdict.next_state, extra, {PROVENANCE_GRAPH: list(graph)}, held),
            running_means,
            replicas.clear_stale_statuses_update(graph.subjects(RDF.type, KS.Replica))))  # stored again

    def _drop_unrecorded_report(self, record: JobRecord, claim: ClaimRecord) -> None:
        """A refused claim may carry a report written by an earlier attempt that was never recorded
        (its service died in between); delete it so it stops blocking the job."""
        if not claim.outcomes or claim.released or record.stored_state == "done":
            return
        stale = [(claim.iri, KS.reportedOutcome, o) for o in claim.outcomes]
        stale += [(claim.iri, KS.reportDigest, Literal(d)) for d in claim.digests]
        self.store.update(data_update(delete={self.graph: stale}))

    def _state_update(self, record: JobRecord, state: State, extra: list[Triple] | None = None,
                      other_graphs: Mapping[URIRef, list[Triple]] | None = None,
                      held: dt.datetime | None = None) -> str:
        """Replace the job's state (and, given ``held``, its lease copy), plus any other triples, in one update."""
        delete = [(record.iri, KS.state, STATE_IRI[s]) for s in record.stored_states or {record.stored_state}]
        insert: dict[URIRef, list[Triple]] = {self.graph: [(record.iri, KS.state, STATE_IRI[state])] + (extra or [])}
        if held is not None:
            delete += [(record.iri, KS.heldUntil, dt_literal(v)) for v in record.held_until]
            insert[self.graph].append((record.iri, KS.heldUntil, dt_literal(held)))
        insert.update(other_graphs or {})
        return data_update(insert=insert, delete={self.graph: delete})

    # -- views for the API -------------------------------------------------------------------------
    def describe(self, job: URIRef) -> dict[str, Any]:
        """A job for people and runners: state, expression, runners, claims (never token hashes), executions."""
        record = self.record(job)
        now = self.clock()
        skew = self.settings.clock_skew_seconds
        executions = queries.select(self.store, "job-executions", [{"job": job}])
        eligible, chosen = self.runners(job)
        return {
            "job": job_id(job), "job_iri": str(job), "state": record.effective_state(now, skew),
            "stored_state": record.stored_state, "expression": str(record.expression),
            "chosen_runner": None if chosen is None else str(chosen),
            "eligible_runners": sorted(str(r) for r in eligible),
            "max_attempts": record.max_attempts, "spent_attempts": record.spent_attempts(now, skew),
            "claims": [{
                "claim": str(c.iri), "runner": str(c.runner), "claimed_at": iso(c.claimed_at),
                "lease_until": iso(c.lease_until), "live": c.live(now), "released": c.released,
                "progress": c.progress, "refusal_reason": c.refusal,
                "reported_outcome": sorted(IRI_OUTCOME.get(o, str(o)) for o in c.outcomes) or None,
            } for c in sorted(record.claims, key=lambda c: c.claimed_at)],
            "executions": [{
                "execution": str(r["execution"]), "outcome": IRI_OUTCOME.get(r["outcome"], str(r["outcome"])),
                "runner": str(r["runner"]), "product": None if r.get("product") is None else str(r["product"]),
                "started": str(r["started"]), "ended": None if r.get("ended") is None else str(r["ended"]),
            } for r in executions],
        }

    def list(self, state: State | None = None, runner: URIRef | None = None) -> list[dict[str, Any]]:
        """The oldest 1,000 jobs with their effective state (a claimed job whose lease ran out is queued)."""
        if state is not None and state not in STATE_IRI:
            raise InvalidRequest(f"state must be one of {', '.join(STATE_IRI)}")
        rows = queries.select(self.store, "job-list", [{"runner": runner, "jobs": self.graph}])
        now = self.clock() - dt.timedelta(seconds=self.settings.clock_skew_seconds)
        jobs = []
        for row in rows:
            effective: State = IRI_STATE.get(row["state"], "queued")
            if effective == "claimed" and (row.get("lease") is None or from_literal(row["lease"]) <= now):
                effective = "queued"
            if state is None or effective == state:
                jobs.append({"job": job_id(row["job"]), "job_iri": str(row["job"]), "state": effective,
                             "expression": str(row["expression"]), "created": str(row["created"]),
                             "chosen_runner": None if row.get("chosen") is None else str(row["chosen"])})
        return jobs


def record_from_rows(job: URIRef, rows: Sequence[Mapping[str, Any]]) -> JobRecord:
    """A JobRecord from the rows of ``job-record.rq`` for one job (also used by the in-memory index of
    kgsched.jobs.local_queue, which reads many jobs at once)."""
    states = frozenset(IRI_STATE[r["state"]] for r in rows if r["state"] in IRI_STATE)
    if not states:
        raise NotFound(f"job {job} has no known state")
    claims: dict[URIRef, dict[str, Any]] = {}
    for row in rows:
        if row.get("claim") is None:
            continue
        entry = claims.setdefault(row["claim"], {
            "runner": row["runner"], "token_hash": str(row["tokenHash"]),
            "claimed_at": from_literal(row["claimedAt"]), "token": row.get("token"),
            "leases": set(), "outcomes": set(), "digests": set(), "released": False, "progress": None,
            "refusal": None})
        entry["leases"].add(from_literal(row["leaseUntil"]))
        if row.get("outcome") is not None:
            entry["outcomes"].add(row["outcome"])
        if row.get("digest") is not None:
            entry["digests"].add(str(row["digest"]))
        if row.get("released") is not None and row["released"].toPython() is True:
            entry["released"] = True
        if row.get("progress") is not None:
            entry["progress"] = float(row["progress"])
        if row.get("refusal") is not None:
            entry["refusal"] = str(row["refusal"])
    records = tuple(
        ClaimRecord(iri, e["runner"], e["token_hash"], e["claimed_at"], max(e["leases"]), e["token"],
                    frozenset(e["outcomes"]), frozenset(e["digests"]), e["released"], e["progress"],
                    frozenset(e["leases"]), e["refusal"])
        for iri, e in sorted(claims.items()))
    first = rows[0]
    held = frozenset(from_literal(r["heldUntil"]) for r in rows)
    return JobRecord(job, first["expression"], max(states, key=_STATE_ORDER.__getitem__),
                     int(first["maxAttempts"]), records, stored_states=states, held_until=held)


def _with_eligible(record: JobRecord, eligible: frozenset[URIRef]) -> JobRecord:
    from dataclasses import replace

    return replace(record, eligible=eligible)


def _unexpected(step: str, verdict: Verdict) -> AssertionError:
    """A verdict whose action the step has no branch for: the table in kgsched.jobs.states says which
    decision answers which actions, so this is a programming error, never the client's."""
    return AssertionError(f"{step} cannot act on the verdict {verdict.action.value!r} ({verdict.reason})")



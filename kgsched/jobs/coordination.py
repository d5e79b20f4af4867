"""Replicas that arbitrate through Redis: a per-job lock instead of bid, check and withdraw.

With several service replicas over one SPARQL server, the claim protocol (docs/claim-protocol.md §3)
arbitrates through the graph alone: a bid is a write, its check a read of every claim, a lost bid a
delete and a back-off — and bids collide more the more replicas there are. Configured with
``COORDINATION_URL=redis://…`` (every replica over the store with the same), each replica instead
takes a short **per-job lock** in Redis (``SET key token NX PX``, released by a compare-and-delete
script) around every read-decide-write of a job — claim, heartbeat, report, refusal — so that inside
the lock the job is decided exactly as by the store's only writer (kgsched.jobs.local_queue): read the
job and its claims from the graph, decide with the same pure rules (kgsched.jobs.states), write the
claim and the job's state in **one update**, and for a report the mark together with the result. A
job whose lock another replica holds is skipped for the next candidate, never waited for; a replica's
own claims no longer queue behind one process-wide lock, so its threads overlap their round trips to
the SPARQL server. One-job tokens take a lock of their own around their one claim.

What the lock assumes (argued in docs/claim-protocol.md §6b): Redis's ``SET NX`` is atomic and a lock
is held by one owner until it is deleted or its time (``COORDINATION_LOCK_SECONDS``, default 10 s, far
longer than a read and a write) runs out; a replica that stalls longer than that inside a lock may
overlap with the next holder, the same timing assumption as a lease. The graph still records every
job, claim and result as the protocol does, so SPARQL sees the queue and a replica without Redis
reads the same facts — but all replicas over one store must use the same mode.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from rdflib import URIRef

from kgsched.errors import InvalidRequest
from kgsched.jobs.queue import Grant, JobQueue, Triple, _unexpected
from kgsched.jobs.states import Action, ClaimRecord, Contention, JobRecord, NotYourJob, decide_claim
from kgsched.namespaces import KS
from kgsched.registry.tokens import token_hash

_RELEASE = """if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"""
#: Take a claim's lock unless the job was claimed moments ago and that claim's lease (KEYS[2], a hint
#: left by the winner, in ms since the epoch) runs past the bidder's now (ARGV[3]).
_TAKE_UNLESS_CLAIMED = """if tonumber(redis.call('get', KEYS[2]) or '0') > tonumber(ARGV[3]) then return -1 end
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0"""
#: Release a lock and note that the job was just claimed, with the claim's lease end (ARGV[3]): a hint
#: for the other replicas, kept ARGV[2] ms.
_RELEASE_CLAIMED = """if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('del', KEYS[1]) end
redis.call('set', KEYS[2], ARGV[3], 'PX', ARGV[2])
return 1"""


class JobLocks:
    """Short locks in Redis, one per key (a job's IRI, a one-job token's IRI)."""

    PREFIX = "kgsched:lock:"

    def __init__(self, url: str, hold_seconds: float = 10.0, client: Any = None) -> None:
        if client is None:
            import redis  # only a coordinated service needs it

            client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self.client = client
        self.hold_ms = max(1, int(hold_seconds * 1000))
        self._release = client.register_script(_RELEASE)
        self._take_unless_claimed = client.register_script(_TAKE_UNLESS_CLAIMED)
        self._release_claimed = client.register_script(_RELEASE_CLAIMED)

    @contextmanager
    def claiming(self, job: str, now: dt.datetime, claimed_hint_ms: int = 2000) -> Iterator[Any]:
        """A claim's lock on ``job``: yields a :class:`Claiming` whose ``taken`` says whether the lock was
        taken, ``recent`` whether another replica claimed the job moments ago with a lease running past
        ``now`` (then it was not tried); set ``won_until`` (the won claim's lease end) to leave that hint
        for the others when the lock is released. The hint saves a read; it decides nothing."""
        name, hint, owner = self.PREFIX + "job:" + job, self.PREFIX + "claimed:" + job, secrets.token_hex(16)
        answer = int(self._take_unless_claimed(keys=[name, hint], args=[owner, self.hold_ms, _ms(now)]))
        state = Claiming(taken=answer == 1, recent=answer == -1)
        try:
            yield state
        finally:
            if state.taken and state.won_until is not None:
                self._release_claimed(keys=[name, hint], args=[owner, claimed_hint_ms, _ms(state.won_until)])
            elif state.taken:
                self._release(keys=[name], args=[owner])

    @contextmanager
    def hold(self, key: str, wait_seconds: float = 0.0) -> Iterator[bool]:
        """Yield whether the lock was taken (trying for up to ``wait_seconds``); released on exit."""
        name, owner = self.PREFIX + key, secrets.token_hex(16)
        deadline = time.monotonic() + wait_seconds
        taken = bool(self.client.set(name, owner, nx=True, px=self.hold_ms))
        while not taken and time.monotonic() < deadline:
            time.sleep(0.002)
            taken = bool(self.client.set(name, owner, nx=True, px=self.hold_ms))
        try:
            yield taken
        finally:
            if taken:
                self._release(keys=[name], args=[owner])


@dataclass
class Claiming:
    """What :meth:`JobLocks.claiming` found, and whether the claim was won."""

    taken: bool
    recent: bool
    won_until: dt.datetime | None = None


def _ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass
class CoordinatedJobQueue(JobQueue):
    """A :class:`JobQueue` whose replicas arbitrate through :class:`JobLocks` (see the module docstring)."""

    locks: JobLocks | None = None
    #: How long a heartbeat, report or refusal waits for its job's lock before answering 503.
    wait_seconds: float = 5.0
    _marks: dict[URIRef, list[Triple]] = field(default_factory=dict, repr=False)
    _local: threading.local = field(default_factory=threading.local, repr=False)
    _hints: dict[URIRef, tuple[float, list[URIRef]]] = field(default_factory=dict, repr=False)
    _hints_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _handed: dict[URIRef, float] = field(default_factory=dict, repr=False)
    #: How long a replica hands out the candidates of one search before searching again.
    HINT_SECONDS = 1.0
    #: Candidate searches per round of a claim (a search's jobs may all have just been claimed elsewhere).
    SEARCHES_PER_ROUND = 4
    mode = "coordinated"

    def _lock(self, key: str, wait: float = 0.0) -> Any:
        assert self.locks is not None, "a coordinated queue needs its locks"
        return self.locks.hold(key, wait)

    def claim(self, runner: URIRef, token: URIRef | None = None, one_job: bool = False) -> Grant | None:
        """Candidates from the graph (a hint); for each, take its lock or skip it, read it, decide, and
        write the claim and the job's state in one update."""
        if one_job:
            if token is None:
                raise InvalidRequest("a one-job claim needs its token")
            with self._lock(f"token:{token}", self.wait_seconds) as taken:
                if not taken:
                    raise Contention("this token is claiming already; retry in a moment")
                if self.token_claims(token):
                    raise NotYourJob("this token was good for one job and has made its claim")
                return self._claim(runner, token)
        return self._claim(runner, token)

    def _claim(self, runner: URIRef, token: URIRef | None) -> Grant | None:
        busy = False
        for attempt in range(self.settings.claim_rounds):
            searches = 0
            while True:
                job, how = self._hint(runner, searches < self.SEARCHES_PER_ROUND)
                searches += how != "listed"
                if how == "none":
                    return None  # the graph has no candidate for this runner
                if job is None:
                    break
                won = self._try(job, runner, token)
                if won is None:  # another replica is deciding it: it may be free again soon
                    busy = True
                    with self._hints_lock:
                        self._handed.pop(job, None)
                elif won is not False:
                    placed, expression = won
                    return self.grant(placed, expression)
            self.sleep(self._backoff(attempt))
        if busy:
            self.counters["contention"] += 1
            raise Contention("every candidate was being claimed by another replica; retry in a moment")
        return None

    def _hint(self, runner: URIRef, may_search: bool) -> tuple[URIRef | None, str]:
        """The next candidate to try, from this replica's list of the runner's candidates (every one
        found, up to 64, in random order, each handed to one thread), searched again (if ``may_search``)
        when the list is used up or older than HINT_SECONDS. Returns the job (or None) and how: "listed"
        (from the list), "searched" (after a search) or "none" (a search found no candidate at all). A
        hint is only a hint: the job's own record, read under its lock, decides.

        The found jobs' expression contexts are not read ahead in one batch, as the index queue does:
        measured with 20 clients over an Oxigraph server, that made claims a fifth to a third slower
        (most of a batch is claimed through the other threads and replicas before it is used)."""
        with self._hints_lock:
            found_at, jobs = self._hints.get(runner, (0.0, []))
            if time.monotonic() - found_at < self.HINT_SECONDS:
                job = self._unhanded(jobs)
                if job is not None:
                    return job, "listed"
            if not may_search:
                return None, "listed"
        candidates = list(self.candidates(runner, self.clock()))
        if not candidates:
            return None, "none"
        self.rng.shuffle(candidates)
        with self._hints_lock:
            now = time.monotonic()
            self._handed = {job: at for job, at in self._handed.items() if now - at < self.HINT_SECONDS}
            self._hints[runner] = (now, candidates)
            return self._unhanded(candidates), "searched"

    def _unhanded(self, jobs: list[URIRef]) -> URIRef | None:
        """The next job of ``jobs`` no thread of this replica was handed within HINT_SECONDS (the lists of
        runners eligible for the same jobs overlap); called under ``_hints_lock``."""
        now = time.monotonic()
        while jobs:
            job = jobs.pop()
            if now - self._handed.get(job, -self.HINT_SECONDS) >= self.HINT_SECONDS:
                self._handed[job] = now
                return job
        return None

    def _try(self, job: URIRef, runner: URIRef, token: URIRef | None) -> Any:
        """One job under its lock: (placed claim, expression) if held; False if not ours to hold; None if
        another replica holds its lock."""
        assert self.locks is not None, "a coordinated queue needs its locks"
        with self.locks.claiming(str(job), self.clock()) as lock:
            if lock.recent:
                self.counters["recently-claimed"] += 1
                return False
            if not lock.taken:
                self.counters["busy"] += 1
                return None
            record = self.record(job)
            now = self.clock()
            placed = self.new_bid(job, runner, token, now)
            mine = ClaimRecord(placed.iri, runner, token_hash(placed.secret), now, placed.lease_until, token,
                               lease_values=frozenset({placed.lease_until}))
            verdict = decide_claim(replace(record, claims=(*record.claims, mine)), placed.iri, now,
                                   self.settings.clock_skew_seconds, 0, self.settings.grace)
            self.counters["bids"] += 1
            match verdict.action:
                case Action.HOLD:
                    self.store.update(self._state_update(record, "claimed", list(placed.triples),
                                                         held=placed.lease_until))
                    self.counters["held"] += 1
                    lock.won_until = placed.lease_until
                    return placed, record.expression
                case Action.FAIL:
                    self.store.update(self._state_update(record, "failed"))
                    return False
                case Action.WITHDRAW:
                    self.counters["withdrawn"] += 1
                    return False
                case _:
                    raise _unexpected("a bid", verdict)

    # -- the holder's operations: the protocol's code, under the job's lock -------------------------
    def heartbeat(self, job: URIRef, runner: URIRef, claim_token: str, **options: Any) -> Any:
        with self._lock(f"job:{job}", self.wait_seconds) as taken:
            if not taken:
                raise Contention("the job is being changed by another replica; retry in a moment")
            return super().heartbeat(job, runner, claim_token, **options)

    def report(self, job: URIRef, runner: URIRef, claim_token: str, report: Any, **options: Any) -> Any:
        """The protocol's report under the job's lock, reading the job once: while the lock is held no
        replica can change it, so the check after the (unwritten) mark reuses the first read."""
        with self._lock(f"job:{job}", self.wait_seconds) as taken:
            if not taken:
                raise Contention("the job is being changed by another replica; retry in a moment")
            self._local.records = {}
            try:
                return super().report(job, runner, claim_token, report, **options)
            finally:
                self._local.records = None

    def record(self, job: URIRef) -> JobRecord:
        records = getattr(self._local, "records", None)
        if records is None:
            return super().record(job)
        if job not in records:
            records[job] = super().record(job)
        return records[job]

    def refuse(self, job: URIRef, runner: URIRef, claim_token: str, reason: str, **options: Any) -> Any:
        with self._lock(f"job:{job}", self.wait_seconds) as taken:
            if not taken:
                raise Contention("the job is being changed by another replica; retry in a moment")
            return super().refuse(job, runner, claim_token, reason, **options)

    # Under the job's lock no other replica can read between a mark and its check, so the mark is
    # written with the result (one update) rather than first.
    def mark_report(self, claim: URIRef, digest: str, outcome: URIRef) -> list[Triple]:
        from rdflib import Literal

        mark: list[Triple] = [(claim, KS.reportedOutcome, outcome), (claim, KS.reportDigest, Literal(digest))]
        self._marks[claim] = mark
        return mark

    def unmark_report(self, mark: list[Triple]) -> None:
        self._marks.pop(mark[0][0], None)  # type: ignore[arg-type]

    def unwritten_mark(self, claim: URIRef) -> list[Triple]:
        return list(self._marks.get(claim, ()))

    def record_result(self, record: Any, claim: ClaimRecord, verdict: Any, graph: Any, context: Any,
                      report: Any) -> None:
        """As the protocol's (the report mark is written with the result); the mark is forgotten either way."""
        try:
            super().record_result(record, claim, verdict, graph, context, report)
        finally:
            self._marks.pop(claim.iri, None)

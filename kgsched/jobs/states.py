"""The job state machine, pure: states, the allowed moves, and the decisions of the claim protocol.

Nothing here reads or writes the store (kgsched.jobs.queue does, and docs/claim-protocol.md says why
the protocol is correct). The functions take a :class:`JobRecord` — one consistent read of a job and
all its claims — and the current time, and say what should happen: hold or withdraw a claim, accept,
retry or refuse a report. Keeping them pure lets the tests drive every interleaving and every clock.

Who holds a job is decided by its claims, not by its stored ``ks:state``: a claim is *live* while its
lease runs (plus the allowed clock skew) and it was not released. A contender holds a job when, after
writing its own claim, it reads no other live claim and no result report. The stored state is a view
written only by the holder (so the planner can count queued and claimed jobs), and a claimed job whose
lease ran out counts as queued.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from rdflib import URIRef

from kgsched.errors import KgschedError
from kgsched.namespaces import KS

State = Literal["queued", "claimed", "done", "failed"]
STATES: tuple[State, ...] = ("queued", "claimed", "done", "failed")
STATE_IRI: dict[State, URIRef] = {"queued": KS.Queued, "claimed": KS.Claimed, "done": KS.Done, "failed": KS.Failed}
IRI_STATE: dict[URIRef, State] = {iri: state for state, iri in STATE_IRI.items()}

#: Every allowed move of a job's state, with what causes it. Any other move is a bug (InvalidTransition).
TRANSITIONS: dict[tuple[State, State], str] = {
    ("queued", "claimed"): "a runner's claim was the only live one on the job",
    ("claimed", "done"): "the holder reported a success or an analysis exception",
    ("claimed", "queued"): "the holder reported an unhandled exception or refused the job under its owner's policy, "
                           "and another runner may retry it; or the holder's lease ran out",
    ("claimed", "failed"): "the holder reported an unhandled exception (or refused the job) and no attempt or "
                           "eligible runner is left",
    ("queued", "failed"): "claims ran out of lease as many times as the job allows",
}

Outcome = Literal["success", "analysis_exception", "unhandled_exception"]
OUTCOME_IRI: dict[Outcome, URIRef] = {
    "success": KS.Success, "analysis_exception": KS.AnalysisException, "unhandled_exception": KS.UnhandledException,
}
IRI_OUTCOME: dict[URIRef, Outcome] = {iri: name for name, iri in OUTCOME_IRI.items()}
#: Outcomes that finish a job (they generate a product); an unhandled exception gives the job back.
COMPLETING = frozenset({KS.Success, KS.AnalysisException})


class InvalidTransition(Exception):
    """A move not in TRANSITIONS: a programming error, never the client's."""


class LeaseLost(KgschedError):
    """The claim is no longer the job's live claim (expired, withdrawn or finished)."""

    status_code = 409
    error = "lease lost"


class NotYourJob(KgschedError):
    """The caller tries to act on a job it never claimed, or with a token meant for another job."""

    status_code = 403
    error = "not your job"


class Contention(KgschedError):
    """Other claims or reports kept colliding with ours; nothing is wrong, try again shortly."""

    status_code = 503
    error = "contention"


def transition(start: State, finish: State) -> str:
    """The cause of an allowed move; raises InvalidTransition for any other."""
    try:
        return TRANSITIONS[(start, finish)]
    except KeyError:
        raise InvalidTransition(f"a job cannot go from {start} to {finish}") from None


@dataclass(frozen=True)
class ClaimRecord:
    """One claim on a job, as read from the jobs graph."""

    iri: URIRef
    runner: URIRef
    token_hash: str
    claimed_at: dt.datetime
    lease_until: dt.datetime
    token: URIRef | None = None
    outcomes: frozenset[URIRef] = frozenset()
    digests: frozenset[str] = frozenset()
    released: bool = False
    progress: float | None = None
    lease_values: frozenset[dt.datetime] = frozenset()  # every ks:leaseUntil read (normally one)
    refusal: str | None = None  # why it was handed back unrun under the runner owner's policy (ks:refusalReason)

    def live(self, now: dt.datetime, skew: float = 0.0) -> bool:
        """Whether the claim still holds (or bids for) the job at ``now``, allowing ``skew`` seconds of
        clock difference in the holder's favour."""
        return not self.released and now < self.lease_until + dt.timedelta(seconds=skew)

    @property
    def completing(self) -> bool:
        """A success or analysis-exception report sits on it (accepted, or still being checked)."""
        return bool(self.outcomes & COMPLETING)


@dataclass(frozen=True)
class JobRecord:
    """A job and all its claims, from one read (one snapshot)."""

    iri: URIRef
    expression: URIRef
    stored_state: State
    max_attempts: int
    claims: tuple[ClaimRecord, ...] = ()
    eligible: frozenset[URIRef] = field(default_factory=frozenset)
    stored_states: frozenset[State] = frozenset()  # every ks:state read (normally one; all are replaced)
    held_until: frozenset[dt.datetime] = frozenset()  # every ks:heldUntil read (the holder's lease copy)

    def claim(self, iri: URIRef) -> ClaimRecord | None:
        return next((c for c in self.claims if c.iri == iri), None)

    def claim_by_token(self, token_hash: str) -> ClaimRecord | None:
        return next((c for c in self.claims if c.token_hash == token_hash), None)

    def effective_state(self, now: dt.datetime, skew: float = 0.0) -> State:
        """The state as the protocol sees it: done/failed are final; otherwise claimed iff a claim is live."""
        if self.stored_state in ("done", "failed"):
            return self.stored_state
        return "claimed" if any(c.live(now, skew) for c in self.claims) else "queued"

    def spent_attempts(self, now: dt.datetime, skew: float = 0.0) -> int:
        """Claims that ended without a recorded result: lease expired, or released after an unhandled
        exception (a report left unrecorded on an expired claim counts as no result). A claim handed back
        unrun under the runner's policy (refused) is no attempt: the job was never tried."""
        return sum(1 for c in self.claims if not c.live(now, skew) and c.refusal is None)

    @property
    def excluded_runners(self) -> frozenset[URIRef]:
        """Runners that ended the job with an unhandled exception, or refused it; it is retried elsewhere."""
        return frozenset(c.runner for c in self.claims
                         if c.released and (c.refusal is not None or KS.UnhandledException in c.outcomes))


class Action(StrEnum):
    """What a verdict tells the queue to do: a closed set, and the queue dispatches on it, never on the
    verdict's reason (those words are for the runner, and may change).

    =============  ===================================  ==========================================================
    action         answered by                          meaning, and what kgsched.jobs.queue then does
    =============  ===================================  ==========================================================
    HOLD           decide_claim                         ours is the only live claim: write the state ``claimed``
                                                        and copy our lease onto the job
    WITHDRAW       decide_claim                         another claim or a report wins, the job is finished, or our
                                                        claim is gone: delete our bid, back off, bid again (503
                                                        Contention when every round collides)
    TOKEN_SPENT    decide_claim                         the one-job token we bid with already made another claim:
                                                        delete our bid and refuse (403 NotYourJob)
    FAIL           decide_claim                         the job's claims ran out of lease as often as it allows:
                                                        write the state ``failed``, delete our bid, look again
    ACCEPT         decide_report, decide_heartbeat      record the result and move the job to ``next_state`` /
                                                        extend the lease
    RETRY          decide_report                        another report or a live bid collides with ours: take our
                                                        report mark back, back off, report again
    REFUSE         decide_report, decide_heartbeat      the report or heartbeat comes too late or contradicts what
                                                        is recorded: 409 LeaseLost
    ALREADY        decide_report                        this very result was recorded before: answer what was
                                                        recorded (reports are idempotent)
    =============  ===================================  ==========================================================
    """

    HOLD = "hold"
    WITHDRAW = "withdraw"
    TOKEN_SPENT = "token-spent"
    FAIL = "fail"
    ACCEPT = "accept"
    RETRY = "retry"
    REFUSE = "refuse"
    ALREADY = "already"


@dataclass(frozen=True)
class Verdict:
    """What the protocol says to do, why (in words for the runner), and the state to write if any."""

    action: Action
    reason: str
    next_state: State | None = None


# --------------------------------------------------------------------------------------------------
# Decisions
# --------------------------------------------------------------------------------------------------

def blocking_report(claim: ClaimRecord, now: dt.datetime, grace: float) -> bool:
    """Whether a success/analysis report on ``claim`` stops others from claiming the job.

    It does while it may still be accepted and recorded. A report left behind by a service that died
    between writing it and recording it would block the job forever, so once the claim's lease ended
    more than ``grace`` seconds ago the report is ignored (a recorded one made the job done anyway)."""
    if not claim.completing:
        return False
    return math.isinf(grace) or now < claim.lease_until + dt.timedelta(seconds=grace)


def decide_claim(job: JobRecord, mine: URIRef, now: dt.datetime, skew: float = 0.0,
                 other_claims_with_token: int = 0, grace: float = float("inf")) -> Verdict:
    """After writing claim ``mine`` and reading ``job``: hold it, withdraw, or (holding) fail the job.

    Safety rests on the order of operations, not on this rule alone: every contender writes its claim
    *before* reading, so of two contenders the one that reads second sees the other's claim."""
    claim = job.claim(mine)
    if claim is None:
        return Verdict(Action.WITHDRAW, "our claim is gone (withdrawn)")
    if job.stored_state in ("done", "failed"):
        return Verdict(Action.WITHDRAW, f"the job is {job.stored_state}")
    if other_claims_with_token:
        return Verdict(Action.TOKEN_SPENT, "this one-job token already made a claim")
    if any(blocking_report(c, now, grace) for c in job.claims if c.iri != mine):
        return Verdict(Action.WITHDRAW, "a result for the job has been reported")
    if any(c.live(now, skew) for c in job.claims if c.iri != mine):
        return Verdict(Action.WITHDRAW, "another claim on the job is live")
    if claim.runner in job.excluded_runners:
        return Verdict(Action.WITHDRAW, "this runner already failed the job; it is retried elsewhere")
    spent = job.spent_attempts(now, skew)
    if spent >= job.max_attempts:
        transition("queued", "failed")  # with no other live claim, the job was effectively queued
        return Verdict(Action.FAIL, f"{spent} claim(s) ended without a result; the job allows {job.max_attempts}",
                       "failed")
    transition("queued", "claimed")
    return Verdict(Action.HOLD, "ours is the only live claim", "claimed")


def decide_report(job: JobRecord, mine: URIRef, digest: str, outcome: URIRef, now: dt.datetime,
                  skew: float = 0.0) -> Verdict:
    """After writing a report on claim ``mine`` and reading ``job``: accept, retry later, or refuse.

    A report is accepted only from a claim whose lease still runs, when no other claim is live and no
    other report is pending — so an accepted report and a claim won by another runner exclude each
    other exactly as two claims do."""
    claim = job.claim(mine)
    if claim is None:
        return Verdict(Action.REFUSE, "no such claim on the job (withdrawn, or its lease ran out and it was replaced)")
    if len(claim.digests) > 1:
        return Verdict(Action.REFUSE, "different results were reported for the same claim at once")
    if job.stored_state == "done":
        if claim.completing and digest in claim.digests and outcome in claim.outcomes:
            return Verdict(Action.ALREADY, "this result was recorded before")
        return Verdict(Action.REFUSE, "the job is already done with another result")
    if claim.released:
        if digest in claim.digests:
            return Verdict(Action.ALREADY, "this result was recorded before")
        return Verdict(Action.REFUSE, "this claim already reported an unhandled exception")
    if job.stored_state == "failed":
        return Verdict(Action.REFUSE, "the job has failed")
    if not claim.live(now):
        return Verdict(Action.REFUSE, f"the lease ran out at {claim.lease_until.isoformat()}; the job went back "
                                 "to the queue")
    if any(c.completing for c in job.claims if c.iri != mine):
        return Verdict(Action.RETRY, "another report on the job is being checked")
    if any(c.live(now, skew) for c in job.claims if c.iri != mine):
        return Verdict(Action.RETRY, "another runner is bidding for the job")
    if outcome in COMPLETING:
        transition("claimed", "done")
        return Verdict(Action.ACCEPT, "result recorded", "done")
    spent = job.spent_attempts(now, skew) + 1  # ours ends now
    remaining = job.eligible - job.excluded_runners - {claim.runner}
    if spent >= job.max_attempts or (job.eligible and not remaining):
        why = (f"{spent} attempt(s) used of {job.max_attempts}" if spent >= job.max_attempts
               else "no other eligible runner is left")
        transition("claimed", "failed")
        return Verdict(Action.ACCEPT, f"unhandled exception recorded; the job failed: {why}", "failed")
    transition("claimed", "queued")
    return Verdict(Action.ACCEPT, "unhandled exception recorded; the job goes back to the queue for another runner",
                   "queued")


def _not_holding(job: JobRecord, claim: ClaimRecord | None) -> Verdict | None:
    """Why a claim no longer holds the job for a heartbeat or a hand-back (None: it still might)."""
    if claim is None:
        return Verdict(Action.REFUSE, "no such claim on the job")
    if job.stored_state in ("done", "failed"):
        return Verdict(Action.REFUSE, f"the job is {job.stored_state}")
    if claim.released or claim.outcomes:
        return Verdict(Action.REFUSE, "this claim already reported its result")
    return None


def decide_heartbeat(job: JobRecord, mine: URIRef, now: dt.datetime, margin: float) -> Verdict:
    """Extend the lease only while it has more than ``margin`` seconds to run, so an extension can
    never land after another runner saw the lease expire (unless a write takes longer than ``margin``)."""
    claim = job.claim(mine)
    refused = _not_holding(job, claim)
    if refused is not None:
        return refused
    if now >= claim.lease_until - dt.timedelta(seconds=margin):
        return Verdict(Action.REFUSE, f"the lease ran out (or has under {margin:g} s left) at "
                                 f"{claim.lease_until.isoformat()}; stop and claim again")
    return Verdict(Action.ACCEPT, "lease extended")


def decide_refusal(job: JobRecord, mine: URIRef, now: dt.datetime) -> Verdict:
    """The holder hands the job back unrun (its owner's policy does not allow it): accepted while its
    claim is live and reported nothing. No attempt is spent; the job is queued again for the other
    eligible runners, or fails when none is left (it would otherwise wait forever)."""
    claim = job.claim(mine)
    refused = _not_holding(job, claim)
    if refused is not None:
        return refused
    if not claim.live(now):
        return Verdict(Action.REFUSE, f"the lease ran out at {claim.lease_until.isoformat()}; the job went back "
                                 "to the queue")
    remaining = job.eligible - job.excluded_runners - {claim.runner}
    if job.eligible and not remaining:
        transition("claimed", "failed")
        return Verdict(Action.ACCEPT, "refusal recorded; the job failed: no other eligible runner is left", "failed")
    transition("claimed", "queued")
    return Verdict(Action.ACCEPT, "refusal recorded; the job goes back to the queue for another runner", "queued")

"""The pure job state machine: the transitions table and every branch of the claim, report and
heartbeat decisions, on hand-made records and clocks (no store)."""

from __future__ import annotations

import datetime as dt

import pytest
from rdflib import URIRef

from kgsched.jobs.states import (
    STATES,
    TRANSITIONS,
    Action,
    ClaimRecord,
    InvalidTransition,
    JobRecord,
    blocking_report,
    decide_claim,
    decide_heartbeat,
    decide_report,
    transition,
)
from kgsched.namespaces import KS
from service_support import utc

JOB = URIRef("https://w3id.org/kgsched/id/job/" + "a" * 32)
R1, R2, R3 = (URIRef(f"https://example.org/runner/{n}") for n in (1, 2, 3))


def claim(name: str, runner: URIRef = R1, *, at: float = 0, lease: float = 60, **extra) -> ClaimRecord:
    return ClaimRecord(URIRef(f"{JOB}/claim/{name}"), runner, name * 4, utc(at), utc(at + lease), **extra)


def job(*claims: ClaimRecord, state: str = "queued", attempts: int = 3, eligible=(R1, R2)) -> JobRecord:
    return JobRecord(JOB, URIRef("https://w3id.org/kgsched/id/expression/e"), state, attempts, claims,  # type: ignore[arg-type]
                     eligible=frozenset(eligible), stored_states=frozenset({state}))  # type: ignore[arg-type]


def test_transitions_table_is_explicit_and_unknown_moves_raise() -> None:
    assert set(TRANSITIONS) == {("queued", "claimed"), ("claimed", "done"), ("claimed", "queued"),
                                ("claimed", "failed"), ("queued", "failed")}
    assert all(start in STATES and finish in STATES and why for (start, finish), why in TRANSITIONS.items())
    assert transition("queued", "claimed").startswith("a runner's claim")
    for start, finish in [("done", "queued"), ("failed", "claimed"), ("queued", "done"), ("done", "claimed")]:
        with pytest.raises(InvalidTransition):
            transition(start, finish)  # type: ignore[arg-type]


def test_a_claim_is_live_until_lease_plus_skew_unless_released() -> None:
    c = claim("a", lease=10)
    assert c.live(utc(9.9)) and not c.live(utc(10))
    assert c.live(utc(11), skew=2) and not c.live(utc(12), skew=2)
    assert not claim("b", released=True).live(utc(0))


def test_effective_state_follows_the_claims() -> None:
    assert job().effective_state(utc(0)) == "queued"
    assert job(claim("a"), state="claimed").effective_state(utc(1)) == "claimed"
    assert job(claim("a", lease=5), state="claimed").effective_state(utc(6)) == "queued"  # lease ran out
    assert job(claim("a"), state="done").effective_state(utc(1)) == "done"


def test_sole_claim_holds_and_any_other_live_claim_makes_it_withdraw() -> None:
    mine = claim("a")
    assert decide_claim(job(mine), mine.iri, utc(1)).action == "hold"
    other = claim("b", R2)
    verdict = decide_claim(job(mine, other), mine.iri, utc(1))
    assert verdict.action == "withdraw" and "live" in verdict.reason
    # symmetric: the other sees ours too, so at most one of two concurrent bids holds
    assert decide_claim(job(mine, other), other.iri, utc(1)).action == "withdraw"


def test_expired_and_released_claims_do_not_block_a_new_bid() -> None:
    old = claim("a", lease=10)
    mine = claim("b", R2, at=20)
    assert decide_claim(job(old, mine, state="claimed"), mine.iri, utc(20)).action == "hold"
    assert decide_claim(job(old, mine, state="claimed"), mine.iri, utc(11), skew=2).action == "withdraw"
    released = claim("c", released=True, outcomes=frozenset({KS.UnhandledException}))
    assert decide_claim(job(released, mine), mine.iri, utc(20)).action == "hold"


def test_a_bid_withdraws_from_done_failed_reported_and_missing() -> None:
    mine = claim("a", R2)
    assert decide_claim(job(mine, state="done"), mine.iri, utc(1)).action == "withdraw"
    assert decide_claim(job(mine, state="failed"), mine.iri, utc(1)).action == "withdraw"
    reported = claim("r", R1, lease=5, outcomes=frozenset({KS.Success}), digests=frozenset({"d"}))
    assert decide_claim(job(reported, mine), mine.iri, utc(10)).reason.startswith("a result")
    assert decide_claim(job(mine), URIRef(f"{JOB}/claim/gone"), utc(1)).action == "withdraw"
    spent = decide_claim(job(mine), mine.iri, utc(1), other_claims_with_token=1)
    assert spent.action == Action.TOKEN_SPENT  # its own action: the queue refuses (403), it does not retry


def test_an_abandoned_report_stops_blocking_after_the_grace() -> None:
    reported = claim("r", R1, lease=5, outcomes=frozenset({KS.Success}), digests=frozenset({"d"}))
    assert blocking_report(reported, utc(100), grace=300)
    assert not blocking_report(reported, utc(306), grace=300)
    mine = claim("a", R2, at=400)
    assert decide_claim(job(reported, mine), mine.iri, utc(400), grace=300).action == "hold"


def test_a_runner_that_failed_the_job_is_not_given_it_again() -> None:
    failed = claim("f", R1, released=True, outcomes=frozenset({KS.UnhandledException}))
    again = claim("a", R1, at=5)
    assert decide_claim(job(failed, again), again.iri, utc(6)).action == "withdraw"


def test_attempts_run_out_and_the_holder_fails_the_job() -> None:
    expired = [claim(n, lease=1, at=i) for i, n in enumerate("xyz")]
    mine = claim("m", R2, at=100)
    verdict = decide_claim(job(*expired, mine, attempts=3), mine.iri, utc(100))
    assert verdict.action == "fail" and verdict.next_state == "failed"
    assert decide_claim(job(*expired[:2], mine, attempts=3), mine.iri, utc(100)).action == "hold"


DIGEST = "d" * 64


def test_report_from_the_live_holder_is_accepted_once_then_answered_as_recorded() -> None:
    mine = claim("a")
    verdict = decide_report(job(mine, state="claimed"), mine.iri, DIGEST, KS.Success, utc(10))
    assert (verdict.action, verdict.next_state) == ("accept", "done")
    recorded = claim("a", outcomes=frozenset({KS.Success}), digests=frozenset({DIGEST}))
    assert decide_report(job(recorded, state="done"), mine.iri, DIGEST, KS.Success, utc(10)).action == "already"
    different = decide_report(job(recorded, state="done"), mine.iri, "e" * 64, KS.Success, utc(10))
    assert different.action == "refuse"


def test_late_report_is_refused_and_a_contender_means_retry() -> None:
    mine = claim("a", lease=10)
    late = decide_report(job(mine, state="claimed"), mine.iri, DIGEST, KS.Success, utc(11))
    assert late.action == "refuse" and "lease ran out" in late.reason
    bidder = claim("b", R2, at=5)
    assert decide_report(job(mine, bidder), mine.iri, DIGEST, KS.Success, utc(6)).action == "retry"
    other_report = claim("b", R2, at=5, outcomes=frozenset({KS.Success}), digests=frozenset({"x"}))
    assert decide_report(job(mine, other_report), mine.iri, DIGEST, KS.Success, utc(6)).action == "retry"
    assert decide_report(job(mine), URIRef(f"{JOB}/claim/none"), DIGEST, KS.Success, utc(1)).action == "refuse"
    assert decide_report(job(mine, state="failed"), mine.iri, DIGEST, KS.Success, utc(1)).action == "refuse"
    two = claim("a", digests=frozenset({"x", "y"}))
    assert decide_report(job(two), two.iri, "x", KS.Success, utc(1)).action == "refuse"


def test_unhandled_exception_requeues_for_another_runner_or_fails() -> None:
    mine = claim("a", R1)
    verdict = decide_report(job(mine, state="claimed"), mine.iri, DIGEST, KS.UnhandledException, utc(1))
    assert (verdict.action, verdict.next_state) == ("accept", "queued")
    alone = decide_report(job(mine, state="claimed", eligible=(R1,)), mine.iri, DIGEST, KS.UnhandledException,
                          utc(1))
    assert alone.next_state == "failed" and "no other eligible runner" in alone.reason
    spent = [claim(n, R3, lease=1) for n in "xy"]
    last = decide_report(job(*spent, mine, state="claimed", eligible=(R1, R2, R3)), mine.iri, DIGEST,
                         KS.UnhandledException, utc(5))
    assert last.next_state == "failed" and "3 attempt(s)" in last.reason
    released = claim("a", R1, released=True, outcomes=frozenset({KS.UnhandledException}),
                     digests=frozenset({DIGEST}))
    assert decide_report(job(released), released.iri, DIGEST, KS.UnhandledException, utc(2)).action == "already"
    assert decide_report(job(released), released.iri, "z" * 64, KS.Success, utc(2)).action == "refuse"


def test_heartbeat_extends_only_a_live_unreported_claim_with_margin() -> None:
    mine = claim("a", lease=60)
    assert decide_heartbeat(job(mine, state="claimed"), mine.iri, utc(10), margin=15).action == "accept"
    assert decide_heartbeat(job(mine, state="claimed"), mine.iri, utc(46), margin=15).action == "refuse"
    assert decide_heartbeat(job(mine, state="done"), mine.iri, utc(1), margin=1).action == "refuse"
    reported = claim("a", outcomes=frozenset({KS.Success}))
    assert decide_heartbeat(job(reported), reported.iri, utc(1), margin=1).action == "refuse"
    assert decide_heartbeat(job(mine), URIRef(f"{JOB}/claim/x"), utc(1), margin=1).action == "refuse"


def test_spent_attempts_count_claims_that_ended_without_a_recorded_result() -> None:
    record = job(claim("x", lease=1), claim("y", released=True), claim("z", at=10))
    assert record.spent_attempts(utc(10)) == 2
    assert record.excluded_runners == frozenset()
    failed = job(claim("x", R2, released=True, outcomes=frozenset({KS.UnhandledException})))
    assert failed.excluded_runners == {R2}
    assert isinstance(utc(0), dt.datetime)

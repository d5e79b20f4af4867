"""The job queue on both stores: claims, leases, fencing, idempotent reports, retries, one-job tokens,
and every interleaving of two bids (and of a late report against a new bid) step by step.

The clock is injected, so lease expiry is tested without waiting."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable

import pytest
from rdflib import Literal, URIRef
from rdflib.namespace import RDF

from kgsched.dev.workloads import fake_result, light_curve_expressions, queue_light_curves
from kgsched.errors import InvalidRequest
from kgsched.graph import queries
from kgsched.graph.store import Store
from kgsched.jobs.queue import JobQueue, NewJob, QueueSettings
from kgsched.jobs.states import Action, Contention, LeaseLost, NotYourJob, Verdict
from kgsched.namespaces import JOBS_GRAPH, KS, PROVENANCE_GRAPH
from kgsched.provenance.recording import ResultReport
from kgsched.registry.registration import validate_graph
from kgsched.registry.tokens import TokenStore
from service_support import ALICE_LAPTOP, GENEVA, PARIS, check_exactly_once, load_federation, utc

LEASE = 60.0


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock(utc(0))


@pytest.fixture
def queue(store: Store, clock: Clock) -> JobQueue:
    load_federation(store)
    settings = QueueSettings(lease_seconds=LEASE, clock_skew_seconds=2, max_attempts=3, backoff_seconds=0)
    return JobQueue(store, settings, clock=clock, sleep=lambda _s: None)


def report(name: str = "x", **overrides) -> ResultReport:
    return ResultReport.from_json({**fake_result(name), **overrides})


def state_of(queue: JobQueue, job: URIRef) -> str:
    return queue.record(job).stored_state


def test_claim_report_records_prov_credits_and_done(queue: JobQueue, clock: Clock) -> None:
    [job] = queue_light_curves(queue.store, queue, 1)
    grant = queue.claim(GENEVA)
    assert grant is not None and grant.claim.job == job
    body = grant.to_json()
    assert body["workflow"]["implementation"] == "kgsched_examples.astro:light_curve"
    assert body["arguments"]["events"]["location"] == "data/isgri-events-rev2670.csv"
    assert body["arguments"]["energy_min_kev"]["value"] == 0
    assert body["arguments"]["energy_min_kev"]["datatype"].endswith("#decimal")
    assert state_of(queue, job) == "claimed"
    clock.advance(5)
    receipt = queue.report(job, GENEVA, grant.claim.secret, report())
    assert receipt.state == "done" and receipt.product is not None and not receipt.already
    assert queue.store.ask(
        "PREFIX ks: <https://w3id.org/kgsched#> ASK { GRAPH ?g { ?p ks:valueOf ?e ; ks:outcome ks:Success } }",
        [{"g": PROVENANCE_GRAPH, "e": grant.context.expression}])
    reasons = {str(r["reason"]) for r in queue.store.select(
        "SELECT ?reason WHERE { GRAPH ?g { ?c <https://w3id.org/kgsched#creditReason> ?reason } }",
        [{"g": PROVENANCE_GRAPH}])}
    assert reasons == {str(KS.WorkflowAuthorship), str(KS.Verification), str(KS.ComputeContribution),
                       str(KS.DataProvision)}
    assert queue.claim(GENEVA) is None  # nothing left


def test_recorded_jobs_claims_and_prov_conform_to_the_shapes(queue: JobQueue) -> None:
    jobs = queue_light_curves(queue.store, queue, 2)
    first = queue.claim(GENEVA)
    queue.heartbeat(first.claim.job, GENEVA, first.claim.secret, progress=0.25)
    queue.report(first.claim.job, GENEVA, first.claim.secret, report())
    second = queue.claim(PARIS)
    queue.report(second.claim.job, PARIS, second.claim.secret,
                 ResultReport.from_json({"outcome": "unhandled_exception", "duration_seconds": 1,
                                         "error_message": "ZeroDivisionError"}))
    data = queue.store.graph(JOBS_GRAPH) + queue.store.graph(PROVENANCE_GRAPH)
    context = queue.store.graph(URIRef("https://w3id.org/kgsched/graph/plans"))
    for graph in queue.store.named_graphs():
        if "registrant" in str(graph):
            context += queue.store.graph(graph)
    outcome = validate_graph(data, context)
    assert outcome.conforms, outcome.report_text
    assert {row["job"] for row in queries.select(queue.store, "job-list", [{"jobs": JOBS_GRAPH}])} == set(jobs)


def test_only_eligible_runners_get_jobs_and_inputs_must_be_ready(queue: JobQueue) -> None:
    graph, [upstream, downstream] = light_curve_expressions(2, tag="deps")
    queue.store.add_to_graph(URIRef("https://w3id.org/kgsched/graph/plans"), graph)
    [job] = queue.enqueue([NewJob(downstream, (GENEVA,), depends_on=(upstream,))])
    assert queue.claim(PARIS) is None  # not eligible
    assert queue.claim(GENEVA) is None  # its input has no product yet
    [up_job] = queue.enqueue([NewJob(upstream, (PARIS,))])
    grant = queue.claim(PARIS)
    assert grant.claim.job == up_job
    queue.report(up_job, PARIS, grant.claim.secret, report("up"))
    grant = queue.claim(GENEVA)
    assert grant is not None and grant.claim.job == job
    with pytest.raises(InvalidRequest):
        queue.enqueue([NewJob(upstream, ())])


def test_expired_lease_requeues_and_the_late_holder_is_fenced(queue: JobQueue, clock: Clock) -> None:
    [job] = queue_light_curves(queue.store, queue, 1)
    first = queue.claim(GENEVA)
    assert queue.claim(PARIS) is None  # held
    clock.advance(LEASE + 1)  # expired, but within the 2 s skew allowance
    assert queue.claim(PARIS) is None
    clock.advance(2)
    assert [j["state"] for j in queue.list()] == ["queued"]
    second = queue.claim(PARIS)
    assert second is not None and second.claim.job == job
    before = queue.store.quad_count()
    with pytest.raises(LeaseLost):
        queue.heartbeat(job, GENEVA, first.claim.secret)
    with pytest.raises(LeaseLost, match="lease ran out"):
        queue.report(job, GENEVA, first.claim.secret, report("late"))
    assert queue.store.quad_count() == before
    assert queue.report(job, PARIS, second.claim.secret, report("fresh")).state == "done"
    described = queue.describe(job)
    assert [e["runner"] for e in described["executions"]] == [str(PARIS)]
    assert described["spent_attempts"] == 1


def test_heartbeat_keeps_the_lease_and_records_progress(queue: JobQueue, clock: Clock) -> None:
    queue_light_curves(queue.store, queue, 1)
    grant = queue.claim(GENEVA)
    for _ in range(3):
        clock.advance(LEASE / 2)
        queue.heartbeat(grant.claim.job, GENEVA, grant.claim.secret, progress=0.5)
    assert queue.claim(PARIS) is None  # still held after 1.5 leases
    claim = queue.record(grant.claim.job).claims[0]
    assert claim.progress == 0.5 and len(claim.lease_values) == 1
    with pytest.raises(InvalidRequest):
        queue.heartbeat(grant.claim.job, GENEVA, grant.claim.secret, progress=2)
    clock.advance(LEASE - 5)  # under the margin (15 s): too late to extend safely
    with pytest.raises(LeaseLost):
        queue.heartbeat(grant.claim.job, GENEVA, grant.claim.secret)


def test_reports_are_idempotent_and_fenced_by_runner_and_claim_token(queue: JobQueue) -> None:
    [job] = queue_light_curves(queue.store, queue, 1)
    grant = queue.claim(GENEVA)
    with pytest.raises(NotYourJob):
        queue.report(job, PARIS, grant.claim.secret, report())  # another runner with the stolen token
    with pytest.raises(NotYourJob):
        queue.report(job, PARIS, "made-up", report())
    with pytest.raises(InvalidRequest):
        queue.report(job, GENEVA, "", report())
    first = queue.report(job, GENEVA, grant.claim.secret, report())
    count = queue.store.quad_count()
    again = queue.report(job, GENEVA, grant.claim.secret, report())
    assert again.already and again.product == first.product and again.execution == first.execution
    assert queue.store.quad_count() == count
    with pytest.raises(LeaseLost):
        queue.report(job, GENEVA, grant.claim.secret, report("different bytes"))
    with pytest.raises(LeaseLost):
        queue.report(job, GENEVA, "wrong token of the right runner", report())
    assert queue.store.quad_count() == count


def test_unhandled_exception_is_retried_on_another_runner_until_none_is_left(queue: JobQueue) -> None:
    [job] = queue_light_curves(queue.store, queue, 1)
    crash = ResultReport.from_json({"outcome": "unhandled_exception", "duration_seconds": 2, "error_message": "boom"})
    for runner in (GENEVA, PARIS):
        grant = queue.claim(runner)
        assert grant is not None and grant.claim.job == job
        receipt = queue.report(job, runner, grant.claim.secret, crash)
        assert receipt.product is None
        assert queue.claim(runner) is None  # never the same runner again
    grant = queue.claim(ALICE_LAPTOP)
    receipt = queue.report(job, ALICE_LAPTOP, grant.claim.secret, crash)
    assert receipt.state == "failed"
    assert queue.claim(GENEVA) is None and queue.claim(ALICE_LAPTOP) is None
    assert len(queue.describe(job)["executions"]) == 3


def test_attempts_run_out_when_leases_keep_expiring(queue: JobQueue, clock: Clock) -> None:
    [job] = queue_light_curves(queue.store, queue, 1)
    for _ in range(3):
        assert queue.claim(GENEVA) is not None
        clock.advance(LEASE + 5)
    assert queue.claim(GENEVA) is None  # the winning bid saw 3 spent attempts and failed the job
    assert state_of(queue, job) == "failed"


def test_one_job_token_makes_one_claim_and_reports_only_that_job(queue: JobQueue) -> None:
    queue_light_curves(queue.store, queue, 2)
    tokens = TokenStore(queue.store, URIRef("urn:admin"))
    one = tokens.issue(GENEVA, URIRef("urn:admin"), one_job=True)
    other = tokens.issue(GENEVA, URIRef("urn:admin"), one_job=True)
    grant = queue.claim(GENEVA, one.iri, one_job=True)
    with pytest.raises(NotYourJob, match="one job"):
        queue.claim(GENEVA, one.iri, one_job=True)
    second = queue.claim(GENEVA, other.iri, one_job=True)
    with pytest.raises(NotYourJob, match="another job"):
        queue.report(second.claim.job, GENEVA, second.claim.secret, report(), token=one.iri, one_job=True)
    assert queue.report(grant.claim.job, GENEVA, grant.claim.secret, report(), token=one.iri, one_job=True)


def test_a_one_job_token_racing_itself_is_refused_by_its_action(queue: JobQueue) -> None:
    """Two requests with the same one-job token, in two replicas: both pass the early check, and the one
    that reads the other's claim withdraws its bid and is refused (403), rather than retried."""
    queue_light_curves(queue.store, queue, 2)
    tokens = TokenStore(queue.store, URIRef("urn:admin"))
    one = tokens.issue(GENEVA, URIRef("urn:admin"), one_job=True)
    place = queue.place_claim
    rivals = []

    def place_with_a_rival(job: URIRef, runner: URIRef, token: URIRef | None = None, now=None):
        placed = place(job, runner, token, now)
        if not rivals:  # the other replica's bid with the same token, on another job, lands meanwhile
            other = next(j for j in queue.candidates(runner, queue.clock()) if j != job)
            rivals.append(place(other, runner, token, now))
        return placed

    queue.place_claim = place_with_a_rival  # type: ignore[method-assign]
    before = queue.counters["withdrawn"]
    with pytest.raises(NotYourJob, match="one job"):
        queue.claim(GENEVA, one.iri, one_job=True)
    assert queue.counters["withdrawn"] == before + 1
    assert queue.token_claims(one.iri) == [rivals[0].iri]  # our bid is gone, the rival's stays


@pytest.mark.parametrize(("action", "reason", "raised"), [
    (Action.TOKEN_SPENT, "any words at all", NotYourJob),
    (Action.WITHDRAW, "this one-job token already made a claim", Contention),  # words do not steer the queue
])
def test_the_queue_dispatches_on_the_action_not_the_reason(queue: JobQueue, monkeypatch, action, reason,
                                                           raised) -> None:
    import kgsched.jobs.queue as queue_module

    [job] = queue_light_curves(queue.store, queue, 1)
    monkeypatch.setattr(queue_module, "decide_claim", lambda *args, **kwargs: Verdict(action, reason))
    before = queue.store.quad_count()
    with pytest.raises(raised):
        queue.claim(GENEVA)
    assert queue.store.quad_count() == before  # every bid was withdrawn
    assert queue.record(job).claims == ()


def test_a_verdict_a_step_cannot_act_on_is_a_programming_error(queue: JobQueue, monkeypatch) -> None:
    import kgsched.jobs.queue as queue_module

    queue_light_curves(queue.store, queue, 1)
    monkeypatch.setattr(queue_module, "decide_claim", lambda *args, **kwargs: Verdict(Action.ALREADY, "recorded"))
    before = queue.store.quad_count()
    with pytest.raises(AssertionError, match="already"):
        queue.claim(GENEVA)
    assert queue.store.quad_count() == before


def test_withdrawn_bids_leave_nothing_behind(queue: JobQueue) -> None:
    [job] = queue_light_curves(queue.store, queue, 1)
    held = queue.claim(GENEVA)
    before = queue.store.quad_count()
    placed = queue.place_claim(job, PARIS)
    verdict, _ = queue.check_claim(placed)
    assert verdict.action == "withdraw"
    queue.withdraw(placed)
    assert queue.store.quad_count() == before
    assert queue.record(job).claims[0].iri == held.claim.iri


def test_claim_answers_contention_when_every_bid_collides(store: Store, clock: Clock) -> None:
    load_federation(store)
    queue = JobQueue(store, QueueSettings(claim_rounds=3, backoff_seconds=0), clock=clock, sleep=lambda _s: None)
    [job] = queue_light_curves(store, queue, 1)
    rival = queue.place_claim(job, PARIS)  # a bid from another replica that never resolves
    with pytest.raises(Contention):
        queue.claim(GENEVA)
    queue.withdraw(rival)
    assert queue.claim(GENEVA) is not None


# --------------------------------------------------------------------------------------------------
# Every interleaving of the protocol's steps
# --------------------------------------------------------------------------------------------------

Step = Callable[[], None]


def interleavings(*sequences: list[str]) -> list[list[str]]:
    """All merges of the sequences that keep each one's own order."""
    labels = [f"{i}:{step}" for i, seq in enumerate(sequences) for step in seq]
    result = []
    for order in itertools.permutations(range(len(labels))):
        merged = [labels[i] for i in order]
        if all([m for m in merged if m.startswith(f"{i}:")] == [f"{i}:{s}" for s in seq]
               for i, seq in enumerate(sequences)):
            result.append(merged)
    return [list(x) for x in dict.fromkeys(tuple(m) for m in result)]


def run_bids(queue: JobQueue, job: URIRef, runners: list[URIRef], order: list[str]) -> list[int]:
    """Drive bids step by step (place, check, then hold or withdraw); returns who held."""
    placed: dict[int, object] = {}
    verdicts: dict[int, object] = {}
    holders = []
    for label in order:
        who, step = int(label.split(":")[0]), label.split(":")[1]
        if step == "place":
            placed[who] = queue.place_claim(job, runners[who])
        elif step == "check":
            verdicts[who] = queue.check_claim(placed[who])  # type: ignore[arg-type]
        else:
            verdict, record = verdicts[who]  # type: ignore[misc]
            if verdict.action == "hold":
                queue.hold(placed[who], record)  # type: ignore[arg-type]
                holders.append(who)
            else:
                queue.withdraw(placed[who])  # type: ignore[arg-type]
    return holders


def test_two_bids_in_every_interleaving_never_both_hold(queue: JobQueue) -> None:
    orders = interleavings(["place", "check", "act"], ["place", "check", "act"])
    assert len(orders) == 20
    jobs = queue_light_curves(queue.store, queue, len(orders))
    outcomes = set()
    for job, order in zip(jobs, orders, strict=True):
        holders = run_bids(queue, job, [GENEVA, PARIS], order)
        assert len(holders) <= 1, order
        outcomes.add(len(holders))
        live = [c for c in queue.record(job).claims if c.live(queue.clock())]
        assert len(live) == len(holders)  # losers withdrew; a holder's claim stays
    assert outcomes == {0, 1}  # sequential orders have a winner; overlapping ones may both back off


def test_three_bids_in_every_interleaving_never_two_hold(embedded_store: Store, clock: Clock) -> None:
    """90 interleavings × 9 steps, on the embedded store (two bids run on both stores above)."""
    store = embedded_store
    load_federation(store)
    queue = JobQueue(store, QueueSettings(), clock=clock)
    orders = interleavings(["place", "check"], ["place", "check"], ["place", "check"])
    assert len(orders) == 90
    jobs = queue_light_curves(store, queue, len(orders))
    for job, order in zip(jobs, orders, strict=True):
        order = order + ["0:act", "1:act", "2:act"]
        assert len(run_bids(queue, job, [GENEVA, PARIS, ALICE_LAPTOP], order)) <= 1, order


def test_a_late_report_and_a_new_bid_never_both_win(queue: JobQueue, clock: Clock) -> None:
    """The holder's lease has run out for the bidder (its clock is past lease + skew) while the holder's
    own check still sees it live: whatever the order of the four writes and reads, the result is not
    accepted while another runner holds the job."""
    orders = interleavings(["mark", "check"], ["place", "check"])
    jobs = queue_light_curves(queue.store, queue, len(orders))
    holder_grants = [queue.claim(GENEVA) for _ in jobs]
    wins = set()
    for grant, order in zip(holder_grants, orders, strict=True):
        job, claim = grant.claim.job, grant.claim.iri
        digest, outcome = report().digest(), KS.Success
        accepted = held = False
        mark = bid = verdict = None
        for label in order:
            who, step = label.split(":")
            if who == "0":  # the late holder's service, whose clock says the lease still runs
                clock.now = utc(LEASE - 1)
                if step == "mark":
                    mark = queue.mark_report(claim, digest, outcome)
                else:
                    verdict, _ = queue.check_report(job, claim, digest, outcome)
                    accepted = verdict.action == "accept"
                    if not accepted:
                        queue.unmark_report(mark)
            else:  # the bidder's service, whose clock is past lease + skew
                clock.now = utc(LEASE + 3)
                if step == "place":
                    bid = queue.place_claim(job, PARIS)
                else:
                    bid_verdict, record = queue.check_claim(bid)
                    held = bid_verdict.action == "hold"
                    if held:
                        queue.hold(bid, record)
                    else:
                        queue.withdraw(bid)
        assert not (accepted and held), order
        wins.add((accepted, held))
    assert (True, False) in wins and (False, True) in wins


def test_the_exactly_once_checker_catches_duplicates() -> None:
    jobs = ["a", "b", "c"]
    assert check_exactly_once(["a", "b", "c"], ["a", "b", "c"], jobs) == []
    assert check_exactly_once(["a", "b", "c", "b"], ["a", "b", "c"], jobs) == ["b claimed 2 times"]
    assert check_exactly_once(["a", "b", "c"], ["a", "b", "c", "c"], jobs) == ["c reported 2 times"]
    assert check_exactly_once(["a", "b"], ["a", "b"], jobs) == ["c claimed 0 times", "c reported 0 times"]
    assert check_exactly_once(["a", "a", "b", "c"], ["a", "b", "c"], jobs, abandoned={"a": 1}) == []


def test_job_graph_writes_are_exact_triples(queue: JobQueue) -> None:
    """Nothing is pasted: a literal full of SPARQL syntax goes through the report and comes back equal."""
    [job] = queue_light_curves(queue.store, queue, 1)
    grant = queue.claim(GENEVA)
    nasty = '"} ; DROP ALL ; INSERT DATA { <a:b> <a:b> "x'
    queue.report(job, GENEVA, grant.claim.secret, ResultReport.from_json(
        {"outcome": "unhandled_exception", "duration_seconds": 0, "error_message": nasty}))
    rows = queue.store.select("SELECT ?m WHERE { GRAPH ?g { ?e <https://w3id.org/kgsched#errorMessage> ?m } }",
                              [{"g": PROVENANCE_GRAPH}])
    assert [r["m"] for r in rows] == [Literal(nasty)]
    assert queue.store.ask("ASK { GRAPH ?g { ?j a ?t } }", [{"g": JOBS_GRAPH, "t": KS.Job, "j": job}])
    assert RDF.type is not None

"""The planner's words: the sentences a plan gives for each decision, and the helpers that write them.

Every reason a step or a refused product carries is written here, so the cost model and the decision
pass read as arithmetic, and a change of wording is one place. Pure: strings from values, no store.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from rdflib import URIRef

from kgsched.namespaces import KS, KSID

if TYPE_CHECKING:  # types only: the rules never import the modules that query the store
    from kgsched.planning.facts import DatasetInfo, Eligibility, ProductInfo
    from kgsched.planning.model import Offer

#: IRIs kgsched names by a hash: their first 12 characters tell them apart for a reader
_HASH_NAMED = ((str(KSID["expression/"]), "expression"), (str(KSID["product/"]), "product"))


@lru_cache(maxsize=4096)
def short(iri: URIRef | str | None) -> str:
    """The last path segment of an IRI, for sentences people read. (Cached: a plan's reasons name the
    same runners and sites in step after step.)"""
    if iri is None:
        return "?"
    text = str(iri).rstrip("/")
    for base, kind in _HASH_NAMED:
        if text.startswith(base):
            return f"{kind} {text[len(base):][:12]}"
    return text.rsplit("#", 1)[-1].rsplit("/", 1)[-1]


def human_bytes(size: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(size) < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def human_seconds(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "never"
    if seconds < 1:
        return f"{seconds:.3f} s"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def describe_product(product: ProductInfo) -> str:
    outcome = "analysis exception" if product.outcome == KS.AnalysisException else "result"
    return f"{outcome} {short(product.iri)} ({human_bytes(product.size_bytes)} at {short(product.site)})"


def where(site_names: Iterable[str]) -> str:
    """Where a value is needed: "at A and B", or "where it is needed" when no site is named."""
    sites = sorted(site_names)
    return "where it is needed" if not sites else "at " + " and ".join(sites)


# -- why a cached product is not used ------------------------------------------------------------

def expired(product: ProductInfo) -> str:
    return f"{short(product.iri)} expired at {product.expires.isoformat()}"


def too_old(product: ProductInfo, max_age_seconds: float) -> str:
    return f"{short(product.iri)} is older than the maximum age of {human_seconds(max_age_seconds)}"


def unregistered_maker(product: ProductInfo) -> str:
    return f"{short(product.iri)} was not made by a registered runner, so it is not trusted"


def untrusted_owner(product: ProductInfo) -> str:
    return f"{short(product.iri)} was made by {short(product.runner)} of {short(product.owner)}, whom the request " \
           "does not trust"


def unknown_site(product: ProductInfo) -> str:
    return f"{short(product.iri)} is stored at an unknown site"


# -- why no runner can compute an expression -------------------------------------------------------

def dataset_not_registered(dataset: URIRef) -> str:
    return f"dataset {short(dataset)} is not registered"


def no_reader(workflow: URIRef, able: int, dataset: DatasetInfo) -> str:
    how = (f"it never leaves {short(dataset.site)} and no able runner there may read it" if dataset.restricted
           else "no able runner holds it or may read it")
    return f"{able} runner(s) could run {short(workflow)}, but none can use dataset {short(dataset.iri)}: {how}"


def no_able_runner(workflow: URIRef, rows: Sequence[Eligibility]) -> str:
    """Why no registered runner is able and allowed: how many pass each check in turn."""
    if not rows:
        return "no runner is registered"
    checks = [("support its implementation kind", "supports_kind"), ("have enough cores", "enough_cores"),
              ("have enough memory", "enough_memory"), ("trust one of its verifiers", "trusts_verifier"),
              ("serve the requester", "serves_requester")]
    remaining = list(rows)
    parts = [f"{len(rows)} runner(s) registered"]
    for words, attribute in checks:
        remaining = [r for r in remaining if getattr(r, attribute)]
        parts.append(f"{len(remaining)} {words}")
        if not remaining:
            break
    text = "no runner is able and allowed to run " + short(workflow) + ": " + ", ".join(parts)
    if all(not r.trusts_verifier for r in rows) and any(r.supports_kind for r in rows):
        text += " (is the workflow verified by anyone the runners trust?)"
    return text


# -- the step's reason -----------------------------------------------------------------------------

def not_needed_but_cached(product: ProductInfo, consumers: str) -> str:
    return f"cached {describe_product(product)}; not needed now, since {consumers} is reused"


def not_needed(consumers: str) -> str:
    return f"not needed: {consumers} is reused"


def reuse(product: ProductInfo, where: str, reuse_cost: float, recompute_cost: float | None = None,
          runner: URIRef | None = None) -> str:
    why = f"cached {describe_product(product)} reused: having it {where} takes {human_seconds(reuse_cost)}"
    if runner is not None and recompute_cost is not None:
        why += f", recomputing would take {human_seconds(recompute_cost)} on {short(runner)}"
    return why


def recompute(offer: Offer, *, forced: bool, product: ProductInfo | None, reuse_cost: float, recompute_cost: float,
              refused: Sequence[str], preferred: bool, able: int, weighed: int, where: str) -> str:
    if forced:
        head = "recompute was forced"
    elif product is not None:
        head = (f"recomputing ({human_seconds(recompute_cost)}) beats moving cached "
                f"{describe_product(product)} {where} ({human_seconds(reuse_cost)})")
    elif refused:
        head = "no usable cached product (" + "; ".join(refused) + ")"
    else:
        head = "not cached"
    preference = " (the request's preferred runner)" if preferred else ""
    return (f"{head}; {short(offer.runner)}{preference} at {short(offer.site)} chosen from {able} able runner(s) "
            f"({weighed} site offer(s) weighed): finish in {human_seconds(offer.finish_seconds)} = queue "
            f"{human_seconds(offer.queue_seconds)} + inputs there in {human_seconds(offer.transfer_seconds)} "
            f"({human_bytes(offer.bytes_to_move)} to move) + run {human_seconds(offer.duration_seconds)} "
            f"({offer.duration_source})")


def cannot(*, forced: bool, cached: bool, refused: Sequence[str], pool_reason: str, blocked: Sequence[URIRef]) -> str:
    reasons = []
    if forced and cached:
        reasons.append("recompute was forced")
    elif refused:
        reasons.append("no usable cached product (" + "; ".join(refused) + ")")
    else:
        reasons.append("no cached product")
    if pool_reason:
        reasons.append(pool_reason)
    elif blocked:
        reasons.append("input " + ", ".join(short(b) for b in blocked) + " cannot be computed")
    else:
        reasons.append("no able runner can receive its inputs")
    return "; ".join(reasons)

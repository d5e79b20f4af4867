"""Light curves, spectra and their combination from a photon event list.

Event lists are CSV files with ``#`` header lines (instrument, time system) and the columns
``time_s,energy_kev,pixel``: arrival time in seconds since the start of the observation, the
photon's energy, and the detector pixel that saw it.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from kgsched.analysis import AnalysisException


def _read_events(path: str | Path) -> tuple[list[float], list[float]]:
    times, energies = [], []
    with open(path, newline="") as handle:
        rows = csv.reader(line for line in handle if not line.startswith("#"))
        header = next(rows)
        t_col, e_col = header.index("time_s"), header.index("energy_kev")
        for row in rows:
            times.append(float(row[t_col]))
            energies.append(float(row[e_col]))
    return times, energies


def light_curve(events: str, energy_min_kev: float, energy_max_kev: float, time_bin_s: float = 100.0) -> dict:
    """Counts per time bin of the photons in [energy_min_kev, energy_max_kev), with Poisson errors."""
    if energy_max_kev <= energy_min_kev:
        raise AnalysisException(f"empty energy band [{energy_min_kev}, {energy_max_kev}) keV")
    times, energies = _read_events(events)
    selected = [t for t, e in zip(times, energies, strict=True) if energy_min_kev <= e < energy_max_kev]
    if not selected:
        raise AnalysisException(f"no photons between {energy_min_kev} and {energy_max_kev} keV")
    start = min(times)
    n_bins = int(math.ceil((max(times) - start) / time_bin_s)) or 1
    counts = [0] * n_bins
    for t in selected:
        counts[min(int((t - start) / time_bin_s), n_bins - 1)] += 1
    return {
        "kind": "light curve",
        "energy_band_kev": [energy_min_kev, energy_max_kev],
        "time_bin_s": time_bin_s,
        "time_s": [start + (i + 0.5) * time_bin_s for i in range(n_bins)],
        "rate_cts_per_s": [c / time_bin_s for c in counts],
        "rate_error": [math.sqrt(c) / time_bin_s for c in counts],
        "total_counts": len(selected),
    }


def spectrum_fit(events: str, n_bins: int) -> dict:
    """Histogram of energies in logarithmic bins and a power-law fit (least squares in log space)."""
    _, energies = _read_events(events)
    energies = [e for e in energies if e > 0]
    if len(energies) < 10 or n_bins < 2:
        raise AnalysisException("too few photons or bins to fit a spectrum")
    lo, hi = math.log10(min(energies)), math.log10(max(energies))
    edges = [10 ** (lo + (hi - lo) * i / n_bins) for i in range(n_bins + 1)]
    counts = [0] * n_bins
    for e in energies:
        counts[min(int((math.log10(e) - lo) / (hi - lo) * n_bins), n_bins - 1)] += 1
    points = [(math.log10(math.sqrt(edges[i] * edges[i + 1])), math.log10(c / (edges[i + 1] - edges[i])))
              for i, c in enumerate(counts) if c > 0]
    if len(points) < 2:
        raise AnalysisException("the spectrum has fewer than two populated bins")
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / sum((x - mean_x) ** 2 for x, _ in points)
    return {"kind": "spectrum", "bin_edges_kev": edges, "counts": counts, "photon_index": -slope,
            "normalisation_log10": mean_y - slope * mean_x}


def combine_light_curves(soft: str, hard: str) -> dict:
    """Sum of two light curves on the soft one's grid, and the hardness ratio (hard - soft)/(hard + soft)."""
    a = json.loads(Path(soft).read_text())
    b = json.loads(Path(hard).read_text())
    if "rate_cts_per_s" not in a or "rate_cts_per_s" not in b:
        raise AnalysisException("an input is not a light curve (an analysis exception upstream?)")
    n = min(len(a["rate_cts_per_s"]), len(b["rate_cts_per_s"]))
    total = [a["rate_cts_per_s"][i] + b["rate_cts_per_s"][i] for i in range(n)]
    hardness = [(b["rate_cts_per_s"][i] - a["rate_cts_per_s"][i]) / t if t else 0.0 for i, t in enumerate(total)]
    return {"kind": "combined light curve", "time_s": a["time_s"][:n], "rate_cts_per_s": total,
            "hardness_ratio": hardness, "bands_kev": [a["energy_band_kev"], b["energy_band_kev"]]}


def fail_on_purpose(events: str) -> dict:
    """A workflow with a bug: used by the fault tests (an unhandled exception, retried elsewhere)."""
    raise ZeroDivisionError("this workflow divides by zero")


def slow_light_curve(events: str, energy_min_kev: float, energy_max_kev: float, seconds: float) -> dict:
    """A light curve that takes its time (the fault tests kill a runner in the middle of it)."""
    import time

    time.sleep(seconds)
    return light_curve(events, energy_min_kev, energy_max_kev)


def fails_where_marked(events: str, energy_min_kev: float, energy_max_kev: float) -> dict:
    """Crashes on runners started with KGSCHED_EXAMPLE_BROKEN set (a broken installation there)."""
    import os

    if os.environ.get("KGSCHED_EXAMPLE_BROKEN"):
        raise ImportError("numpy is broken on this machine (simulated)")
    return light_curve(events, energy_min_kev, energy_max_kev)


def variability(light_curve: str) -> dict:
    """How variable a light curve is: mean rate, χ² of a constant fit per degree of freedom, fractional
    excess variance and the brightest bin. The same analysis runs behind Frank's web service
    (kgsched_examples.ogc_processes), so both implementations give the same numbers."""
    return variability_of(json.loads(Path(light_curve).read_text()))


def variability_of(curve: dict) -> dict:
    if "rate_cts_per_s" not in curve:
        raise AnalysisException("the input is not a light curve (an analysis exception upstream?)")
    rates, errors = curve["rate_cts_per_s"], curve["rate_error"]
    if len(rates) < 2:
        raise AnalysisException("a light curve of fewer than two bins has no variability to measure")
    mean = sum(rates) / len(rates)
    weighted = [(r - mean) ** 2 / e ** 2 for r, e in zip(rates, errors, strict=True) if e > 0]
    chi2_dof = sum(weighted) / max(1, len(weighted) - 1)
    variance = sum((r - mean) ** 2 for r in rates) / (len(rates) - 1)
    noise = sum(e ** 2 for e in errors) / len(errors)
    excess = max(0.0, variance - noise)
    peak = max(range(len(rates)), key=rates.__getitem__)
    return {"kind": "variability", "mean_rate_cts_per_s": mean, "chi2_per_dof": chi2_dof,
            "fractional_variability": math.sqrt(excess) / mean if mean > 0 else 0.0,
            "peak_time_s": curve["time_s"][peak], "peak_rate_cts_per_s": rates[peak], "bins": len(rates)}

"""Command-line Lomb-Scargle periodogram of a light curve (the unverified example workflow).

    python -m kgsched_examples.periodogram --input LC.json --min-period 10 --output OUT.json

Exit status 65 means an analysis exception (the message on stderr), as kgsched's command-line
runner convention says.
"""

from __future__ import annotations

import argparse
import json
import math
import sys


def periodogram(times: list[float], rates: list[float], periods: list[float]) -> list[float]:
    mean = sum(rates) / len(rates)
    centred = [r - mean for r in rates]
    variance = sum(c * c for c in centred) / max(1, len(rates) - 1) or 1.0
    power = []
    for period in periods:
        w = 2 * math.pi / period
        tau = math.atan2(sum(math.sin(2 * w * t) for t in times), sum(math.cos(2 * w * t) for t in times)) / (2 * w)
        c = [math.cos(w * (t - tau)) for t in times]
        s = [math.sin(w * (t - tau)) for t in times]
        cc, ss = sum(x * x for x in c) or 1.0, sum(x * x for x in s) or 1.0
        yc = sum(y * x for y, x in zip(centred, c, strict=True))
        ys = sum(y * x for y, x in zip(centred, s, strict=True))
        power.append((yc * yc / cc + ys * ys / ss) / (2 * variance))
    return power


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True)
    parser.add_argument("--min-period", type=float, required=True)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    with open(args.input) as handle:
        curve = json.load(handle)
    times, rates = curve.get("time_s", []), curve.get("rate_cts_per_s", [])
    if len(times) < 4:
        print("fewer than four points: no periodogram", file=sys.stderr)
        return 65
    span = times[-1] - times[0]
    periods = [args.min_period * (span / args.min_period) ** (i / 49) for i in range(50)]
    with open(args.output, "w") as handle:
        json.dump({"kind": "periodogram", "period_s": periods, "power": periodogram(times, rates, periods)}, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())

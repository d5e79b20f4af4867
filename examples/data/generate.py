"""Generates the demo federation's data: an INTEGRAL/ISGRI-like photon event list and SPI-ACS-like
count rates. Synthetic but shaped like the real thing: a power-law source spectrum over a flat
background, a flare, instrumental dead-time gaps; rates with orbital modulation and a short GRB.

    python examples/data/generate.py      # rewrites the two files next to this script

The files are committed (their sizes and checksums are in examples/datasets.ttl); this script is
how they were made (seeded, so it reproduces them with the same Python).
"""

from __future__ import annotations

import hashlib
import math
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent


def events(path: Path, seed: int = 2670) -> None:
    rng = random.Random(seed)
    duration = 10_000.0
    lines = ["# instrument: INTEGRAL/ISGRI (synthetic)", "# revolution: 2670",
             "# time system: TT, seconds since 2023-06-01T00:00:00", "time_s,energy_kev,pixel"]
    rows = []
    for _ in range(15_000):  # background: flat in time, steep in energy
        rows.append((rng.uniform(0, duration), 18 * (1 - rng.random()) ** (-1 / 2.5), rng.randrange(16384)))
    for _ in range(9_000):  # source: photon index 2, brighter during a flare at t = 6,000 s
        t = rng.gauss(6000, 400) if rng.random() < 0.4 else rng.uniform(0, duration)
        if 0 <= t < duration:
            rows.append((t, 20 * (1 - rng.random()) ** (-1 / 1.0), rng.randrange(16384)))
    rows = [r for r in rows if not 3000 <= r[0] < 3200 and r[1] < 1000]  # a dead-time gap, the band limit
    rows.sort()
    lines += [f"{t:.4f},{e:.2f},{p}" for t, e, p in rows]
    path.write_text("\n".join(lines) + "\n")


def rates(path: Path, seed: int = 2023) -> None:
    rng = random.Random(seed)
    lines = ["# instrument: INTEGRAL/SPI-ACS (synthetic, restricted: never leaves Paris)",
             "# time system: TT, seconds since 2023-03-15T00:00:00; 1 s bins", "time_s,energy_kev,pixel"]
    for t in range(0, 20_000, 2):
        base = 80_000 + 5_000 * math.sin(2 * math.pi * t / 7200)
        burst = 60_000 * math.exp(-((t - 12_345) / 20) ** 2)
        counts = max(0, int(rng.gauss(base + burst, math.sqrt(base + burst))))
        lines.append(f"{t:.1f},{80 + counts % 7900:.1f},{counts}")
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    for name, make in [("isgri-events-rev2670.csv", events), ("spi-acs-rates-2023.csv", rates)]:
        target = HERE / name
        make(target)
        data = target.read_bytes()
        print(f"{name}: {len(data)} bytes, sha256:{hashlib.sha256(data).hexdigest()}")

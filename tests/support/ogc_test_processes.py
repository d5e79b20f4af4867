"""pygeoapi process plugins for the tests (served by kgsched.dev.ogc_server in a session fixture).

``rate-total`` sums a light curve's rates (times an optional scale); ``flaky-rate-total`` does the
same but fails the first time it sees a given light curve in this server process — the service
answers a failed job, which kgsched records as an unhandled exception and retries.
"""

from __future__ import annotations

import hashlib
import json
import threading

from pygeoapi.process.base import BaseProcessor, ProcessorExecuteError

_SEEN: set[str] = set()
_LOCK = threading.Lock()


def metadata(process_id: str) -> dict:
    return {
        "version": "1.0.0", "id": process_id, "title": {"en": process_id},
        "description": {"en": "Sum of a light curve's rates, times a scale."},
        "jobControlOptions": ["sync-execute", "async-execute"], "keywords": ["test"],
        "inputs": {
            "lightcurve": {"title": "Light curve", "schema": {"type": "object"}, "minOccurs": 1, "maxOccurs": 1},
            "scale": {"title": "Scale", "schema": {"type": "number"}, "minOccurs": 0, "maxOccurs": 1},
        },
        "outputs": {"total": {"title": "Total", "schema": {"type": "object", "contentMediaType": "application/json"}}},
        "example": {"inputs": {"lightcurve": {"rate_cts_per_s": [1, 2]}, "scale": 2}},
    }


def total(data: dict) -> dict:
    curve = data.get("lightcurve")
    if not isinstance(curve, dict) or "rate_cts_per_s" not in curve:
        raise ProcessorExecuteError("input 'lightcurve' must be a light curve")
    scale = float(data.get("scale", 1.0))
    return {"kind": "rate total", "total": round(sum(curve["rate_cts_per_s"]) * scale, 9),
            "bins": len(curve["rate_cts_per_s"])}


class RateTotal(BaseProcessor):
    def __init__(self, processor_def: dict) -> None:
        super().__init__(processor_def, metadata("rate-total"))

    def execute(self, data: dict, outputs: dict | None = None) -> tuple[str, dict]:
        return "application/json", total(data)


class FlakyRateTotal(BaseProcessor):
    def __init__(self, processor_def: dict) -> None:
        super().__init__(processor_def, metadata("flaky-rate-total"))

    def execute(self, data: dict, outputs: dict | None = None) -> tuple[str, dict]:
        key = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
        with _LOCK:
            first = key not in _SEEN
            _SEEN.add(key)
        if first:
            raise ProcessorExecuteError("the disk of the processing node is full (simulated; try again)")
        return "application/json", total(data)

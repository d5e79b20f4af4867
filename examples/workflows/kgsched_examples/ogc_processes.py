"""Frank's web service: the light-curve variability analysis as an OGC API – Processes process.

This module is a pygeoapi process plugin (``kgsched.dev.ogc_server`` serves it in the demo); a real
contributor would run the same behind their own pygeoapi. It computes what
``kgsched_examples.astro.variability`` does, from a light curve sent inline as JSON.
"""

from __future__ import annotations

from pygeoapi.process.base import BaseProcessor, ProcessorExecuteError

from kgsched.analysis import AnalysisException
from kgsched_examples.astro import variability_of

PROCESS_METADATA = {
    "version": "1.0.0",
    "id": "light-curve-variability",
    "title": {"en": "Light-curve variability"},
    "description": {"en": "Mean rate, chi-square of a constant fit, fractional variability and peak of a light curve."},
    "jobControlOptions": ["sync-execute", "async-execute"],
    "keywords": ["light curve", "variability", "INTEGRAL"],
    "inputs": {
        "lightcurve": {
            "title": "Light curve", "description": "A kgsched light curve (time_s, rate_cts_per_s, rate_error).",
            "schema": {"type": "object", "contentMediaType": "application/json"}, "minOccurs": 1, "maxOccurs": 1,
        },
    },
    "outputs": {
        "variability": {"title": "Variability", "schema": {"type": "object", "contentMediaType": "application/json"}},
    },
    "example": {"inputs": {"lightcurve": {"time_s": [50, 150], "rate_cts_per_s": [1, 2], "rate_error": [0.1, 0.1]}}},
}


class LightCurveVariability(BaseProcessor):
    def __init__(self, processor_def: dict) -> None:
        super().__init__(processor_def, PROCESS_METADATA)

    def execute(self, data: dict, outputs: dict | None = None) -> tuple[str, dict]:
        curve = data.get("lightcurve")
        if not isinstance(curve, dict):
            raise ProcessorExecuteError("input 'lightcurve' must be a JSON light curve")
        try:
            return "application/json", variability_of(curve)
        except AnalysisException as exc:
            raise ProcessorExecuteError(f"AnalysisException: {exc}") from exc

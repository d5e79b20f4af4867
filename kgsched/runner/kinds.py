"""The implementation kinds a runner tells apart, as the IRIs a claim names them by (stdlib only)."""

from __future__ import annotations

from kgsched.vocabulary import KS_IRI

PYTHON_CALLABLE = KS_IRI + "PythonCallable"
COMMAND_LINE = KS_IRI + "CommandLine"
NOTEBOOK = KS_IRI + "Notebook"
WEB_SERVICE = KS_IRI + "WebService"

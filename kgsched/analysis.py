"""What workflow authors import: the exception that means "a scientific no-result".

Raise :class:`AnalysisException` when the analysis ran correctly but has nothing to show — no events
in the requested time range, a fit that the data cannot constrain. kgsched records it as a valid,
cacheable product (the same question gets the same answer next time without recomputing), unlike
any other exception, which is an unhandled failure: reported with its traceback, never cached, and
retried on another runner.
"""

from __future__ import annotations


class AnalysisException(Exception):  # noqa: N818 - the name scientists know from the ODA platform
    """The analysis has a well-defined empty answer; the message says why."""

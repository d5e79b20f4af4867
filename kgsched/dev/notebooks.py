"""What the notebooks in ``notebooks/`` share: a federation of their own, and SPARQL results as tables.

Each notebook starts ``kgsched serve`` on a store in a temporary directory (through
kgsched.dev.federation, the processes ``kgsched demo`` uses), so it runs top to bottom on any machine
and leaves nothing behind: the service and any runner agents are stopped when the notebook's kernel
exits, even if a cell failed. Traces are imported before the service starts, since the embedded
store belongs to one process at a time.
"""

from __future__ import annotations

import atexit
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kgsched.dev.federation import EXAMPLES, FED, Federation
from kgsched.dev.parties import party_registrations
from kgsched.graph.binding import Rows, bind
from kgsched.namespaces import FOAF, KS, KSID, PROV

ALICE = FED + "person/alice"
TRACES = EXAMPLES / "wfcommons"


def start_federation(*, traces: Iterable[str] = (), register_runners: bool = False,
                     runner_agents: Iterable[str] = ()) -> Federation:
    """The service on a fresh temporary store, with the example people, sites, datasets and workflows.

    ``traces``: WfCommons sample traces (file names in examples/wfcommons) imported first;
    ``register_runners``: register examples/runners.ttl as descriptions only (nothing runs jobs);
    ``runner_agents``: start these example runners as real agents that claim and run jobs."""
    workdir = Path(tempfile.mkdtemp(prefix="kgsched-notebook-"))
    for trace in traces:
        subprocess.run([sys.executable, "-m", "kgsched", "--store", str(workdir / "store"), "import-wfcommons",
                        str(TRACES / trace)], check=True, capture_output=True)
    federation = Federation(workdir)
    atexit.register(_stop, federation, workdir)
    federation.start_service()
    federation.register_base()
    if register_runners:
        runners = EXAMPLES / "runners.ttl"  # each runner registered by its owner (docs/authority.md)
        for owner, turtle in party_registrations([(runners.name, runners.read_bytes())]):
            federation.admin.register(turtle, as_registrant=str(owner))
    for name in runner_agents:
        federation.start_runner(name)
    return federation


def _stop(federation: Federation, workdir: Path) -> None:
    import shutil

    federation.stop()
    shutil.rmtree(workdir, ignore_errors=True)


def stop_federation(federation: Federation) -> None:
    """Stop the service and the runners now (the notebook's last cell)."""
    _stop(federation, federation.workdir)


def sparql_table(endpoint: str, query: str, values: Rows | Mapping[str, Any] | None = None):
    """A SELECT through the SPARQL endpoint with SPARQLWrapper, as a pandas DataFrame of plain values.

    ``values`` are bound as a checked VALUES block (kgsched.graph.binding), never pasted into the text."""
    import pandas as pd
    from SPARQLWrapper import JSON, POST, SPARQLWrapper

    client = SPARQLWrapper(endpoint)
    client.setMethod(POST)
    client.setQuery(bind(query, values))
    client.setReturnFormat(JSON)
    result = client.queryAndConvert()
    columns = result["head"]["vars"]
    rows = [{name: _plain(row.get(name)) for name in columns} for row in result["results"]["bindings"]]
    return pd.DataFrame(rows, columns=columns)


def _plain(cell: Mapping[str, str] | None) -> Any:
    """A SPARQL JSON result cell as a Python value: numbers as numbers, IRIs shortened for reading."""
    if cell is None:
        return None
    value = cell["value"]
    datatype = cell.get("datatype", "")
    if datatype.endswith(("#integer", "#int", "#long")):
        return int(value)
    if datatype.endswith(("#decimal", "#double", "#float")):
        return float(value)
    if datatype.endswith("#boolean"):
        return value == "true"
    if cell["type"] == "uri":
        return short(value)
    return value


def short(iri: str) -> str:
    """An IRI without the example federation's and kgsched's long prefixes, for tables and plots."""
    for prefix in (FED, str(KS), str(KSID["wfcommons/"]), str(KSID), str(PROV), str(FOAF)):
        if iri.startswith(prefix):
            return iri[len(prefix):]
    return iri


def show_figure(figure: Any) -> None:
    """Show a matplotlib figure as a PNG in the notebook and close it. Works with the Agg backend,
    so a notebook draws the same figures whether run in Jupyter or headless (the tests)."""
    import io

    import matplotlib.pyplot as plt
    from IPython.display import Image, display

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    display(Image(data=buffer.getvalue(), format="png"))

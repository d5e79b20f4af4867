"""Child process that executes one notebook workflow: ``python -m kgsched.runner.notebook < spec.json``.

The convention (papermill's, as the ODA platform's notebooks use it): the notebook's cell tagged
``parameters`` assigns a default to every parameter, including ``output`` — the path where the
notebook writes its product (a plot, a table, a JSON document). The runner injects the expression's
arguments (datasets as local paths) and its own ``output`` path; the product is the file the
notebook wrote there. The executed notebook (with its outputs) is kept too and stored beside the
product, so a reader can see how the product was made.

Only this child imports papermill (and so Jupyter): the runner agent stays light. Outcomes, as for
callables (kgsched.runner.call): exit 0 — the product was written; 65 — a
``kgsched.analysis.AnalysisException`` was raised inside the notebook (a JSON document saying why is
the product: a valid, cacheable no-result); 70 — anything else (the reason on stderr).

Recognising the AnalysisException exactly: a first cell (removed from the stored notebook again)
registers an IPython handler for ``kgsched.analysis.AnalysisException`` that writes a marker file
before showing the traceback; an exception that merely has the same name does not write it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from kgsched.runner.call import EXIT_ANALYSIS_EXCEPTION, EXIT_UNHANDLED, write_product

PARAMETERS_TAG = "parameters"
PRELUDE_TAG = "kgsched-prelude"
OUTPUT_PARAMETER = "output"

_PRELUDE = '''\
def _kgsched_prelude(marker):
    import json
    from kgsched.analysis import AnalysisException

    def handler(shell, etype, value, tb, tb_offset=None):
        with open(marker, "w") as out:
            json.dump({"message": str(value)}, out)
        return shell.InteractiveTB.structured_traceback(etype, value, tb, tb_offset=tb_offset)

    get_ipython().set_custom_exc((AnalysisException,), handler)
_kgsched_prelude(%r)
del _kgsched_prelude
'''


class NotebookError(Exception):
    """The notebook cannot be run as a workflow (missing, not a notebook, no parameters cell, ...)."""


def tags(cell: dict[str, Any]) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def check_parameters(notebook: dict[str, Any], path: Path, names: list[str], declared: set[str]) -> None:
    """A clear error for a notebook without a ``parameters`` cell, or one not declaring an argument."""
    if not any(PARAMETERS_TAG in tags(cell) for cell in notebook.get("cells", [])):
        raise NotebookError(
            f"notebook {path.name} has no cell tagged '{PARAMETERS_TAG}': tag the cell that assigns the "
            f"parameters' defaults (papermill's convention), including '{OUTPUT_PARAMETER}', the path where "
            "the notebook writes its product")
    missing = [name for name in names if name not in declared]
    if missing:
        raise NotebookError(
            f"notebook {path.name} does not declare {', '.join(repr(m) for m in missing)} in its "
            f"'{PARAMETERS_TAG}' cell (it declares: {', '.join(sorted(declared)) or 'nothing'}); every "
            f"workflow parameter, and '{OUTPUT_PARAMETER}', needs a default there")


def with_prelude(notebook: dict[str, Any], marker: Path) -> dict[str, Any]:
    prelude = {"cell_type": "code", "execution_count": None, "id": "kgsched-prelude",
               "metadata": {"tags": [PRELUDE_TAG]}, "outputs": [], "source": _PRELUDE % str(marker)}
    return {**notebook, "cells": [prelude, *notebook.get("cells", [])]}


def without_prelude(path: Path) -> None:
    if not path.exists():
        return
    notebook = json.loads(path.read_text())
    notebook["cells"] = [cell for cell in notebook.get("cells", []) if PRELUDE_TAG not in tags(cell)]
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")


def run(spec: dict[str, Any]) -> int:
    path, output, executed = Path(spec["notebook"]), Path(spec["output"]), Path(spec["executed"])
    workdir = output.parent
    marker = workdir / "analysis-exception.json"
    parameters = {**spec["parameters"], OUTPUT_PARAMETER: str(output)}
    try:
        notebook = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise NotebookError(f"cannot read notebook {path}: {exc}") from exc
    if not isinstance(notebook, dict) or "cells" not in notebook:
        raise NotebookError(f"{path} is not a Jupyter notebook (no cells)")

    try:  # only here, in the child process: the runner agent never imports Jupyter
        import papermill
        from papermill.exceptions import PapermillExecutionError
    except ImportError as exc:
        raise NotebookError(f"this runner cannot execute notebooks: {exc} (pip install papermill ipykernel)") from exc

    declared = set(papermill.inspect_notebook(str(path)))
    check_parameters(notebook, path, sorted(parameters), declared)
    prepared = workdir / "input.ipynb"
    prepared.write_text(json.dumps(with_prelude(notebook, marker)))
    kernel = notebook.get("metadata", {}).get("kernelspec", {}).get("name") or "python3"
    try:
        papermill.execute_notebook(str(prepared), str(executed), parameters=parameters, kernel_name=kernel,
                                   progress_bar=False, log_output=False, cwd=str(workdir))
    except PapermillExecutionError as exc:
        without_prelude(executed)
        if marker.exists():
            message = json.loads(marker.read_text())["message"]
            write_product({"kind": "analysis exception", "message": message}, output)
            print(message, file=sys.stderr)
            return EXIT_ANALYSIS_EXCEPTION
        print(f"notebook {path.name} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}\n"
              + "\n".join(exc.traceback), file=sys.stderr)
        return EXIT_UNHANDLED
    without_prelude(executed)
    if not output.exists():
        print(f"notebook {path.name} ran to the end but wrote no product at its '{OUTPUT_PARAMETER}' path",
              file=sys.stderr)
        return EXIT_UNHANDLED
    return 0


def main() -> int:
    spec = json.load(sys.stdin)
    # The kernel's own chatter (it inherits our stderr) goes to a log beside the output, so that what
    # the runner reads on stderr is only the reason this process gives.
    report = os.fdopen(os.dup(2), "w")
    with open(Path(spec["output"]).parent / "kernel.log", "wb") as log:
        os.dup2(log.fileno(), 2)
    sys.stderr = report
    try:
        return run(spec)
    except NotebookError as exc:
        print(f"NotebookError: {exc}", file=sys.stderr)
        return EXIT_UNHANDLED
    except BaseException:  # noqa: BLE001 - a kernel that died, papermill missing, ...: reported in full
        import traceback

        traceback.print_exc()
        return EXIT_UNHANDLED
    finally:
        report.flush()


if __name__ == "__main__":
    sys.exit(main())

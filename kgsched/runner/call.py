"""Child process that calls one workflow function: ``python -m kgsched.runner.call < spec.json``.

Running the function in its own process keeps the agent alive whatever the workflow does (a crash,
a segfault in a C extension, a runaway allocation) and lets the agent kill it on timeout or on
SIGTERM. The spec names ``module:function``, its keyword arguments and where to write the product.

Exit status: 0 product written; 65 an AnalysisException (its product, a JSON document saying why,
is written too: it is a valid, cacheable result); 70 any other exception (traceback on stderr).
"""

from __future__ import annotations

import importlib
import json
import sys
import traceback
from pathlib import Path
from typing import Any

EXIT_ANALYSIS_EXCEPTION = 65
EXIT_UNHANDLED = 70


def write_product(result: Any, output: Path) -> None:
    """bytes as they are, a path's file copied, anything else as canonical JSON."""
    if isinstance(result, bytes):
        output.write_bytes(result)
    elif isinstance(result, Path):
        output.write_bytes(result.read_bytes())
    else:
        output.write_text(json.dumps(result, sort_keys=True, separators=(",", ":"), allow_nan=False))


def check_origin(function: Any, allowed: list[str] | None) -> None:
    """With the runner's allowed module prefixes: the function must be defined under one of them, not
    merely imported into an allowed module (``from os import system`` would otherwise expose it)."""
    if allowed is None:
        return
    origin = getattr(function, "__module__", None) or ""
    if not any(origin == prefix or origin.startswith(prefix + ".") for prefix in allowed):
        raise PermissionError(f"{function!r} is defined in module {origin!r}, not under an allowed module prefix "
                              f"({', '.join(allowed) or 'none'}); the runner's policy does not allow it")


def main() -> int:
    spec = json.load(sys.stdin)
    sys.path[:0] = spec.get("python_path", [])
    output = Path(spec["output"])
    from kgsched.analysis import AnalysisException

    try:
        module_name, _, function_name = spec["callable"].partition(":")
        function = getattr(importlib.import_module(module_name), function_name)
        check_origin(function, spec.get("allowed_modules"))
        result = function(**spec["kwargs"])
    except AnalysisException as exc:
        write_product({"kind": "analysis exception", "message": str(exc)}, output)
        print(str(exc), file=sys.stderr)
        return EXIT_ANALYSIS_EXCEPTION
    except BaseException:  # noqa: BLE001 - everything else is an unhandled failure, reported in full
        traceback.print_exc()
        return EXIT_UNHANDLED
    write_product(result, output)
    return 0


if __name__ == "__main__":
    sys.exit(main())

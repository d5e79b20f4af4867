"""The runner owner's local policy: which jobs this machine agrees to run, checked before staging.

Defence in depth. The service only offers a runner jobs whose workflow was verified by someone the
runner trusts, but the owner of the hardware should not have to believe the service (or whoever
registered the workflow) about that: the agent checks every claimed job against its owner's own
configuration, and hands back what it refuses, before a single input is staged. Stdlib only — this
runs on volunteers' machines.

What is checked (:meth:`RunnerPolicy.check`):

* **trusted verifiers** — at least one verifier of the workflow (the claim's ``workflow.verifiers``,
  which the service reads from verifications stated in the verifiers' own graphs) is one the owner
  trusts. Default: the ``ks:trusts`` of the runner's own Turtle description (``--config``);
* **Python callables** (``ks:PythonCallable``, ``module:function``): the module is one of the allowed
  module prefixes, matched by whole dotted components (``kgsched_examples`` allows
  ``kgsched_examples.astro`` but not ``kgsched_examplesevil``), and the function a plain identifier;
* **command lines** (``ks:CommandLine``): the executable (the first argv element after a shell-like
  split) is allowed by name (``python`` matches only ``python``, never ``/tmp/x/python``) or by
  absolute path, and is not itself a placeholder. A Python interpreter (``python``, ``python3``,
  ``python3.12``, by name or path) is accepted only as ``python -m <module>`` with the module
  allowed as above: ``python -c``, ``python script.py`` and any other interpreter flag are refused,
  since they run code no allowlist can see;
* **notebooks** (``ks:Notebook``): the notebook's path, relative to the workflow path, lies under one
  of the allowed notebook directories (whole path components; no ``..``, no absolute path);
* **web services** (``ks:WebService``): the service the grant names (its endpoint) is one the owner
  allows — a service runner allows its own endpoint, and only that, unless told otherwise;
* any other implementation kind is refused.

The implementation allowlists default to empty: a runner runs nothing its owner did not declare.
"""

from __future__ import annotations

import os
import re
import shlex
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from kgsched.runner.kinds import COMMAND_LINE, NOTEBOOK, PYTHON_CALLABLE, WEB_SERVICE

_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_MODULE = re.compile(rf"^{_IDENTIFIER}(?:\.{_IDENTIFIER})*$")
_CALLABLE = re.compile(rf"^({_IDENTIFIER}(?:\.{_IDENTIFIER})*):({_IDENTIFIER})$")
_PYTHON = re.compile(r"^python[0-9]*(?:\.[0-9]+)*$")
#: Keys of a policy file (TOML); anything else in it is an error, so a typo never widens nothing silently.
FILE_KEYS = ("trust_verifiers", "allow_modules", "allow_executables", "allow_notebooks", "allow_services")


class PolicyRefusal(Exception):
    """The owner's policy does not allow this job; ``reason`` says why, in words for the service's log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PolicyFileError(ValueError):
    """A policy file that cannot be read as this module's TOML."""


def module_allowed(module: str, prefixes: Iterable[str]) -> bool:
    """Whether a dotted module name lies under one of the prefixes, by whole components."""
    if not _MODULE.match(module):
        return False
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


def is_python(executable: str) -> bool:
    """Whether an argv[0] names a Python interpreter (by name or path)."""
    return bool(_PYTHON.match(os.path.basename(executable)))


@dataclass(frozen=True)
class RunnerPolicy:
    """What this runner's owner allows (see the module docstring). Empty allowlists allow nothing."""

    trusted_verifiers: frozenset[str] = frozenset()
    allowed_modules: tuple[str, ...] = ()
    allowed_executables: tuple[str, ...] = ()
    allowed_notebooks: tuple[str, ...] = ()  # directories, relative to the workflow path
    allowed_services: tuple[str, ...] = ()  # OGC API - Processes endpoints

    def __post_init__(self) -> None:
        for directory in self.allowed_notebooks:
            path = PurePosixPath(directory)
            if not directory or path.is_absolute() or ".." in path.parts:
                raise ValueError(f"allowed notebook directory {directory!r} must be relative, without '..'")
        for endpoint in self.allowed_services:
            if not endpoint.startswith(("http://", "https://")):
                raise ValueError(f"allowed service {endpoint!r} must be an http(s) URL")
        for prefix in self.allowed_modules:
            if not _MODULE.match(prefix):
                raise ValueError(f"allowed module prefix {prefix!r} is not a dotted Python module name")
        for executable in self.allowed_executables:
            if not executable or "{" in executable or ("/" in executable and not os.path.isabs(executable)) \
                    or any(c.isspace() for c in executable):
                raise ValueError(f"allowed executable {executable!r} must be a bare name or an absolute path")

    # -- building --------------------------------------------------------------------------------
    @classmethod
    def build(cls, *, trusted: Iterable[str] = (), modules: Iterable[str] = (), executables: Iterable[str] = (),
              notebooks: Iterable[str] = (), services: Iterable[str] = (),
              policy_file: Path | None = None, default_trusted: Iterable[str] = ()) -> RunnerPolicy:
        """The options and the policy file combined; without any trusted verifier configured, the
        ``default_trusted`` (the ``ks:trusts`` of the runner's own description) are trusted."""
        file = read_policy_file(policy_file) if policy_file is not None else {}
        configured = [*file.get("trust_verifiers", []), *trusted]
        return cls(trusted_verifiers=frozenset(configured or default_trusted),
                   allowed_modules=tuple(dict.fromkeys([*file.get("allow_modules", []), *modules])),
                   allowed_executables=tuple(dict.fromkeys([*file.get("allow_executables", []), *executables])),
                   allowed_notebooks=tuple(dict.fromkeys([*file.get("allow_notebooks", []), *notebooks])),
                   allowed_services=tuple(dict.fromkeys([*file.get("allow_services", []), *services])))

    def describe(self) -> str:
        """One line for the runner's log at start."""
        def listed(values: Iterable[str]) -> str:
            values = sorted(values)
            return ", ".join(values) if values else "none"

        return (f"trusted verifiers: {listed(self.trusted_verifiers)}; Python modules: "
                f"{listed(self.allowed_modules)}; executables: {listed(self.allowed_executables)}; notebooks: "
                f"{listed(self.allowed_notebooks)}; services: {listed(self.allowed_services)}")

    # -- checking --------------------------------------------------------------------------------
    def check(self, job: Mapping[str, Any]) -> None:
        """Raise PolicyRefusal unless the owner's policy allows the claimed job."""
        workflow = job.get("workflow")
        if not isinstance(workflow, Mapping):
            raise PolicyRefusal("the claim describes no workflow")
        name = workflow.get("iri", "the workflow")
        verifiers = workflow.get("verifiers")
        if not isinstance(verifiers, list) or not all(isinstance(v, str) for v in verifiers):
            verifiers = []
        trusted = sorted(self.trusted_verifiers.intersection(verifiers))
        if not trusted:
            said = ", ".join(sorted(verifiers)) or "nobody"
            trusts = ", ".join(sorted(self.trusted_verifiers)) or "nobody"
            raise PolicyRefusal(f"no verifier this runner's owner trusts verified {name} "
                                f"(verified by: {said}; trusted: {trusts})")
        kind, implementation = workflow.get("implementation_kind"), workflow.get("implementation")
        if not isinstance(implementation, str) or not implementation:
            raise PolicyRefusal(f"{name} has no implementation")
        if kind == PYTHON_CALLABLE:
            self.check_callable(implementation)
        elif kind == COMMAND_LINE:
            self.check_command(implementation)
        elif kind == NOTEBOOK:
            self.check_notebook(implementation)
        elif kind == WEB_SERVICE:
            service = job.get("service")
            endpoint = service.get("endpoint") if isinstance(service, Mapping) else None
            if endpoint not in self.allowed_services:
                raise PolicyRefusal(f"the service {endpoint or '(none named)'} is not one this runner's owner allows")
        else:
            raise PolicyRefusal(f"implementation kind {kind} is not allowed by this runner's policy")

    def check_notebook(self, implementation: str) -> None:
        path = PurePosixPath(implementation)
        if path.is_absolute() or ".." in path.parts:
            raise PolicyRefusal(f"notebook {implementation!r} must be relative to the workflow path, without '..'")
        if not any(path.parts[:len(PurePosixPath(d).parts)] == PurePosixPath(d).parts for d in self.allowed_notebooks):
            raise PolicyRefusal(f"notebook {implementation!r} is not under a directory this runner's owner allows")

    def check_callable(self, implementation: str) -> None:
        match = _CALLABLE.match(implementation)
        if match is None:
            raise PolicyRefusal(f"Python callable {implementation!r} is not of the form module:function")
        self._check_module(match.group(1), f"Python callable {implementation!r}")

    def check_command(self, template: str) -> None:
        try:
            argv = shlex.split(template)
        except ValueError as exc:
            raise PolicyRefusal(f"command line {template!r} cannot be split: {exc}") from None
        if not argv:
            raise PolicyRefusal("the command line is empty")
        executable = argv[0]
        if "{" in executable or "}" in executable:
            raise PolicyRefusal(f"command line {template!r}: the executable may not be a placeholder")
        if not self.executable_allowed(executable):
            raise PolicyRefusal(f"executable {executable!r} is not allowed by this runner's policy "
                                f"(allowed: {', '.join(self.allowed_executables) or 'none'})")
        if is_python(executable):
            if len(argv) < 3 or argv[1] != "-m":
                raise PolicyRefusal(f"command line {template!r}: a Python interpreter runs only as "
                                    "'python -m <module>' (no -c, no script, no other interpreter option)")
            if "{" in argv[2] or "}" in argv[2]:
                raise PolicyRefusal(f"command line {template!r}: the module may not be a placeholder")
            self._check_module(argv[2], f"command line {template!r}")

    def executable_allowed(self, executable: str) -> bool:
        for allowed in self.allowed_executables:
            if os.path.isabs(allowed):
                if os.path.isabs(executable) and os.path.normpath(executable) == os.path.normpath(allowed):
                    return True
            elif executable == allowed:
                return True
        return False

    def _check_module(self, module: str, what: str) -> None:
        if not module_allowed(module, self.allowed_modules):
            raise PolicyRefusal(f"{what}: module {module!r} is not under an allowed module prefix "
                                f"(allowed: {', '.join(self.allowed_modules) or 'none'})")


def read_policy_file(path: Path) -> dict[str, list[str]]:
    """A TOML policy file: ``trust_verifiers``, ``allow_modules``, ``allow_executables``, each a list of strings."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PolicyFileError(f"cannot read the policy file {path}: {exc}") from None
    unknown = set(data) - set(FILE_KEYS)
    if unknown:
        raise PolicyFileError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(FILE_KEYS)}")
    result: dict[str, list[str]] = {}
    for key in FILE_KEYS:
        values = data.get(key, [])
        if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
            raise PolicyFileError(f"{path}: {key} must be a list of non-empty strings")
        result[key] = values
    return result


__all__ = ["COMMAND_LINE", "NOTEBOOK", "PYTHON_CALLABLE", "WEB_SERVICE", "PolicyFileError", "PolicyRefusal",
           "RunnerPolicy", "is_python",
           "module_allowed", "read_policy_file"]

"""The layering of docs/architecture.md holds: every import of every module, lazy ones included.

The layering table is read from docs/architecture.md itself, so the page and the test cannot drift;
the numbered rules below the table are coded here with the page's numbers. A failure names the file,
the line, the import and the rule it breaks.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "kgsched"
DOC = ROOT / "docs" / "architecture.md"

#: Rule 1: what neither the runner nor the base modules may import.
SERVER_STACK = frozenset({"numpy", "networkx", "pyshacl", "pyoxigraph", "flask", "waitress"})
#: Rule 2: the planning modules that may touch the store (all other planning modules may not).
PLANNING_STORE_READERS = frozenset({"kgsched.planning.facts", "kgsched.planning.expressions",
                                    "kgsched.planning.planner"})
STORE_MODULES = frozenset({"kgsched.graph.store"})
RUNNER_COMMAND = "kgsched.cli.runner"


@dataclass(frozen=True)
class Import:
    """One imported name: a kgsched module (``kgsched...``) or a third-party top-level package."""

    module: str  # the importing module
    path: Path
    line: int
    target: str

    @property
    def internal(self) -> bool:
        return self.target == "kgsched" or self.target.startswith("kgsched.")

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}: {self.module} imports {self.target}"


# -- the package's modules and their imports ------------------------------------------------------------------
def package_modules(package: Path = PACKAGE) -> dict[str, Path]:
    """Every module of the package (packages are directories with __init__.py; kgsched/data is not one)."""
    modules: dict[str, Path] = {}

    def walk(directory: Path, prefix: str) -> None:
        for path in sorted(directory.iterdir()):
            if path.is_dir() and (path / "__init__.py").is_file() and not path.is_symlink():
                walk(path, f"{prefix}.{path.name}")
            elif path.suffix == ".py":
                modules[prefix if path.stem == "__init__" else f"{prefix}.{path.stem}"] = path

    walk(package, package.name)
    return modules


def imports_of(module: str, path: Path, source: str, known: set[str]) -> list[Import]:
    """All imports of a module's source, wherever they are (module level, functions, TYPE_CHECKING)."""
    found = []
    for node in ast.walk(ast.parse(source, filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [_resolve(alias.name, known) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package, one level up per extra dot
                parts = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([base] if base else []))
            # `from kgsched.graph import queries` imports the module kgsched.graph.queries
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else _resolve(base, known)
                       for a in node.names]
        else:
            continue
        found += [Import(module, path, node.lineno, target) for target in targets]
    return found


def _resolve(name: str, known: set[str]) -> str:
    """A kgsched module name as imported; for a third-party import, its top-level package."""
    if name == "kgsched" or name.startswith("kgsched."):
        while name not in known and "." in name:
            name = name.rsplit(".", 1)[0]
        return name
    return name.split(".")[0]


MODULES = package_modules()
KNOWN = set(MODULES)


def all_imports() -> list[Import]:
    return [imp for module, path in MODULES.items() for imp in imports_of(module, path, path.read_text(), KNOWN)]


IMPORTS = all_imports()


# -- the table of docs/architecture.md ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Layer:
    name: str
    modules: tuple[str, ...]
    may_import: frozenset[str]


def read_table(text: str) -> list[Layer]:
    """The rows of the table whose header starts with ``| Layer |``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"\|\s*Layer\s*\|", line))
    layers = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        name, modules, allowed = (cell.strip() for cell in line.strip().strip("|").split("|"))
        layers.append(Layer(name, tuple(re.findall(r"`([\w.*]+)`", modules)),
                            frozenset(a.strip() for a in allowed.split(",") if a.strip())))
    return layers


LAYERS = read_table(DOC.read_text())


def layer_of(module: str, layers: list[Layer] = LAYERS) -> Layer | None:
    """The row naming the module or its package, the most specific first.

    ``kgsched`` matches only the package's ``__init__``; ``kgsched.*`` any module directly in kgsched/;
    any other name the module itself and everything below it.
    """
    best: tuple[int, Layer] | None = None
    for layer in layers:
        for name in layer.modules:
            if name.endswith(".*"):
                prefix = name[:-2]
                matches = module.startswith(prefix + ".") and "." not in module[len(prefix) + 1:]
                weight = len(prefix) + 1
            else:
                matches = module == name or (name != "kgsched" and module.startswith(name + "."))
                weight = len(name) + 2
            if matches and (best is None or weight > best[0]):
                best = (weight, layer)
    return best[1] if best else None


# -- the rules ------------------------------------------------------------------------------------------------------
def table_violations(imports: list[Import]) -> list[str]:
    problems = []
    for imp in imports:
        if not imp.internal:
            continue
        source, target = layer_of(imp.module), layer_of(imp.target)
        if source is None or target is None:
            continue  # reported by test_every_module_has_a_layer
        if target.name not in source.may_import:
            problems.append(f"{imp.where()} — the {source.name} layer may import only "
                            f"{', '.join(sorted(source.may_import))}, not {target.name} (the layering table)")
    return problems


def runner_violations(imports: list[Import]) -> list[str]:
    problems = []
    for imp in imports:
        runner_side = imp.module == RUNNER_COMMAND or imp.module.startswith("kgsched.runner")
        source = layer_of(imp.module)
        if (runner_side or (source is not None and source.name == "base")) and imp.target in SERVER_STACK:
            problems.append(f"{imp.where()} — rule 1: the runner and the base modules import nothing of the "
                            f"server's stack ({', '.join(sorted(SERVER_STACK))})")
        if imp.module == RUNNER_COMMAND and imp.internal:
            target = layer_of(imp.target)
            allowed = imp.target == "kgsched.cli.common" or (target is not None and target.name in ("base", "runner"))
            if not allowed:
                problems.append(f"{imp.where()} — rule 1: the runner's command imports only base modules, the "
                                f"runner and kgsched.cli.common")
    return problems


def planning_violations(imports: list[Import]) -> list[str]:
    return [f"{imp.where()} — rule 2: planning rules import no store (only "
            f"{', '.join(sorted(PLANNING_STORE_READERS))} may)"
            for imp in imports
            if imp.module.startswith("kgsched.planning.") and imp.module not in PLANNING_STORE_READERS
            and (imp.target in STORE_MODULES or imp.target == "pyoxigraph")]


def cli_violations(imports: list[Import]) -> list[str]:
    problems = []
    for imp in imports:
        if not (imp.target == "kgsched.cli" or imp.target.startswith("kgsched.cli.")):
            continue
        if imp.module.startswith("kgsched.cli.") and imp.target == "kgsched.cli":
            problems.append(f"{imp.where()} — rule 3: commands never import the group (kgsched.cli); "
                            f"import kgsched.cli.common instead")
        elif not (imp.module == "kgsched.cli" or imp.module.startswith("kgsched.cli.")
                  or imp.module == "kgsched.__main__"):
            problems.append(f"{imp.where()} — nothing imports the command line but kgsched.cli and __main__")
    return problems


def cycles(imports: list[Import]) -> list[list[str]]:
    """The modules of each cycle: the strongly connected parts of the import graph with more than one module."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        if imp.internal and imp.target != imp.module:
            graph.setdefault(imp.module, set()).add(imp.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            part = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                part.append(member)
                if member == node:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


# -- the tests ------------------------------------------------------------------------------------------------------
def test_the_table_is_read_from_the_page() -> None:
    names = [layer.name for layer in LAYERS]
    assert names == ["base", "graph", "registry", "domain", "service", "runner", "dev", "cli"]
    for layer in LAYERS:
        assert layer.name in layer.may_import and layer.may_import <= set(names), layer


def test_modules_are_given_the_most_specific_row() -> None:
    names = {module: layer_of(module).name for module in (
        "kgsched", "kgsched.errors", "kgsched.something_new", "kgsched.graph", "kgsched.graph.store",
        "kgsched.planning.decision", "kgsched.cli", "kgsched.cli.runner", "kgsched.__main__", "kgsched.dev.demo")}
    assert names == {"kgsched": "base", "kgsched.errors": "base", "kgsched.something_new": "base",
                     "kgsched.graph": "graph", "kgsched.graph.store": "graph", "kgsched.planning.decision": "domain",
                     "kgsched.cli": "cli", "kgsched.cli.runner": "cli", "kgsched.__main__": "cli",
                     "kgsched.dev.demo": "dev"}
    assert layer_of("kgsched.newpackage.module") is None


def test_every_module_has_a_layer() -> None:
    assert len(MODULES) > 50
    missing = [str(path.relative_to(ROOT)) for module, path in MODULES.items() if layer_of(module) is None]
    assert not missing, "modules with no row in the layering table of docs/architecture.md: " + ", ".join(missing)


def test_imports_follow_the_layering_table() -> None:
    problems = table_violations(IMPORTS)
    assert not problems, "\n".join(problems)


def test_rule_1_the_runner_imports_nothing_of_the_server() -> None:
    problems = runner_violations(IMPORTS)
    assert not problems, "\n".join(problems)


def test_rule_2_planning_rules_import_no_store() -> None:
    problems = planning_violations(IMPORTS)
    assert not problems, "\n".join(problems)


def test_rule_3_nothing_imports_the_command_line() -> None:
    problems = cli_violations(IMPORTS)
    assert not problems, "\n".join(problems)


def test_rule_4_no_import_cycles() -> None:
    found = cycles(IMPORTS)
    assert not found, "import cycles: " + "; ".join(" ↔ ".join(c) for c in found)


# -- the checker finds what it should (each rule, on planted sources) -------------------------------------------
PLANTED = [
    ("kgsched.service.planted", "def f():\n    from kgsched.runner.agent import RunnerAgent\n", table_violations,
     "kgsched/service/planted.py:2: kgsched.service.planted imports kgsched.runner.agent — the service layer"),
    ("kgsched.jobs.planted", "import kgsched.dev.federation\n", table_violations, "not dev (the layering table)"),
    ("kgsched.runner.planted", "def f():\n    import numpy as np\n", runner_violations, "planted.py:2: "
     "kgsched.runner.planted imports numpy — rule 1"),
    ("kgsched.cli.runner", "from kgsched.registry.registration import Registry\n", runner_violations,
     "rule 1: the runner's command imports only"),
    ("kgsched.planning.decision", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
     "    from kgsched.graph.store import Store\n", planning_violations, "decision.py:3: "),
    ("kgsched.cli.planted", "from kgsched.cli import main\n", cli_violations, "rule 3: commands never import"),
    ("kgsched.provenance.planted", "from kgsched.cli.common import StoreOptions\n", cli_violations,
     "nothing imports the command line"),
]


@pytest.mark.parametrize(("module", "source", "check", "message"), PLANTED, ids=[p[0] for p in PLANTED])
def test_a_planted_import_is_reported_with_file_line_and_rule(module: str, source: str, check, message: str) -> None:
    path = PACKAGE.joinpath(*module.split(".")[1:]).with_suffix(".py")
    problems = check(imports_of(module, path, source, KNOWN | {module}))
    assert len(problems) == 1 and message in problems[0], problems


def test_a_planted_cycle_is_found() -> None:
    planted = [Import("kgsched.graph.binding", PACKAGE / "graph" / "binding.py", 1, "kgsched.graph.store")]
    found = cycles(IMPORTS + planted)  # binding → store → updates → binding
    assert found == [["kgsched.graph.binding", "kgsched.graph.store", "kgsched.graph.updates"]]

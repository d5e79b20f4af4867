"""Reading WfCommons workflow instances (WfFormat 1.5) into checked, plain dataclasses.

A trace is someone else's JSON, so everything the importer relies on is checked here, once, with a
message that names the place in the document (``workflow.specification.tasks[3].parents``): ids
that must be unique, files that must have a size, parents that must exist, a graph that must be
acyclic, runtimes that must be numbers ≥ 0. Nothing downstream needs to guard against the document.

Only WfFormat 1.5 (``workflow.specification`` + ``workflow.execution``) is read; the older layout,
with tasks directly under ``workflow``, is refused with a message saying so. Traces may be gzipped.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx

from kgsched.errors import InvalidRequest, SyntaxProblem

#: A ``command.program`` that is one word (``mProject``) names the task's program; a shell script
#: (Nextflow traces put the whole script there) does not, and the task name is used instead.
_PROGRAM_RE = re.compile(r"^[A-Za-z0-9_.+-]{1,100}$")
_TASK_SUFFIX_RE = re.compile(r"_ID\d+$")
MAX_TRACE_BYTES = 200_000_000


@dataclass(frozen=True)
class Machine:
    name: str
    cores: int | None
    memory_bytes: int | None


@dataclass(frozen=True)
class Task:
    id: str
    name: str
    category: str  # the program (or task name without its _ID suffix): one workflow per category
    program: str | None
    arguments: tuple[str, ...] | None
    inputs: tuple[str, ...]  # file ids, as listed
    outputs: tuple[str, ...]
    parents: tuple[str, ...]
    runtime_seconds: float
    machine: str | None
    cores: int | None
    memory_bytes: int | None


@dataclass(frozen=True)
class Trace:
    name: str
    description: str
    runtime_system: str | None  # "Pegasus 5.0"
    author: str | None
    executed_at: dt.datetime
    tasks: tuple[Task, ...]  # topological order (parents first), ties by id
    file_sizes: Mapping[str, int]
    machines: tuple[Machine, ...]

    @property
    def producer(self) -> dict[str, str]:
        """Output file id → the task that writes it."""
        return {f: t.id for t in self.tasks for f in t.outputs}

    @property
    def external_inputs(self) -> list[str]:
        """Files read but written by no task: the trace's input data, sorted."""
        written = {f for t in self.tasks for f in t.outputs}
        return sorted({f for t in self.tasks for f in t.inputs} - written)


def read_trace(path: Path, name: str | None = None) -> Trace:
    """Read a trace file (``.json`` or ``.json.gz``) and check it; errors name the file."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidRequest(f"cannot read {path}: {exc.strerror or exc}") from exc
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise SyntaxProblem(f"{path.name}: not a readable gzip file: {exc}") from exc
    if len(raw) > MAX_TRACE_BYTES:
        raise InvalidRequest(f"{path.name}: {len(raw):,} bytes is more than the {MAX_TRACE_BYTES:,} a trace may have")
    try:
        document = json.loads(raw)
    except UnicodeDecodeError as exc:
        raise SyntaxProblem(f"{path.name}: not UTF-8 text: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise SyntaxProblem(f"{path.name}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
                            extra={"line": exc.lineno, "column": exc.colno}) from exc
    stem = path.name.removesuffix(".gz").removesuffix(".json")
    try:
        return parse_trace(document, name or stem)
    except InvalidRequest as exc:
        raise InvalidRequest(f"{path.name}: {exc.detail}") from exc


def _get(container: Any, key: str, kind: type | tuple[type, ...], where: str, required: bool = True) -> Any:
    if not isinstance(container, Mapping):
        raise InvalidRequest(f"{where} must be a JSON object")
    if key not in container or container[key] is None:
        if required:
            raise InvalidRequest(f"{where}.{key} is missing")
        return None
    value = container[key]
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise InvalidRequest(f"{where}.{key} must be {_article(names)}, got {type(value).__name__}")
    return value


def _article(names: str) -> str:
    words = {"str": "a string", "list": "a list", "dict": "an object", "int": "an integer",
             "float": "a number", "int or float": "a number"}
    return words.get(names, names)


def _strings(container: Any, key: str, where: str) -> tuple[str, ...]:
    values = _get(container, key, list, where)
    for n, value in enumerate(values):
        if not isinstance(value, str) or not value:
            raise InvalidRequest(f"{where}.{key}[{n}] must be a non-empty string")
    return tuple(values)


def _count(container: Any, key: str, where: str, *, positive: bool = False) -> int | None:
    value = _get(container, key, (int, float), where, required=False)
    if value is None:
        return None
    if value != int(value) or value < (1 if positive else 0):
        raise InvalidRequest(f"{where}.{key} must be a whole number {'≥ 1' if positive else '≥ 0'}, got {value}")
    return int(value)


def parse_time(text: Any) -> dt.datetime | None:
    """An ISO 8601 instant (basic or extended form); naive times are taken as UTC. None if unreadable."""
    if not isinstance(text, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def category_of(name: str, program: str | None) -> str:
    """The workflow a task is an application of: its one-word program, else its name less ``_ID…``."""
    if program and _PROGRAM_RE.match(program):
        return program
    return _TASK_SUFFIX_RE.sub("", name) or name


def _tasks_by_id(section: dict, where: str) -> dict[str, tuple[dict, str]]:
    """A section's tasks by id, each with where it is in the file (for messages); ids must be unique."""
    tasks: dict[str, tuple[dict, str]] = {}
    for n, entry in enumerate(_get(section, "tasks", list, where)):
        here = f"{where}.tasks[{n}]"
        task_id = _get(entry, "id", str, here)
        if task_id in tasks:
            raise InvalidRequest(f"{here}: task id {task_id!r} appears twice")
        tasks[task_id] = (entry, here)
    return tasks


def parse_trace(document: Any, name: str) -> Trace:
    """Check a parsed WfFormat 1.5 document and turn it into a :class:`Trace`."""
    workflow = _get(document, "workflow", dict, "the trace")
    if "specification" not in workflow and "tasks" in workflow:
        raise InvalidRequest("this is an older WfFormat layout (tasks directly under 'workflow'); "
                             "only WfFormat 1.5 (workflow.specification and workflow.execution) is read")
    spec = _get(workflow, "specification", dict, "workflow")
    execution = _get(workflow, "execution", dict, "workflow")

    sizes: dict[str, int] = {}
    for n, entry in enumerate(_get(spec, "files", list, "workflow.specification")):
        where = f"workflow.specification.files[{n}]"
        file_id = _get(entry, "id", str, where)
        size = _count(entry, "sizeInBytes", where)
        if size is None:
            raise InvalidRequest(f"{where}.sizeInBytes is missing (file {file_id!r})")
        if file_id in sizes:
            raise InvalidRequest(f"{where}: file id {file_id!r} appears twice")
        sizes[file_id] = size

    machines: dict[str, Machine] = {}
    for n, entry in enumerate(_get(execution, "machines", list, "workflow.execution", required=False) or []):
        where = f"workflow.execution.machines[{n}]"
        node = _get(entry, "nodeName", str, where)
        cpu = _get(entry, "cpu", dict, where, required=False) or {}
        machines[node] = Machine(node, _count(cpu, "coreCount", f"{where}.cpu", positive=True),
                                 _count(entry, "memoryInBytes", where))

    runs = _tasks_by_id(execution, "workflow.execution")
    specs = _tasks_by_id(spec, "workflow.specification")
    if not specs:
        raise InvalidRequest("workflow.specification.tasks is empty: there is nothing to import")
    missing_runs = sorted(set(specs) - set(runs))
    if missing_runs:
        raise InvalidRequest(f"task {missing_runs[0]!r} has no record in workflow.execution.tasks "
                             f"({len(missing_runs)} task(s) without one)")
    extra_runs = sorted(set(runs) - set(specs))
    if extra_runs:
        raise InvalidRequest(f"workflow.execution.tasks names {extra_runs[0]!r}, which is not in "
                             "workflow.specification.tasks")

    default_machine = next(iter(machines)) if len(machines) == 1 else None
    tasks: dict[str, Task] = {}
    writer: dict[str, str] = {}
    for task_id, (entry, where) in specs.items():
        run, run_where = runs[task_id]
        inputs, outputs = _strings(entry, "inputFiles", where), _strings(entry, "outputFiles", where)
        parents = _strings(entry, "parents", where)
        for file_id in inputs + outputs:
            if file_id not in sizes:
                raise InvalidRequest(f"{where}: file {file_id!r} is not in workflow.specification.files")
        for file_id in outputs:
            if file_id in writer and writer[file_id] != task_id:
                raise InvalidRequest(f"{where}: file {file_id!r} is written by {writer[file_id]!r} too")
            writer[file_id] = task_id
        runtime = _get(run, "runtimeInSeconds", (int, float), run_where)
        if not 0 <= runtime < float("inf"):
            raise InvalidRequest(f"{run_where}.runtimeInSeconds must be a number ≥ 0, got {runtime}")
        command = _get(run, "command", dict, run_where, required=False) or {}
        program = _get(command, "program", str, f"{run_where}.command", required=False)
        arguments = _get(command, "arguments", list, f"{run_where}.command", required=False)
        if arguments is not None:
            arguments = tuple(str(a) for a in arguments)
        placed = _get(run, "machines", list, run_where, required=False) or []
        machine = placed[0] if placed and isinstance(placed[0], str) else default_machine
        if placed and machine not in machines:
            raise InvalidRequest(f"{run_where}.machines names {machine!r}, which is not in "
                                 "workflow.execution.machines")
        task_name = _get(entry, "name", str, where, required=False) or task_id
        tasks[task_id] = Task(
            id=task_id, name=task_name, category=category_of(task_name, program), program=program,
            arguments=arguments, inputs=inputs, outputs=outputs, parents=parents,
            runtime_seconds=float(runtime), machine=machine, cores=_count(run, "coreCount", run_where, positive=True),
            memory_bytes=_count(run, "memoryInBytes", run_where))

    graph = nx.DiGraph()
    graph.add_nodes_from(tasks)
    for task in tasks.values():
        for parent in task.parents:
            if parent not in tasks:
                raise InvalidRequest(f"task {task.id!r} names parent {parent!r}, which is not a task")
            graph.add_edge(parent, task.id)
        for file_id in task.inputs:
            if file_id in writer and writer[file_id] not in task.parents:
                raise InvalidRequest(f"task {task.id!r} reads {file_id!r}, written by {writer[file_id]!r}, "
                                     "which is not among its parents")
    try:
        order = list(nx.lexicographical_topological_sort(graph))
    except nx.NetworkXUnfeasible:
        cycle = " → ".join(a for a, _ in nx.find_cycle(graph))
        raise InvalidRequest(f"the tasks' parents form a cycle: {cycle}") from None

    runtime_system = document.get("runtimeSystem") if isinstance(document, Mapping) else None
    system = None
    if isinstance(runtime_system, Mapping) and isinstance(runtime_system.get("name"), str):
        system = " ".join(str(runtime_system[k]) for k in ("name", "version") if runtime_system.get(k))
    author = document.get("author")
    author_name = author.get("name") if isinstance(author, Mapping) and isinstance(author.get("name"), str) else None
    executed = (parse_time(execution.get("executedAt")) or parse_time(document.get("createdAt"))
                or dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    description = document.get("description") if isinstance(document.get("description"), str) else ""
    return Trace(name=name, description=description, runtime_system=system, author=author_name,
                 executed_at=executed, tasks=tuple(tasks[t] for t in order), file_sizes=sizes,
                 machines=tuple(machines.values()))

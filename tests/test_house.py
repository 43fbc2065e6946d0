"""The shape of the code, checked: the layers (import-linter contracts in pyproject.toml), no
import cycles, module sizes and one module of Temporal names (one installed name:
tests/test_install.py)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp

from agentflow import names

REPO = Path(__file__).resolve().parent.parent
# The code, each file once (agentflow/workflows and agentflow/activities link to these).
SOURCES = [REPO / "workflows", REPO / "activities", REPO / "agentflow"]


def _python_files() -> list[Path]:
    found: list[Path] = []
    for root in SOURCES:
        found += [path for path in root.rglob("*.py") if not any(p.is_symlink()
                  for p in path.relative_to(REPO).parents if p != Path("."))]  # fmt: skip
    return sorted(set(found))


def test_import_linter_contracts_are_kept() -> None:
    # In a process of its own: import-linter configures logging with every existing logger
    # disabled, which would silence the worker logs the later tests of this process read.
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(lint), "--config", str(REPO / "pyproject.toml"), "--no-cache"],
                          capture_output=True, text=True, cwd=REPO)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 3 kept, 0 broken." in done.stdout


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for start in sorted(graph.modules):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in graph.modules:
                    continue
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append(
                        (child, iter(sorted(graph.find_modules_directly_imported_by(child))))
                    )
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def test_no_import_cycles() -> None:
    graph = grimp.build_graph("agentflow")  # annotation-only imports count too
    assert len(graph.modules) > 100  # the whole house was read, links included
    assert "agentflow.workflows.session" in graph.modules
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for module in ("a", "a.x", "a.y", "a.z"):
        graph.add_module(module)
    graph.add_import(importer="a.x", imported="a.y")
    graph.add_import(importer="a.y", imported="a.x")
    graph.add_import(importer="a.z", imported="a.x")
    assert _cycles(graph) == [["a.x", "a.y"]]


def test_modules_stay_small() -> None:
    big = {}
    for path in _python_files():
        limit = 200 if path.is_relative_to(REPO / "workflows") else 300
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > limit:
            big[str(path.relative_to(REPO))] = lines
    assert big == {}


# Names distinctive enough that a literal elsewhere is one of them, not a plain word.
DISTINCTIVE = {
    value
    for key, value in vars(names).items()
    if (key.isupper() and isinstance(value, str) and value != value.lower()) or
    (isinstance(value, str) and key.isupper() and any(c in value for c in "_-:"))
}  # fmt: skip


def test_temporal_names_live_in_one_module() -> None:
    assert {"run_agent", "AgentflowSession", "SequentialFlow", "emit_and_wait"} <= DISTINCTIVE
    found = []
    for path in _python_files():
        if path == REPO / "agentflow" / "names.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in DISTINCTIVE:
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value!r}")
    assert found == []

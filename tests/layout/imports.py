"""The project's import graph, read from the source with ``ast``: every ``import`` and ``from ...
import`` statement counts, at module level or inside a function (an import inside a function is
still a dependency, only a late one). Importing ``a.b.c`` also runs ``a/__init__.py`` and
``a/b/__init__.py``, so it depends on those packages too.
"""

from __future__ import annotations

import ast
from pathlib import Path


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """Module name -> file, for every ``.py`` file of ``packages`` under ``root``."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            found[module_name(root, path)] = path
    return found


def _targets(node: ast.AST, module: str, is_package: bool,
             modules: dict[str, Path]) -> list[str]:
    """What an import statement loads: the named modules, or the package whose names it takes."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    assert isinstance(node, ast.ImportFrom)
    if node.level:  # relative: resolve against the importing module's package
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[:len(base) - node.level + 1]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    # `from a.b import c`: the module a.b.c if there is one, else a name defined by a.b
    return [f"{prefix}.{alias.name}" if f"{prefix}.{alias.name}" in modules else prefix
            for alias in node.names]


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports, with the packages whose ``__init__`` runs first.

    A module's own ancestor packages are left out when they are only on the way to a submodule:
    Python starts a package's ``__init__`` before any of its submodules, so that edge is the
    package depending on the module, not the other way round. Taking a *name* from an ancestor
    (``from sim import simulate`` inside ``sim/``) is kept: it needs the ``__init__`` finished."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        is_package = path.name == "__init__.py"
        own = name.split(".")
        ancestors = {".".join(own[:i]) for i in range(1, len(own) + (1 if is_package else 0))}
        edges: set[str] = set()
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for target in _targets(node, name, is_package, modules):
                parts = target.split(".")
                for i in range(1, len(parts) + 1):
                    candidate = ".".join(parts[:i])
                    on_the_way = i < len(parts)
                    if candidate not in modules or candidate == name:
                        continue
                    if on_the_way and candidate in ancestors:
                        continue
                    edges.add(candidate)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0

    def visit(start: str) -> None:  # iterative: no recursion limit on deep graphs
        nonlocal counter
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
                continue
            if child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def path_between(graph: dict[str, set[str]], start: str, goal: str) -> list[str]:
    """One shortest import chain from ``start`` to ``goal`` (for readable failure messages)."""
    previous = {start: ""}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for child in sorted(graph.get(node, ())):
                if child not in previous:
                    previous[child] = node
                    if child == goal:
                        chain = [goal]
                        while chain[-1] != start:
                            chain.append(previous[chain[-1]])
                        return chain[::-1]
                    nxt.append(child)
        frontier = nxt
    return []

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


def layer_violations(graph: dict[str, set[str]],
                     layers: list[tuple[str, frozenset[str] | None]],
                     exceptions: dict[tuple[str, str], str],
                     neutral: frozenset[str] = frozenset()) -> list[str]:
    """Imports that reach up a layer, one line each.

    ``layers`` lists the layers bottom-up as ``(name, modules)``; the last may have ``None`` for
    "every other module of the graph". A module may import its own layer and the ones below.
    ``neutral`` modules are in no layer (docstring-only package inits, which run on the way to a
    submodule). ``exceptions`` are allowed edges ``(importer, imported) -> reason``; an exception
    that no longer names an upward edge of the graph is reported too, so the list cannot rot."""
    rank: dict[str, int] = {}
    rest = None
    for i, (_, modules) in enumerate(layers):
        if modules is None:
            rest = i
        else:
            rank.update(dict.fromkeys(modules, i))

    def level(module: str) -> int | None:
        if module in neutral:
            return None
        return rank.get(module, rest)

    found, used = [], set()
    for importer, targets in sorted(graph.items()):
        low = level(importer)
        for target in sorted(targets):
            high = level(target)
            if low is None or high is None or high <= low:
                continue
            if (importer, target) in exceptions:
                used.add((importer, target))
                continue
            below = [name for name, _ in layers[:low + 1]]
            found.append(f"{importer} ({layers[low][0]}) imports {target} ({layers[high][0]}): "
                         f"a {layers[low][0]} module may import only {' or '.join(below)} modules")
    found += [f"exception {edge} is not an upward import any more: drop it"
              for edge in sorted(set(exceptions) - used)]
    unknown = sorted(m for _, modules in layers if modules is not None for m in modules
                     if m not in graph)
    found += [f"{m} is listed in a layer but is not a module" for m in unknown]
    return found

"""The layout's rules (docs/architecture.md), checked on the source itself:

* no import cycle anywhere in ``sim/``, ``hermes_opt/`` or ``hydra_plugins/``, function-level
  imports included;
* data flows one way: each folder imports only the folders below it;
* ``sim/`` is a pure library (no Hydra, Optuna, pandas or plotting);
* inside ``sim/``, spec modules -> ``sim.config`` -> runtime: a spec module imports no config or
  runtime module, and ``sim.config`` no runtime module (but the named exceptions);
* every package's ``__init__.py`` says what the folder does and what it may import, and runs no
  imports of its own (but ``sim/__init__.py``, the library's public API);
* modules stay small (functions too: test_function_length.py).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from imports import (  # noqa: E402
    cycles,
    import_graph,
    layer_violations,
    path_between,
    project_modules,
)

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("sim", "hermes_opt", "hydra_plugins")

# folder -> the folders its modules may import (its own included). Order = the data flow.
ALLOWED = {
    "sim": {"sim"},
    "hermes_opt.compose": {"sim", "hermes_opt.compose"},
    "hermes_opt.study": {"sim", "hermes_opt.compose", "hermes_opt.study"},
    "hermes_opt.calibration": {"sim", "hermes_opt.compose", "hermes_opt.calibration"},
    "hermes_opt.validation": {"sim", "hermes_opt.compose", "hermes_opt.calibration",
                              "hermes_opt.validation"},
    "hermes_opt.run": {"sim", "hermes_opt.compose", "hermes_opt.study", "hermes_opt.run"},
    "hermes_opt.report": {"sim", "hermes_opt.compose", "hermes_opt.study", "hermes_opt.report"},
    "hermes_opt.cli": {"sim", "hermes_opt"},
    "hermes_opt.api": {"hermes_opt"},  # the Python API: a thin front over every stage, like cli
    "hermes_opt": {"hermes_opt"},  # the top-level package itself (docstring only)
    "hydra_plugins": {"sim", "hermes_opt.compose", "hermes_opt.study", "hermes_opt.run",
                      "hydra_plugins"},
}

# Package inits that import: the library's public API (``from sim import simulate``). Nothing in
# sim/ may take names from it (that is a cycle, which test_no_import_cycles reports).
PUBLIC_API_INITS = {Path("sim/__init__.py")}

# Modules allowed past ~400 lines, each with its reason.
LONG_MODULES: dict[str, str] = {}
MAX_LINES = 400

# sim/'s own layers, bottom-up: the spec records (and pure functions of them) that SimConfig is
# written in -> sim.config (SimConfig, PoolSpec, SchedulerSpec, ...) -> the runtime, every other
# module of sim/ (engine, scheduling, pools and stages, metrics, the KV store, cost models,
# simulation, analytic, and the public API sim/__init__.py). A module imports its own layer and
# the ones below. Package inits other than sim/__init__.py are docstring-only: in no layer.
SIM_SPEC = frozenset({
    "sim.errors",  # ConfigError and the require_* checks every spec uses
    "sim.request",  # the stage plan (StageKind, Stage, RouteTarget), and the Request record the
                    # runtime fills in: a leaf, it imports nothing from sim/
    "sim.roles",  # pool roles and the stage kinds each serves
    "sim.workload.spec",  # arrivals, lengths, traces
    "sim.hardware.specs",  # device and model records, number formats, parallelism rules
    "sim.hardware.precision",  # the format GEMMs and attention run in, from the specs
    "sim.hardware.memory",  # weights and KV bytes per device, from the specs
    "sim.hardware.speculative",  # speculative decoding: drafter, draft length, acceptance
    "sim.cost.layer_work",  # a layer's FLOPs and bytes per device, from the model spec
    "sim.pipeline.specs",  # index, link, prefix and reasoning specs
    "sim.pipeline.validate",  # the plan rules
    "sim.pipeline.deployment",  # the plan that follows from the pools (expand_workload)
    "sim.kvstore.specs",  # KV tiers, links, sharing domains
})
SIM_CONFIG = frozenset({"sim.config"})
SIM_LAYERS = [("spec", SIM_SPEC), ("config", SIM_CONFIG), ("runtime", None)]
# (importer, imported) -> why this import crosses the layers. Each must still exist.
SIM_LAYER_EXCEPTIONS = {
    ("sim.config", "sim.scheduling.policies.registry"):
        "BatchPolicy is derived from the registry of batching policies, and SchedulerSpec.validate "
        "calls the policy's own checks (a new policy is one module + one registry line); the "
        "policies see the spec duck-typed (test_batching_policies_see_the_spec...)",
    ("sim.config", "sim.cost.roofline"):
        "PoolSpec.cost.roofline is a RooflineParams (what calibration fits), defined next to the "
        "roofline model that reads it",
    ("sim.kvstore.specs", "sim.kvstore.policies"):
        "KVTierSpec's Eviction and Admission enums live with the factories that map them to the "
        "policy classes (lru, lfu, s3fifo, admission), which import only sim.errors",
}

SIM_FORBIDDEN = {"hydra", "omegaconf", "optuna", "pandas", "pyarrow", "matplotlib", "plotly",
                 "joblib", "sqlalchemy"}


def folder_of(module: str) -> str:
    """The most specific ALLOWED key that contains ``module``."""
    best = ""
    for folder in ALLOWED:
        if (module == folder or module.startswith(folder + ".")) and len(folder) > len(best):
            best = folder
    return best


def allowed(importer: str, target: str) -> bool:
    folders = ALLOWED[folder_of(importer)]
    # a package on the way to an allowed folder (``hermes_opt`` for ``hermes_opt.study``) runs
    # only its docstring-only __init__ (test_package_docstrings... checks that)
    return any(target == f or target.startswith(f + ".") or f.startswith(target + ".")
               for f in folders)


@pytest.fixture(scope="module")
def graph():
    return import_graph(project_modules(ROOT, PACKAGES))


def test_no_import_cycles(graph):
    found = cycles(graph)
    assert not found, "import cycles (function-level imports count):\n" + "\n".join(
        " -> ".join(path_between(graph, c[0], c[1]) + path_between(graph, c[1], c[0])[1:])
        + f"   (cycle of {len(c)}: {', '.join(c)})" for c in found)


def test_data_flows_one_way(graph):
    wrong = [f"{importer} imports {target} ({folder_of(importer)} may import only "
             f"{sorted(ALLOWED[folder_of(importer)])})"
             for importer, targets in sorted(graph.items()) for target in sorted(targets)
             if not allowed(importer, target)]
    assert not wrong, "\n".join(wrong)


def test_every_module_belongs_to_a_folder(graph):
    assert [m for m in graph if not folder_of(m)] == []


def test_batching_policies_see_the_spec_and_the_replica_duck_typed(graph):
    """So the registry stays importable from sim.config (a policy importing either is a cycle)."""
    wrong = {m: sorted(deps & {"sim.config", "sim.scheduling.replica", "sim.scheduling.pool",
                               "sim.scheduling.decode_runs"})
             for m, deps in graph.items() if m.startswith("sim.scheduling.policies")}
    assert not any(wrong.values()), wrong


def _neutral(modules: dict[str, Path], public_api: str) -> frozenset[str]:
    return frozenset(m for m, path in modules.items()
                     if path.name == "__init__.py" and m != public_api)


def test_sim_specs_then_config_then_runtime():
    modules = project_modules(ROOT, ("sim",))
    wrong = layer_violations(import_graph(modules), SIM_LAYERS, SIM_LAYER_EXCEPTIONS,
                             _neutral(modules, "sim"))
    assert not wrong, "sim/ layering (SIM_SPEC -> SIM_CONFIG -> runtime):\n" + "\n".join(wrong)


def test_sim_is_a_pure_library():
    bad = []
    for name, path in project_modules(ROOT, ("sim",)).items():
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                     else [])
            bad += [f"{name} imports {n}" for n in names if n.split(".")[0] in SIM_FORBIDDEN]
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("open", "print"):
                bad.append(f"{name} calls {node.func.id}() (sim/ does no I/O)")
    assert not bad, "\n".join(bad)


def test_package_docstrings_say_what_the_folder_does_and_may_import():
    problems = []
    for init in sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("__init__.py")):
        tree = ast.parse(init.read_text())
        doc = ast.get_docstring(tree) or ""
        where = init.relative_to(ROOT)
        if len(doc.split()) < 8:
            problems.append(f"{where}: no docstring saying what the folder does")
        if "may import" not in doc.lower():
            problems.append(f"{where}: the docstring does not say what the folder may import")
        if any(isinstance(n, (ast.Import, ast.ImportFrom)) and
               not (isinstance(n, ast.ImportFrom) and n.module == "__future__")
               for n in ast.walk(tree)) and where not in PUBLIC_API_INITS:
            problems.append(f"{where}: imports modules (keep package inits side-effect free)")
    assert not problems, "\n".join(problems)


def test_modules_stay_small():
    long = {str(p.relative_to(ROOT)): n for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    unexplained = {p: n for p, n in long.items() if p not in LONG_MODULES}
    assert not unexplained, f"modules over {MAX_LINES} lines: {unexplained}"
    assert set(LONG_MODULES) <= set(long), "LONG_MODULES lists a module that is short now"


# --- the checker itself: it must see what it claims to see ------------------------------------
def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _cycles_of(root: Path) -> list[list[str]]:
    return cycles(import_graph(project_modules(root, ("pkg",))))


def test_checker_sees_a_cycle_through_a_function_level_import(tmp_path):
    _write(tmp_path, {"pkg/__init__.py": "", "pkg/a.py": "from pkg.b import f\n",
                      "pkg/b.py": "def f():\n    from pkg import a\n    return a\n"})
    assert _cycles_of(tmp_path) == [["pkg.a", "pkg.b"]]


def test_checker_sees_relative_imports_and_package_inits(tmp_path):
    _write(tmp_path, {"pkg/__init__.py": "from . import a\n", "pkg/a.py": "x = 1\n",
                      "pkg/sub/__init__.py": "", "pkg/sub/c.py": "from ..a import x\n"})
    graph = import_graph(project_modules(tmp_path, ("pkg",)))
    assert graph["pkg.sub.c"] == {"pkg.a"}  # its own parent packages ran before it: no edge
    assert graph["pkg"] == {"pkg.a"} and _cycles_of(tmp_path) == []
    # pkg.a -> pkg.sub.c -> pkg (its __init__ runs first) -> pkg.a
    _write(tmp_path, {"pkg/a.py": "import pkg.sub.c\n"})
    assert _cycles_of(tmp_path) == [["pkg.a", "pkg.sub.c"]]


def test_checker_passes_an_acyclic_tree(tmp_path):
    _write(tmp_path, {"pkg/__init__.py": "", "pkg/a.py": "import math\nfrom pkg import b\n",
                      "pkg/b.py": "import json\n"})
    assert _cycles_of(tmp_path) == []


def test_checker_sees_an_import_up_the_layers(tmp_path):
    _write(tmp_path, {"pkg/__init__.py": "", "pkg/sub/__init__.py": "",
                      "pkg/spec.py": "def f():\n    from pkg.sub import run\n",  # late, still counts
                      "pkg/config.py": "from pkg import spec, other\n",
                      "pkg/sub/run.py": "from pkg import config\n",
                      "pkg/other.py": "from pkg import spec\n"})
    modules = project_modules(tmp_path, ("pkg",))
    graph = import_graph(modules)
    layers = [("spec", frozenset({"pkg.spec"})), ("config", frozenset({"pkg.config"})),
              ("runtime", None)]
    neutral = _neutral(modules, "")
    assert layer_violations(graph, layers, {}, neutral) == [
        "pkg.config (config) imports pkg.other (runtime): a config module may import only spec "
        "or config modules",
        "pkg.spec (spec) imports pkg.sub.run (runtime): a spec module may import only spec "
        "modules"]
    allowed = {("pkg.config", "pkg.other"): "why", ("pkg.spec", "pkg.sub.run"): "why"}
    assert layer_violations(graph, layers, allowed, neutral) == []
    # an exception whose import is gone, and a layer naming a module that does not exist
    _write(tmp_path, {"pkg/spec.py": "x = 1\n"})
    graph = import_graph(project_modules(tmp_path, ("pkg",)))
    layers[0] = ("spec", frozenset({"pkg.spec", "pkg.gone"}))
    assert layer_violations(graph, layers, allowed, neutral) == [
        "exception ('pkg.spec', 'pkg.sub.run') is not an upward import any more: drop it",
        "pkg.gone is listed in a layer but is not a module"]

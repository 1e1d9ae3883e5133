"""Who may touch what inside ``sim/`` (docs/architecture.md), checked on the source with ``ast``:

* only the kernel touches its heap: no module but ``sim/engine.py`` names an attribute ``_heap``
  (the engine's; other heaps have other names) or any private attribute of an ``engine``; they
  call ``Engine.schedule``, ``push``, ``run_now`` and ``next_time_s``;
* a batching policy drives its replica through ``ReplicaView`` alone: no module of
  ``sim/scheduling/policies/`` reads a private attribute of ``replica``, and every attribute it
  reads there is a member of the protocol. (``tests/sim/test_replica_contract.py`` checks the
  other side: the replica provides every member, and the policies use no other at run time.)
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from sim.scheduling.policies.contract import ReplicaView

ROOT = Path(__file__).resolve().parents[2]
KERNEL = Path("sim/engine.py")
POLICIES = Path("sim/scheduling/policies")


def _is_engine(node: ast.expr) -> bool:
    """``engine`` or ``<anything>.engine``: the simulation's kernel, by the project's naming."""
    return (isinstance(node, ast.Name) and node.id == "engine") or \
        (isinstance(node, ast.Attribute) and node.attr == "engine")


def kernel_intrusions(source: str) -> list[str]:
    """``line: expression`` for each access to the engine's heap or private state."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and (
                node.attr == "_heap" or (node.attr.startswith("_") and _is_engine(node.value))):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def replica_accesses(source: str) -> list[tuple[int, str]]:
    """``(line, attribute)`` for each ``replica.<attribute>`` in ``source``."""
    return sorted((node.lineno, node.attr) for node in ast.walk(ast.parse(source))
                  if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                  and node.value.id == "replica")


def private_replica_accesses(source: str) -> list[str]:
    """``line: replica.<attribute>`` for each private attribute read on ``replica``."""
    return [f"{line}: replica.{attr}" for line, attr in replica_accesses(source)
            if attr.startswith("_")]


def protocol_members(protocol: type) -> set[str]:
    """The members a protocol class declares: annotated attributes and methods."""
    return set(protocol.__annotations__) | {
        name for name, value in vars(protocol).items()
        if inspect.isfunction(value) and not name.startswith("_")}


def _sim_modules() -> list[Path]:
    return sorted(p.relative_to(ROOT) for p in (ROOT / "sim").rglob("*.py"))


def test_only_the_kernel_touches_its_heap():
    bad = {str(rel): hits for rel in _sim_modules() if rel != KERNEL
           if (hits := kernel_intrusions((ROOT / rel).read_text()))}
    assert not bad, ("only sim/engine.py may touch the engine's heap or private state; use "
                     f"Engine.push / run_now / next_time_s: {bad}")


def test_policies_touch_no_private_member_of_the_replica():
    modules = sorted((ROOT / POLICIES).rglob("*.py"))
    assert len(modules) >= 6, modules  # the scan sees the policies
    bad = {str(rel.relative_to(ROOT)): hits for rel in modules
           if (hits := private_replica_accesses(rel.read_text()))}
    assert not bad, f"policies must use ReplicaView's public members only: {bad}"


def test_policies_use_only_members_of_the_replica_view():
    members = protocol_members(ReplicaView)
    used = {attr: str(rel.relative_to(ROOT)) for rel in sorted((ROOT / POLICIES).rglob("*.py"))
            for _, attr in replica_accesses(rel.read_text())}
    assert used, "no policy reads its replica: the scan is broken"
    outside = {attr: where for attr, where in used.items() if attr not in members}
    assert not outside, f"add these to ReplicaView (contract.py) or stop using them: {outside}"


def test_the_replica_view_names_only_public_members():
    members = protocol_members(ReplicaView)
    assert {"start_step", "start_decode_run", "admit", "waiting"} <= members
    assert not [m for m in members if m.startswith("_")]


# --- the checkers themselves: they must see what they claim to see ---------------------------
def test_checker_sees_heap_and_private_engine_access():
    source = ("def f(self, engine):\n"
              "    engine._seq += 1\n"
              "    heappush(self.engine._heap, (0.0,))\n"
              "    x = self._heap\n"
              "    engine.push(0.0, 0, f, ())\n"
              "    self._seq += 1\n")
    assert sorted(kernel_intrusions(source)) == ["2: engine._seq", "3: self.engine._heap",
                                                 "4: self._heap"]


def test_checker_sees_private_replica_access():
    source = "def next_step(self, replica):\n    replica._start_step([])\n    replica.waiting\n"
    assert replica_accesses(source) == [(2, "_start_step"), (3, "waiting")]
    assert private_replica_accesses(source) == ["2: replica._start_step"]

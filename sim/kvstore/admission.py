"""Admission rules: whether a freshly computed prefix is worth storing at all.

Eviction decides what leaves; admission decides what enters. Storing a prefix that is never looked
up again (a one-hit wonder) costs a transfer and pushes out something useful, so
``SecondAccessAdmit`` stores a prefix only once it has been looked up before. The store calls
``record(key)`` on every lookup and ``admit(key)`` when a computed prefix could be stored.

Memory: ``SecondAccessAdmit`` remembers every key ever looked up (one int per distinct prefix,
never forgotten). That is fine for a simulation run; a bounded variant would be a Bloom-filter
"doorkeeper" as in TinyLFU, at the cost of false admits.
"""

from __future__ import annotations


class AlwaysAdmit:
    """Every computed prefix is stored."""

    __slots__ = ()

    def record(self, key: int) -> None:
        pass

    def admit(self, key: int) -> bool:
        return True


class SecondAccessAdmit:
    """A prefix is stored only from its second recorded lookup on (one-hit wonders are skipped)."""

    __slots__ = ("_seen_once", "_seen_twice")

    def __init__(self) -> None:
        self._seen_once: set[int] = set()  # recorded exactly once so far
        self._seen_twice: set[int] = set()  # recorded at least twice

    def record(self, key: int) -> None:
        if key in self._seen_once:
            self._seen_once.discard(key)
            self._seen_twice.add(key)
        elif key not in self._seen_twice:
            self._seen_once.add(key)

    def admit(self, key: int) -> bool:
        return key in self._seen_twice

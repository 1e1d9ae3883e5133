"""Named, independent random streams.

Every subsystem draws from its own ``numpy.random.Generator`` seeded from ``(seed, crc32(name))``,
so adding draws in one subsystem never shifts the numbers another one sees, and Python's salted
``hash()`` never enters.
"""

from __future__ import annotations

import zlib

import numpy as np


def stable_hash(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


def stream(seed: int, name: str) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), stable_hash(name)])))

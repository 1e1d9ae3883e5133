"""``ruff check`` on the whole tree, with the rules in pyproject.toml ([tool.ruff]).

Most findings are fixed by ``ruff check --fix .``; the rest need a hand (or a ``# noqa: CODE  why``
where the code is deliberate). Skipped only when ruff is not installed (``pip install -e .[test]``
installs it).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_ruff_finds_nothing():
    if importlib.util.find_spec("ruff") is None:
        pytest.skip("ruff is not installed (it is in the test extra: pip install -e .[test])")
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(ROOT)],
                          cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.fail(f"ruff check found problems (`ruff check --fix .` fixes the mechanical "
                    f"ones):\n{done.stdout}{done.stderr}", pytrace=False)

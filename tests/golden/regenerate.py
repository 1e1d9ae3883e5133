"""Rewrite the pinned golden outputs. Run only for an intended, explained behaviour change:

    python tests/golden/regenerate.py            # every case
    python tests/golden/regenerate.py chunked    # some cases (`study`: the pinned study)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tempfile

from cases import SIM_CASES, STUDY_PATH, run_sim, run_study, sim_path  # noqa: E402


def main(names: list[str]) -> None:
    if not names or "study" in names:
        with tempfile.TemporaryDirectory() as tmp:
            STUDY_PATH.write_text(run_study(Path(tmp)) + "\n")
        print(f"wrote {STUDY_PATH}")
        names = [n for n in names if n != "study"] if names else list(SIM_CASES)
    for name in names:
        path = sim_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(run_sim(SIM_CASES[name]) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])

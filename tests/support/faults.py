"""Fault-test figures: a study after a fault against the same study run without one."""

from __future__ import annotations


def trials_of(study) -> dict[int, tuple]:
    return {t.number: (t.state.name, t.params, t.values, t.constraints)
            for t in study.get_trials(deepcopy=False)}


def fault_figures(straight, faulted, told: int | None = None) -> dict[str, int]:
    """Trials lost (in the clean run, missing or unfinished after the fault), duplicated (extra
    trials, or more tells than trials when ``told`` is given) and differing (same number, other
    state, parameters, values or constraints)."""
    clean, hit = trials_of(straight), trials_of(faulted)
    lost = sum(1 for n in clean if n not in hit or hit[n][0] != "COMPLETE")
    duplicated = max(0, len(hit) - len(clean)) + max(0, (told or len(hit)) - len(hit))
    differing = sum(1 for n in clean if n in hit and hit[n] != clean[n])
    return {"lost": lost, "duplicated": duplicated, "differing": differing}


CLEAN = {"lost": 0, "duplicated": 0, "differing": 0}

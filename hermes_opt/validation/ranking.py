"""Does the simulator order systems the way measured results do? Pure figures over records.

The question behind it is which hardware to buy, so what counts is the *order* of systems by a
per-accelerator figure within one comparable group (same benchmark, same scenario), most of all
across vendors. Absolute error is reported too, but a model that is 30 % low everywhere still
ranks perfectly.

A ``Record`` is one system (submission) of a group with its measured and predicted figure per
accelerator (Offline: output tokens/s / GPUs; Server: SLO capacity in queries/s / GPUs). Records
come from anywhere: ``benchmarks/bench_ranking.py`` simulates them, a leave-submitters-out fit can
make its own. Nothing here simulates or reads files; every function is deterministic.

Pairwise accuracy counts, within each group, the pairs whose *measured* figures differ by more
than ``min_gap`` (relative to the smaller): closer pairs are within run-to-run and tuning noise, so
no ranking should be scored on them. A pair is ``correct`` when the predicted order equals the
measured one, ``wrong`` when reversed, ``tied`` when the predictions are equal (the simulator sees
two submissions of the same GPU and count as the same machine, so ties are common and not a
rounding accident). ``share`` counts ties as wrong (a tie cannot tell the buyer which is faster);
``share_ties_half`` counts them as a coin flip (the accuracy of a random tie-break).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from itertools import combinations

import numpy as np

Group = tuple[str, str]  # (benchmark, scenario), e.g. ("llama2-70b-99", "Offline")


@dataclass(frozen=True, slots=True)
class Record:
    group: Group
    system: str  # the submission's system id (unique within its submitter)
    submitter: str
    vendor: str  # accelerator vendor (NVIDIA, AMD), from the GPU name
    gpu: str  # catalog hardware name
    num_gpus: int
    measured: float  # figure per accelerator (tokens/s or queries/s per GPU)
    predicted: float  # same unit; NaN when there is no prediction (the record is skipped)

    @property
    def scenario(self) -> str:
        return self.group[1]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["group"] = list(self.group)
        return d

    @staticmethod
    def from_dict(d: dict) -> Record:
        """Inverse of ``to_dict`` (JSON turns the group tuple into a list)."""
        return Record(group=(str(d["group"][0]), str(d["group"][1])), system=str(d["system"]),
                      submitter=str(d["submitter"]), vendor=str(d["vendor"]), gpu=str(d["gpu"]),
                      num_gpus=int(d["num_gpus"]), measured=float(d["measured"]),
                      predicted=float(d["predicted"]))


def _usable(r: Record) -> bool:
    # a missing or non-positive figure cannot be ordered or turned into a % error
    return all(math.isfinite(v) and v > 0 for v in (r.measured, r.predicted))


def by_group(records: Iterable[Record]) -> dict[Group, list[Record]]:
    """Usable records per group, groups and members in a fixed order (sorted), so every figure
    is the same whatever order the caller passed."""
    out: dict[Group, list[Record]] = {}
    for r in records:
        if _usable(r):
            out.setdefault(r.group, []).append(r)
    return {g: sorted(rs, key=lambda r: (r.submitter, r.system, r.gpu, r.num_gpus))
            for g, rs in sorted(out.items())}


def relative_gap(a: float, b: float) -> float:
    """|a - b| relative to the smaller of the two (a 5 % gap either way reads the same)."""
    return abs(a - b) / min(a, b)


# pair filters: which pairs a share is over
PAIR_FILTERS: dict[str, Callable[[Record, Record], bool]] = {
    "all": lambda a, b: True,
    "cross_vendor": lambda a, b: a.vendor != b.vendor,  # NVIDIA vs AMD: the buying decision
    "cross_gpu": lambda a, b: a.gpu != b.gpu,  # different accelerators, any vendor
    # different accelerators of one vendor: separates "orders GPUs" from "orders vendors"
    "same_vendor_cross_gpu": lambda a, b: a.vendor == b.vendor and a.gpu != b.gpu,
}


@dataclass(frozen=True, slots=True)
class PairOutcome:
    group: Group
    a: Record  # the one measured faster
    b: Record
    measured_gap: float  # relative, > min_gap
    outcome: str  # 'correct' | 'wrong' | 'tied'


def scored_pairs(records: Iterable[Record], min_gap: float = 0.05) -> list[PairOutcome]:
    """Every within-group pair whose measured figures differ by more than ``min_gap``, with
    whether the prediction orders it the same way. ``a`` is the measured-faster system."""
    out = []
    for group, rs in by_group(records).items():
        for x, y in combinations(rs, 2):
            gap = relative_gap(x.measured, y.measured)
            if not gap > min_gap:
                continue
            a, b = (x, y) if x.measured > y.measured else (y, x)
            # equal up to float noise: the same GPU and layout scaled by another replica count
            tied = math.isclose(a.predicted, b.predicted, rel_tol=1e-9)
            outcome = ("tied" if tied else
                       "correct" if a.predicted > b.predicted else "wrong")
            out.append(PairOutcome(group, a, b, gap, outcome))
    return out


def _tally(pairs: list[PairOutcome]) -> dict[str, float | int | None]:
    n = len(pairs)
    c = sum(p.outcome == "correct" for p in pairs)
    t = sum(p.outcome == "tied" for p in pairs)
    return {"pairs": n, "correct": c, "wrong": n - c - t, "tied": t,
            "share": c / n if n else None,  # None, not 0: no pair to score is no evidence
            "share_ties_half": (c + t / 2) / n if n else None}


def pairwise_accuracy(records: Iterable[Record], min_gap: float = 0.05
                      ) -> dict[str, dict[str, dict]]:
    """{filter: {'pooled': tally, 'groups': {"benchmark/scenario": tally}}} for each pair
    filter of ``PAIR_FILTERS``; a tally has pairs, correct, wrong, tied, share, share_ties_half.
    Pooled = every scored pair of every group counted once (groups with more pairs weigh more)."""
    pairs = scored_pairs(records, min_gap)
    groups = sorted({p.group for p in pairs})
    out = {}
    for name, keep in PAIR_FILTERS.items():
        kept = [p for p in pairs if keep(p.a, p.b)]
        out[name] = {"pooled": _tally(kept),
                     "groups": {"/".join(g): _tally([p for p in kept if p.group == g]) for g in groups}}
    return out


def _ranks(values: list[float]) -> np.ndarray:
    """Ranks 1..n, ties sharing their average rank (the usual Spearman convention)."""
    v = np.asarray(values, dtype=float)
    order = np.argsort(v, kind="stable")
    ranks = np.empty(len(v))
    ranks[order] = np.arange(1, len(v) + 1)
    for value in np.unique(v):
        tie = v == value
        ranks[tie] = ranks[tie].mean()
    return ranks


def spearman(measured: list[float], predicted: list[float]) -> float | None:
    """Spearman rank correlation; None when undefined (fewer than 2 systems, or one side
    constant: no ordering to correlate)."""
    if len(measured) < 2:
        return None
    rm, rp = _ranks(measured), _ranks(predicted)
    if rm.std() == 0 or rp.std() == 0:
        return None
    return float(np.corrcoef(rm, rp)[0, 1])


def spearman_by_group(records: Iterable[Record]) -> dict[str, object]:
    """{'groups': {"benchmark/scenario": {'n': systems, 'rho': float | None}}, 'median': median
    rho over the groups where it is defined (None if none is)}."""
    groups = {"/".join(g): {"n": len(rs), "rho": spearman([r.measured for r in rs],
                                                           [r.predicted for r in rs])}
              for g, rs in by_group(records).items()}
    rhos = [v["rho"] for v in groups.values() if v["rho"] is not None]
    return {"groups": groups, "median": float(np.median(rhos)) if rhos else None}


def errors(records: Iterable[Record]) -> dict[str, dict[str, float | int | None]]:
    """Absolute % error of the per-accelerator figure, |predicted / measured - 1| x 100, per
    scenario: {scenario: {'n', 'median_pct', 'p90_pct', 'median_ratio'}}. The median ratio says
    which way the error goes (a uniform bias does not change any ranking)."""
    by_scenario: dict[str, list[Record]] = {}
    for rs in by_group(records).values():
        for r in rs:
            by_scenario.setdefault(r.scenario, []).append(r)
    out = {}
    for scenario, rs in sorted(by_scenario.items()):
        ratio = np.array([r.predicted / r.measured for r in rs])
        ape_pct = np.abs(ratio - 1) * 100
        out[scenario] = {"n": len(rs), "median_pct": float(np.median(ape_pct)),
                         "p90_pct": float(np.percentile(ape_pct, 90)),
                         "median_ratio": float(np.median(ratio))}
    return out


def summary(records: Iterable[Record], min_gap: float = 0.05) -> dict[str, object]:
    """The three figures together (what the benchmark prints and writes)."""
    records = list(records)
    return {"pairwise": pairwise_accuracy(records, min_gap), "spearman": spearman_by_group(records),
            "errors": errors(records), "min_gap": min_gap}

"""Closed-form capacity and latency at load of an LLM deployment, from its step-time model.

Per replica of each LLM pool, in steady state (arrival rate ``lam`` per replica, prompts ``x``
and answers ``o`` drawn from the workload's length distributions):

* **Batch fixed point.** A step of time ``T`` advances every running sequence one token and
  carries ``p`` prompt tokens. Flow balance gives ``B = lam E[o] T`` running sequences and
  ``p = lam E[x] T`` prompt tokens per step, with ``T = step_time(B, p)`` from the pool's own
  ``StepCostModel`` (decode context ``B x (E[x] + E[o^2] / 2E[o])``, the time-average context of a
  running sequence). ``B`` is found by bisection on ``[0, B_max]``, where ``B_max`` is the least
  of ``max_num_seqs``, the KV blocks over that context, and the step token budget's share left
  to decodes. No solution below ``B_max``: the replica is overloaded.
* **Capacity** is the arrival rate at ``B_max``: ``B_max / (E[o] T(B_max))`` per replica.
* **TTFT** is a G/G/1 queue of prompts in front of the budget left to prefill (Kingman's mean wait,
  arrival variability ``cv^2 / replicas`` for a round-robin split, an exponential wait tail) plus
  the prompt's own prefill steps; percentiles are those of the mixture over prompt lengths.
* **TPOT** is the step time at the batch's mean and at its Poisson upper quantiles.

Disaggregated pools split this: the prefill pool is the prompt queue with the whole budget, the
decode pool the batch fixed point without prompt tokens; TTFT adds the KV transfer and, by the
decode engine's first-token rule, one decode step. An overloaded pool's backlog grows over the
run: TTFT then grows with the unserved share of the run's duration (a decode backlog goes to
TPOT instead when the first token is stamped at the prefill's end).

What it does not model is said by ``Estimate.reason`` with ``supported = False`` (several request
types, prefix reuse, reasoning, KV stores, non-LLM pools, closed-loop or trace arrivals): the
caller must simulate those.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sim.analytic.lengths import LengthStats, length_stats
from sim.config import PoolSpec, SimConfig
from sim.cost.base import StepShape
from sim.cost.factory import build_cost_model
from sim.errors import ConfigError
from sim.pipeline.disaggregation import link_between
from sim.pipeline.specs import FirstToken
from sim.request import StageKind
from sim.roles import LLM_ROLES, PoolRole
from sim.scheduling.policies.registry import strategy_for
from sim.workload.spec import ArrivalKind

STATS = ("mean", "p50", "p90", "p99")
_Z = {"p50": 0.0, "p90": 1.2816, "p99": 2.3263}
_BISECT = 24
_GRID = 128  # time points of the TTFT tail
_MIX = 4  # the tail mixes every 4th of the 256 prompt-length points (64, equally likely)


@dataclass(frozen=True, slots=True)
class PoolEstimate:
    name: str
    role: str
    replicas: int
    capacity_rps: float  # whole pool
    utilisation: float  # arrival rate / capacity
    batch: float  # steady running sequences per replica
    step_ms: float  # steady step time


@dataclass(frozen=True, slots=True)
class Estimate:
    supported: bool
    reason: str = ""
    arrival_rps: float = 0.0
    capacity_rps: float = 0.0  # the deployment's: its most loaded pool's
    ttft_ms: dict[str, float] = field(default_factory=dict)
    tpot_ms: dict[str, float] = field(default_factory=dict)
    e2e_ms: dict[str, float] = field(default_factory=dict)
    output_tokens_per_s: float = 0.0  # served
    slo_attainment: float = 0.0  # estimated share of requests meeting every SLO
    mean_output_tokens: float = 0.0
    pools: tuple[PoolEstimate, ...] = ()

    @property
    def goodput_output_tokens_per_s(self) -> float:
        return self.output_tokens_per_s * self.slo_attainment

    def metrics(self) -> dict:
        """Summary-shaped metrics (the paths objectives and constraints name)."""
        return {"ttft_ms": dict(self.ttft_ms), "tpot_ms": dict(self.tpot_ms),
                "e2e_ms": dict(self.e2e_ms), "output_tokens_per_s": self.output_tokens_per_s,
                "goodput_output_tokens_per_s": self.goodput_output_tokens_per_s,
                "slo_attainment": self.slo_attainment, "capacity_rps": self.capacity_rps,
                "steady_state": {"goodput_output_tokens_per_s": self.goodput_output_tokens_per_s}}


def unsupported(config: SimConfig) -> str:
    """Why ``estimate`` cannot model this scenario ('' when it can)."""
    wl = config.workload
    if config.kv_stores:
        return "prefix-KV stores are not modelled"
    if len(wl.request_types) != 1:
        return "several request types are not modelled"
    rt = wl.request_types[0]
    if rt.prefix is not None or rt.reasoning is not None:
        return "prefix reuse and reasoning are not modelled"
    if (rt.arrival or wl.arrival).kind not in (ArrivalKind.POISSON, ArrivalKind.GAMMA):
        return f"arrival kind {wl.arrival.kind.value} is not modelled (poisson, gamma are)"
    if length_stats(rt.prompt_tokens) is None or length_stats(rt.output_tokens) is None:
        return "trace lengths are not modelled"
    if any(p.role not in LLM_ROLES for p in config.pools):
        return "pools other than LLM pools are not modelled"
    kinds = [s.kind for s in rt.plan]
    if kinds not in ([StageKind.GENERATE], [StageKind.PREFILL, StageKind.DECODE]):
        return f"plan {[k.value for k in kinds]} is not modelled (generate, or prefill + decode)"
    if rt.slo is not None and rt.slo.e2e_ms is not None:
        return "per-type SLOs are not modelled"
    return ""


class _Replica:
    """One replica of a pool: its cost model, budgets and the workload's lengths."""

    def __init__(self, pool: PoolSpec, prompt: LengthStats, output: LengthStats) -> None:
        self.pool, self.model = pool, build_cost_model(pool)
        sched = pool.scheduler
        # the per-step token budget, as the pool's batching strategy reads it from its spec
        self.budget = strategy_for(sched.policy).token_budget(sched)
        self.px, self.po = prompt.mean, output.mean
        self.prompt = prompt
        # time-average context of a running sequence: its prompt plus half its answer, length-biased
        self.ctx = prompt.mean + output.second_moment / (2 * output.mean)
        blocks = pool.kv_capacity_blocks()
        kv_tokens = blocks * (1 - sched.kv_watermark_fraction) * sched.block_size_tokens
        per_seq = self.ctx + sched.block_size_tokens / 2  # a partly filled last block
        self.b_kv = kv_tokens / per_seq
        self.b_max = max(1.0, min(float(sched.max_num_seqs), self.b_kv))
        self.frontend_s = pool.cost_model.frontend_latency_s
        # per prompt token, attention pairs and KV read by prefill (chunks re-read their prefix)
        self.pairs_per_token = prompt.second_moment / (2 * prompt.mean)
        chunks = max(1.0, prompt.mean / self.budget)
        self.read_per_token = (1 + chunks) / 2

    def step_s(self, decode_seqs: float, prefill_tokens: float) -> float:
        b = int(round(decode_seqs))
        p = int(round(prefill_tokens))
        if b == 0 and p == 0:
            return 0.0
        shape = StepShape(prefill_tokens=p, prefill_attention_pairs=p * self.pairs_per_token,
                          prefill_context_tokens=int(p * self.read_per_token),
                          num_prefill_seqs=max(1, math.ceil(p / self.px)) if p else 0,
                          num_decode_seqs=b, decode_context_tokens=int(b * self.ctx))
        return self.model.step_time_s(shape)


def _step_model(rep: _Replica, prefill_share: float) -> tuple[float, float]:
    """(B_max, T(B_max)) when each decode token comes with ``prefill_share`` prompt tokens."""
    b_max = rep.b_max
    if prefill_share:  # decodes and their prompts share the step's token budget
        b_max = min(b_max, rep.budget / (1 + prefill_share))
    return b_max, rep.step_s(b_max, b_max * prefill_share)


def _batch_at(rep: _Replica, lam: float, prefill_share: float, b_max: float) -> float:
    """Steady running sequences B solving B = lam E[o] T(B, B * share), by bisection."""
    lo, hi = 0.0, b_max
    for _ in range(_BISECT):
        mid = 0.5 * (lo + hi)
        if lam * rep.po * rep.step_s(max(mid, 1.0), mid * prefill_share) > mid:
            lo = mid
        else:
            hi = mid
    return max(hi, min(1.0, b_max))


def _queue_quantiles(service_s: np.ndarray, rho: float, ca2: float, overload_s: float
                     ) -> dict[str, float]:
    """TTFT statistics (ms) of a G/G/1 prompt queue: Kingman's mean wait, exponential tail, mixed
    over the equally likely service times ``service_s``; ``overload_s`` adds a growing backlog."""
    es = float(service_s.mean())
    cs2 = float((service_s ** 2).mean()) / (es * es) - 1 if es > 0 else 0.0
    rho = min(rho, 0.999)
    wait = (ca2 + cs2) / 2 * rho / (1 - rho) * es if rho > 0 else 0.0
    out = {"mean": 1e3 * (wait + es + overload_s / 2)}
    quantiles = {"p50": 0.5, "p90": 0.9, "p99": 0.99}
    if wait <= 0:
        for name, q in quantiles.items():
            out[name] = 1e3 * (float(np.quantile(service_s, q)) + overload_s * q)
        return out
    rate = rho / wait  # P(W > u) = rho exp(-u rho / E[W]): the wait's exponential tail
    hi = float(service_s.max()) + max(0.0, math.log(100 * rho)) / rate
    grid = np.linspace(0.0, hi, _GRID)
    u = grid[:, None] - service_s[_MIX // 2::_MIX][None, :]
    tail = np.where(u < 0, 1.0, rho * np.exp(-np.maximum(u, 0.0) * rate)).mean(axis=1)
    for name, q in quantiles.items():  # tail falls with t: interpolate where it crosses 1 - q
        out[name] = 1e3 * (float(np.interp(1 - q, tail[::-1], grid[::-1])) + overload_s * q)
    return out


def _attainment(stats: dict[str, float], bound_ms: float | None) -> float:
    """Share of requests under ``bound_ms``, interpolated between the estimated percentiles."""
    if bound_ms is None:
        return 1.0
    points = [(0.0, 0.0), (0.5, stats["p50"]), (0.9, stats["p90"]), (0.99, stats["p99"])]
    if bound_ms >= stats["p99"]:
        return 0.99 + 0.01 * min(1.0, (bound_ms - stats["p99"]) / max(stats["p99"], 1e-9))
    for (q0, v0), (q1, v1) in zip(points, points[1:]):
        if bound_ms < v1:
            return q0 + (q1 - q0) * (bound_ms - v0) / (v1 - v0) if v1 > v0 else q0
    return 0.99


def _tpot(rep: _Replica, b: float, share: float, b_max: float, overload_s: float
          ) -> dict[str, float]:
    out = {"mean": 1e3 * rep.step_s(b, b * share)}
    for name, z in _Z.items():
        bz = min(b_max, b + z * math.sqrt(b))
        out[name] = 1e3 * (rep.step_s(bz, bz * share) + overload_s * (0.5 + z / 5))
    out["mean"] += 1e3 * overload_s / 2
    return out


def _disaggregated(config: SimConfig, by_role: dict, prompt: LengthStats, output: LengthStats,
                   lam: float, cv2: float, backlog_s) -> tuple[dict, dict, float, list]:
    """TTFT and TPOT quantiles, capacity and pool estimates of a prefill pool and a decode pool."""
    (pf, pre), (dp, dec) = by_role[PoolRole.PREFILL], by_role[PoolRole.DECODE]
    b_max, t_max = _step_model(dec, 0.0)
    cap_d = dp.num_replicas * b_max / (output.mean * t_max)
    b = _batch_at(dec, min(lam, cap_d) / dp.num_replicas, 0.0, b_max)
    lam_p = lam / pf.num_replicas
    t1, tc = pre.step_s(0, 1), pre.step_s(0, pre.budget)
    slope = (tc - t1) / max(1, pre.budget - 1)
    service = (np.ceil(prompt.values / pre.budget) * (t1 - slope) + prompt.values * slope
               + pre.frontend_s)
    # the client's first token (the decode engine's rule, sim.pipeline.specs.FirstToken):
    # after the KV's transfer alone on its path and, for decode_step, one decode step; a
    # decode backlog (waiting for a slot) then comes before the first token, not after
    after_prefill = dp.first_token is not FirstToken.PREFILL
    if after_prefill:
        link = link_between(config.links, pf, dp)
        service = service + (link.latency_s + prompt.values * pf.model.kv_bytes_per_token(
            pf.kv_dtype) / link.bandwidth_bytes_per_s)
        if dp.first_token is FirstToken.DECODE_STEP:
            service = service + dec.step_s(b, 0)
    cap_p = pf.num_replicas * pre.budget / (tc * prompt.mean)
    rho = lam_p * prompt.mean * (slope + (t1 - slope) / min(pre.budget, prompt.mean))
    decode_wait_s = backlog_s(cap_d)
    ttft = _queue_quantiles(service, rho, cv2 / pf.num_replicas,
                            backlog_s(cap_p) + (decode_wait_s if after_prefill else 0.0))
    # a prefill-stamped first token: the decode backlog spreads over the answer's tokens
    tpot = _tpot(dec, b, 0.0, b_max, 0.0 if after_prefill else decode_wait_s / output.mean)
    pools = [PoolEstimate(pf.name, pf.role.value, pf.num_replicas, cap_p, lam / cap_p, 0.0,
                          1e3 * tc),
             PoolEstimate(dp.name, dp.role.value, dp.num_replicas, cap_d, lam / cap_d, b,
                          1e3 * dec.step_s(b, 0))]
    return ttft, tpot, min(cap_p, cap_d), pools


def estimate(config: SimConfig) -> Estimate:
    """The analytical estimate of ``config`` (see the module docstring)."""
    reason = unsupported(config)
    if reason:
        return Estimate(supported=False, reason=reason)
    wl = config.workload
    rt = wl.request_types[0]
    arrival = rt.arrival or wl.arrival
    prompt, output = length_stats(rt.prompt_tokens), length_stats(rt.output_tokens)
    lam = arrival.rate_per_s
    cv2 = arrival.cv ** 2 if arrival.kind is ArrivalKind.GAMMA else 1.0
    duration_s = wl.num_requests / lam
    slo = config.slo.overridden(rt.slo)
    try:
        by_role = {p.role: (p, _Replica(p, prompt, output)) for p in config.pools}
    except ConfigError as err:
        return Estimate(supported=False, reason=str(err))
    pools: list[PoolEstimate] = []

    def backlog_s(cap_rps: float) -> float:  # the last request's wait when arrivals outrun cap
        return max(0.0, 1 - cap_rps / lam) * duration_s

    if PoolRole.COLOCATED in by_role:
        pool, rep = by_role[PoolRole.COLOCATED]
        share = prompt.mean / output.mean
        b_max, t_max = _step_model(rep, share)
        cap = pool.num_replicas * b_max / (output.mean * t_max)
        lam_r = lam / pool.num_replicas
        b = _batch_at(rep, min(lam_r, cap / pool.num_replicas), share, b_max)
        t = rep.step_s(b, b * share)
        left = max(1.0, rep.budget - b)  # the step's budget left to prompt tokens
        t0, t_full = rep.step_s(b, 0), rep.step_s(b, left)
        steps = np.ceil(prompt.values / left)
        service = steps * t0 + prompt.values * (t_full - t0) / left + rep.frontend_s
        rho = lam_r * prompt.mean * t / left
        ttft = _queue_quantiles(service, rho, cv2 / pool.num_replicas, backlog_s(cap))
        tpot = _tpot(rep, b, share, b_max, 0.0)
        pools.append(PoolEstimate(pool.name, pool.role.value, pool.num_replicas, cap,
                                  lam / cap, b, 1e3 * t))
    else:
        ttft, tpot, cap, disagg = _disaggregated(config, by_role, prompt, output, lam, cv2,
                                                 backlog_s)
        pools.extend(disagg)
    e2e = {k: ttft[k] + tpot[k] * max(0.0, output.mean - 1) for k in STATS}
    served = min(lam, cap)
    attainment = (_attainment(ttft, slo.ttft_ms) * _attainment(tpot, slo.tpot_ms)
                  * _attainment(e2e, slo.e2e_ms))
    return Estimate(supported=True, arrival_rps=lam, capacity_rps=cap, ttft_ms=ttft,
                    tpot_ms=tpot, e2e_ms=e2e, output_tokens_per_s=served * output.mean,
                    slo_attainment=min(1.0, attainment), mean_output_tokens=output.mean,
                    pools=tuple(pools))

"""Global routers: pick a replica of a pool for each request. Ties go to the lowest index."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from sim.config import PoolSpec, RouterPolicy
from sim.random_streams import stream
from sim.request import Request
from sim.scheduling.replica import Replica


class Router(Protocol):
    def choose(self, req: Request) -> Replica: ...


class RoundRobinRouter:
    def __init__(self, replicas: Sequence[Replica]) -> None:
        self.replicas, self._next = list(replicas), 0

    def choose(self, req: Request) -> Replica:
        replica = self.replicas[self._next]
        self._next = (self._next + 1) % len(self.replicas)
        return replica


class LeastOutstandingTokensRouter:
    """Least prompt + output tokens assigned and not finished (a proxy for remaining work)."""

    def __init__(self, replicas: Sequence[Replica]) -> None:
        self.replicas = list(replicas)

    def choose(self, req: Request) -> Replica:
        return min(self.replicas, key=lambda r: r.outstanding_tokens)


class JoinShortestQueueRouter:
    def __init__(self, replicas: Sequence[Replica]) -> None:
        self.replicas = list(replicas)

    def choose(self, req: Request) -> Replica:
        return min(self.replicas, key=lambda r: r.outstanding_requests)


class PrefixAffinityRouter:
    """KV affinity: a request whose prefix some replica already holds (in a tier of the pool's
    KV store, see ``holds``) goes to the replica holding it in the fastest tier, unless that
    replica has more than ``2x`` the least outstanding work (then load wins, as in SGLang's
    cache-aware router). Requests without a prefix, or a prefix nobody holds, go to the replica
    with the least outstanding tokens; a new prefix is then learned by that replica."""

    def __init__(self, replicas: Sequence[Replica],
                 holds: Callable[[int, int], int] | None = None) -> None:
        self.replicas = list(replicas)
        self.holds = holds
        self.home: dict[int, int] = {}  # prefix -> replica that computed it (without a store)

    def choose(self, req: Request) -> Replica:
        least = min(self.replicas, key=lambda r: r.outstanding_tokens)
        if req.prefix_id < 0:
            return least
        best, best_tier = None, None
        if self.holds is not None:
            for rep in self.replicas:
                tier = self.holds(req.prefix_id, rep.index)
                if tier >= 0 and (best_tier is None or tier < best_tier):
                    best, best_tier = rep, tier
        elif req.prefix_id in self.home:
            best = self.replicas[self.home[req.prefix_id]]
        if best is not None and best.outstanding_tokens <= 2 * least.outstanding_tokens + 1:
            return best
        self.home[req.prefix_id] = least.index
        return least


class HeavyLightRouter:
    """Length-aware split: requests with prompt + output above ``threshold`` go to the last
    ``heavy_fraction`` of the replicas, the rest to the others (least outstanding tokens within
    each group), so long prompts do not stall short interactive ones."""

    def __init__(self, replicas: Sequence[Replica], threshold_tokens: int,
                 heavy_fraction: float) -> None:
        self.replicas = list(replicas)
        self.threshold = threshold_tokens
        n = len(self.replicas)
        heavy = min(n - 1, max(1, round(n * heavy_fraction))) if n > 1 else 0
        self.light = self.replicas[:n - heavy] if heavy else self.replicas
        self.heavy = self.replicas[n - heavy:] if heavy else self.replicas

    def choose(self, req: Request) -> Replica:
        group = self.heavy if req.prompt_tokens + req.output_tokens > self.threshold else self.light
        return min(group, key=lambda r: r.outstanding_tokens)


class PowerOfTwoRouter:
    """Power of two choices (Mitzenmacher): two distinct replicas drawn at random from a named
    stream, the one with fewer outstanding tokens wins (ties: the lower index)."""

    def __init__(self, replicas: Sequence[Replica], rng: np.random.Generator) -> None:
        self.replicas = list(replicas)
        self.rng = rng
        self._draws = np.empty(0, dtype=np.int64)
        self._next = 0

    def choose(self, req: Request) -> Replica:
        n = len(self.replicas)
        if n == 1:
            return self.replicas[0]
        if self._next >= self._draws.size:  # draw in blocks: one generator call per 4096 choices
            self._draws = self.rng.integers(0, n * (n - 1), size=4096)
            self._next = 0
        pair = int(self._draws[self._next])  # an ordered pair of distinct replicas
        self._next += 1
        a, b = divmod(pair, n - 1)
        b = b + 1 if b >= a else b
        ra, rb = self.replicas[a], self.replicas[b]
        if rb.outstanding_tokens < ra.outstanding_tokens or (
                rb.outstanding_tokens == ra.outstanding_tokens and b < a):
            return rb
        return ra


ROUTERS = {
    RouterPolicy.ROUND_ROBIN: RoundRobinRouter,
    RouterPolicy.LEAST_OUTSTANDING_TOKENS: LeastOutstandingTokensRouter,
    RouterPolicy.JOIN_SHORTEST_QUEUE: JoinShortestQueueRouter,
}


def make_router(policy: RouterPolicy, replicas: Sequence[Replica], *,
                spec: PoolSpec | None = None, rng: np.random.Generator | None = None,
                holds: Callable[[int, int], int] | None = None) -> Router:
    if policy is RouterPolicy.PREFIX_AFFINITY:
        return PrefixAffinityRouter(replicas, holds)
    if policy is RouterPolicy.HEAVY_LIGHT:
        return HeavyLightRouter(replicas, spec.heavy_threshold_tokens if spec else 2048,
                                spec.heavy_fraction if spec else 0.5)
    if policy is RouterPolicy.POWER_OF_TWO:
        return PowerOfTwoRouter(replicas, rng if rng is not None else stream(0, "router"))
    return ROUTERS[policy](replicas)

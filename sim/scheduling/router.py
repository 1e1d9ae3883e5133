"""Global routers: pick a replica of a pool for each request. Ties go to the lowest index."""

from __future__ import annotations

from typing import Protocol, Sequence

from sim.config import RouterPolicy
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


ROUTERS = {
    RouterPolicy.ROUND_ROBIN: RoundRobinRouter,
    RouterPolicy.LEAST_OUTSTANDING_TOKENS: LeastOutstandingTokensRouter,
    RouterPolicy.JOIN_SHORTEST_QUEUE: JoinShortestQueueRouter,
}


def make_router(policy: RouterPolicy, replicas: Sequence[Replica]) -> Router:
    return ROUTERS[policy](replicas)

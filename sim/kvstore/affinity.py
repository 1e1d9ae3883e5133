"""Cache-aware routing for requests tied to a client (``kv_tiers.client_affinity``).

A request's client is an engine of the pool (MIST's clients; ``client % num_replicas``), its
*home* replica. ``pin`` serves every request on its home replica, so the caches it can reach are
exactly its domains (MIST's engine preference). ``prefer`` keeps it inside the home replica's
widest sharing domain, where its KV is reachable: the replica there holding the prefix in the
fastest tier, unless that replica has more than twice the least outstanding work in the domain
(then load wins, as in SGLang's cache-aware router); otherwise the least loaded. ``none`` (or a
request without a client) leaves the choice to the pool's router, whose ``prefix_affinity`` policy
already sees every shared copy through ``KVStore.holds``.
"""

from __future__ import annotations

from sim.kvstore.specs import ClientAffinity
from sim.request import Request


def choose_replica(store, req: Request, client: int, router, replicas) -> int:
    mode = store.spec.client_affinity
    if mode is ClientAffinity.NONE or client < 0:
        return router.choose(req).index
    home = client % len(replicas)
    if mode is ClientAffinity.PIN:
        return home
    width = max(store.domain, default=1)
    first = home // width * width
    group = replicas[first:first + width]
    least = min(group, key=lambda r: r.outstanding_tokens)
    if req.prefix_id < 0:
        return least.index
    best, best_tier = None, None
    for rep in group:
        tier = store.holds(req.prefix_id, rep.index)
        if tier >= 0 and (best_tier is None or tier < best_tier):
            best, best_tier = rep, tier
    if best is not None and best.outstanding_tokens <= 2 * least.outstanding_tokens + 1:
        return best.index
    return least.index

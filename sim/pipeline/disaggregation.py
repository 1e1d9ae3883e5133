"""Disaggregated prefill/decode (Splitwise, DistServe): the prompt's KV moves between pools.

When a request's prefill ends on a prefill pool (the replica emits the first token and frees its
blocks), its KV — ``context x kv_bytes_per_token`` of the model, all layers — crosses the link
between the prefill and decode pools; the decode pool admits it with that context and joins it
to the decode batch directly. Concurrent hand-offs share the link (``sim.network``).

Links come from ``SimConfig.links`` (either direction matches). Without one, a default path is
assumed: one 400 Gb/s RoCE/InfiniBand NIC per GPU (ConnectX-7, as in DGX H100: 50 GB/s per
device per direction) aggregated over the *sending* pool's devices, 10 us latency; Mooncake
measured 87-190 GB/s on 4-8 such NICs (measurements.csv), i.e. ~20-45 GB/s per NIC in practice,
so the default is optimistic by up to 2x for small transfers — configure a link to match a
specific fabric.
"""

from __future__ import annotations

from sim.pipeline.specs import LinkSpec

NIC_BYTES_PER_S_PER_DEVICE = 50e9  # 400 Gb/s per direction
DEFAULT_LATENCY_S = 10e-6


def link_between(links: tuple[LinkSpec, ...], src, dst) -> LinkSpec:
    for link in links:
        if {link.src_pool, link.dst_pool} == {src.name, dst.name}:
            return link
    return LinkSpec(name=f"{src.name}->{dst.name}", src_pool=src.name, dst_pool=dst.name,
                    bandwidth_bytes_per_s=NIC_BYTES_PER_S_PER_DEVICE * src.num_devices,
                    latency_s=DEFAULT_LATENCY_S)

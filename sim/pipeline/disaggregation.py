"""Disaggregated prefill/decode (Splitwise, DistServe): the prompt's KV moves between workers.

When a request's prefill ends on a prefill worker (a replica of a prefill pool, which frees its
blocks), its KV — ``context x kv_bytes_per_token`` of the model, all layers — crosses the link
from that worker to the decode pool; the decode pool's router picks a decode worker, which admits
the request when it has a sequence slot and the prompt's KV blocks (``Replica._admit_decoders``:
it waits in that worker's queue otherwise) and joins it to its decode batch. When the client
sees the first token is the decode pool's engine's rule (``sim.pipeline.specs.FirstToken``).

Links come from ``SimConfig.links`` (either direction matches): one configured link is shared by
every hand-off between the two pools. Without one, each prefill worker sends over its own devices'
links (``handoff_path``), shared by that worker's concurrent transfers (``sim.network``):

* both pools in one scale-up domain (same hardware, ``tp x pp x replicas`` of both pools within
  ``scaleup_domain_devices``: an HGX board, a GB200 NVL72 rack): NVLink / xGMI at
  ``scaleup_bw_bytes_per_s`` per sending device (NIXL and Mooncake's transfer engine use it);
* otherwise the NICs (RDMA): ``scaleout_bw_bytes_per_s`` per sending device, or one 400 Gb/s
  RoCE/InfiniBand NIC per GPU (ConnectX-7, as in DGX H100: 50 GB/s per direction) when the
  hardware entry gives none. Mooncake measured 87-190 GB/s on 4-8 such NICs
  (measurements.csv), ~20-45 GB/s per NIC in practice, so this is optimistic by up to 2x for
  small transfers — configure a link to match a specific fabric.

Each transfer also waits the path's latency (10 us: an RDMA write's setup; no engine-level
control-plane delay is modelled). Engines send the KV layer by layer as prefill proceeds (vLLM
NixlConnector and SGLang send after the forward pass; TensorRT-LLM's cache transceiver after the
context phase), so the transfer is modelled after the prefill, not overlapped with it.
"""

from __future__ import annotations

from sim.pipeline.specs import LinkSpec

NIC_BYTES_PER_S_PER_DEVICE = 50e9  # 400 Gb/s per direction
DEFAULT_LATENCY_S = 10e-6


def configured_link(links: tuple[LinkSpec, ...], src, dst) -> LinkSpec | None:
    """The ``cluster.links`` entry joining the two pools (either direction), if any."""
    for link in links:
        if {link.src_pool, link.dst_pool} == {src.name, dst.name}:
            return link
    return None


def same_scaleup_domain(src, dst) -> bool:
    """Whether both pools' devices fit in one scale-up domain of the same hardware."""
    hw = src.hardware
    domain = hw.scaleup_domain_devices
    devices = (src.tp * src.pp * src.num_replicas) + (dst.tp * dst.pp * dst.num_replicas)
    return hw.name == dst.hardware.name and domain > 0 and devices <= domain


def handoff_path(src, dst) -> tuple[str, float, float]:
    """``(kind, bandwidth per prefill worker, latency)`` of the default path: ``scaleup`` or
    ``nic``, with the bandwidth of the sending worker's ``tp x pp`` devices."""
    devices = src.tp * src.pp
    if same_scaleup_domain(src, dst):
        return "scaleup", src.hardware.scaleup_bw_bytes_per_s * devices, DEFAULT_LATENCY_S
    per_device = src.hardware.scaleout_bw_bytes_per_s or NIC_BYTES_PER_S_PER_DEVICE
    return "nic", per_device * devices, DEFAULT_LATENCY_S


def link_between(links: tuple[LinkSpec, ...], src, dst) -> LinkSpec:
    """The configured link, else the default path of one prefill worker (as a LinkSpec)."""
    link = configured_link(links, src, dst)
    if link is not None:
        return link
    _kind, bandwidth, latency = handoff_path(src, dst)
    return LinkSpec(name=f"{src.name}->{dst.name}", src_pool=src.name,
                    dst_pool=dst.name, bandwidth_bytes_per_s=bandwidth, latency_s=latency)

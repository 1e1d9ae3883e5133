"""Retrieval-augmented generation: query embedding, vector search, rerank, document append.

Encoder stages (embed, rerank, and also reward / classifier, see ``EncoderCost``) are batched
forward passes of their model on their own pool, timed by the pool's step-time model (roofline
by default: ``StepShape.for_prefill_chunks`` of the batch's sequences).

Vector search (``VectorSearchCost``) is a batch-time model per search worker. A worker owns
``1 / workers_per_node`` of a node's compute and memory bandwidth; vector math runs at the FP32
vector rate, taken as ``bf16_dense / 16`` (Xeon 6980P: 262 TFLOPS AMX BF16 vs ~16 TFLOPS AVX-512
FP32; H100: 989 vs 67 TFLOPS FP32). Per batch of ``b`` queries:

* flat: a GEMM against all ``N`` vectors; the corpus is read once per batch (that is what
  batching buys): ``max(2 N d b / flops, N d B / bw)``.
* IVF-PQ: coarse quantizer ``2 nlist d b / flops`` (centroids stay cache-resident); each query scans
  ``N nprobe / nlist`` codes with one table lookup per code byte at ``flops / 16`` (gathers, not
  FMAs); lists are read once per batch: the union of probed lists covers
  ``1 - (1 - nprobe/nlist)^b`` of the codes.
* HNSW: ``ef_search x M`` distance evaluations per query, each a dependent random read of a
  vector (``d B / lane_bw + 80 ns`` DRAM latency); queries run in parallel on the worker's lanes
  (cores; on accelerators every query of the batch is a lane) and do not share reads.

Magnitudes against the Faiss wiki (measurements.csv, "Indexing 1G vectors", 2017 hardware):
SIFT1B IVF262144,PQ8 on 20 CPU threads 0.035 ms/query amortized; this model gives ~0.01 ms/query
on a full 128-core Xeon 6980P node at nprobe 64 (6x the cores, newer memory) and ~0.5 ms on one
core. ``tests/pipeline/test_stage_costs.py`` checks the model stays within that band.
"""

from __future__ import annotations

import math

from sim.cost.base import StepCostModel, StepShape
from sim.hardware.specs import DeviceKind, HardwareSpec, ModelSpec
from sim.pipeline.specs import IndexKind, IndexSpec
from sim.pipeline.validate import STAGE_PARAMS
from sim.request import Request, StageKind

FP32_VECTOR_FRACTION = 1 / 16  # FP32 vector FLOP/s per dense BF16 matrix FLOP/s
LUT_FRACTION = 1 / 16  # PQ table lookups per FP32 FLOP slot (gather-bound)
MEMORY_EFFICIENCY = 0.7  # achieved / peak memory bandwidth on scans
RANDOM_ACCESS_S = 80e-9  # DRAM latency a graph hop cannot hide
BATCH_OVERHEAD_S = 20e-6  # thread-pool wake-up and result merge per batch


class VectorSearchCost:
    def __init__(self, index: IndexSpec, hardware: HardwareSpec, workers_per_node: int) -> None:
        self.index = index
        self.flops = hardware.bf16_flops_per_s * FP32_VECTOR_FRACTION / workers_per_node
        self.bw = hardware.mem_bw_bytes_per_s * MEMORY_EFFICIENCY / workers_per_node
        self.cpu = hardware.kind is DeviceKind.CPU
        self.lanes = max(1, (hardware.num_cores or 1) // workers_per_node)
        self._cache: dict[int, float] = {}

    unit_work = True  # every query weighs one unit in a batch

    def work_tokens(self, req: Request) -> int:
        return 1

    def batch_time_s(self, batch: list[Request]) -> float:
        return self.time_s(len(batch))

    def time_s(self, b: int) -> float:
        """Time for one worker to answer ``b`` queries together."""
        cached = self._cache.get(b)
        if cached is not None:
            return cached
        ix = self.index
        n, d, width = ix.num_vectors, ix.dim, ix.bytes_per_scalar
        if ix.kind is IndexKind.FLAT:
            t = max(2.0 * n * d * b / self.flops, n * d * width / self.bw)
        elif ix.kind is IndexKind.IVF_PQ:
            # centroids (nlist x d) stay in the last-level cache across queries: compute only
            coarse = 2.0 * ix.nlist * d * b / self.flops
            frac = ix.nprobe / ix.nlist
            codes_per_query = n * frac
            union = 1.0 - (1.0 - frac) ** b
            scan = max(b * codes_per_query * ix.pq_bytes / (self.flops * LUT_FRACTION),
                       n * union * ix.pq_bytes / self.bw)
            t = coarse + scan
        else:
            lanes = min(b, self.lanes) if self.cpu else b
            visits = ix.ef_search * ix.hnsw_m + ix.hnsw_m * math.log(max(n, 2)) / math.log(
                max(ix.hnsw_m, 2))
            per_visit = max(2.0 * d / (self.flops / lanes), d * width / (self.bw / lanes)) \
                + RANDOM_ACCESS_S
            t = math.ceil(b / lanes) * visits * per_visit
        t += BATCH_OVERHEAD_S
        self._cache[b] = t
        return t


def search_results(stage) -> tuple[int, int]:
    """``(documents retrieved, tokens per document)`` of a vector-search stage."""
    defaults = STAGE_PARAMS[StageKind.VECTOR_SEARCH]
    return (int(stage.param("top_k", defaults["top_k"])),
            int(stage.param("doc_tokens", defaults["doc_tokens"])))


def rerank_keep(stage) -> int:
    """Documents a rerank stage keeps (``top_n``)."""
    return int(stage.param("top_n", STAGE_PARAMS[StageKind.RERANK]["top_n"]))


class EncoderCost:
    """Batched encoder forward passes (embed, rerank, reward scoring, routing classifier).

    Each request's sequences are ``count`` copies of one length (``job``), so a batch's prefill
    shape is a few integer sums: every chunk starts at context 0, so its attention pairs
    ``t * (t + 1) / 2`` are integers, exact in a float and in any order of summation, and the
    shape equals ``StepShape.for_prefill_chunks`` of the listed sequences."""

    def __init__(self, cost: StepCostModel, model: ModelSpec) -> None:
        self.cost, self.max_tokens = cost, model.max_context_tokens
        step_time = getattr(cost, "step_time", None)
        if step_time is None:  # a cost model without the field-wise call: build the shape
            def step_time(tokens, pairs, context, prefill_seqs, decoders, decode_context):
                return cost.step_time_s(StepShape(
                    prefill_tokens=tokens, prefill_attention_pairs=pairs,
                    prefill_context_tokens=context, num_prefill_seqs=prefill_seqs,
                    num_decode_seqs=decoders, decode_context_tokens=decode_context))
        self._step_time = step_time

    def job(self, req: Request) -> tuple[int, int]:
        """``(sequence length, number of sequences)`` the encoder runs for ``req``."""
        kind, cap = req.plan[req.stage_index].kind, self.max_tokens
        if kind is StageKind.REWARD:
            return min(req.prompt_tokens + req.output_tokens, cap), req.samples
        query = max(1, req.base_prompt - req.prefix_tokens)  # its own tokens, without the prefix
        if kind is StageKind.RERANK:
            return min(query + req.doc_tokens, cap), max(req.docs, 1)
        return min(query, cap), 1  # embed, route

    def sequences(self, req: Request) -> list[int]:
        length, count = self.job(req)
        return [length] * count

    def work_tokens(self, req: Request) -> int:
        length, count = self.job(req)
        return length * count

    def batch_time_s(self, batch: list[Request]) -> float:
        tokens = seqs = pairs = 0
        job = self.job
        for req in batch:
            length, count = job(req)
            tokens += length * count
            seqs += count
            pairs += count * (length * (length + 1) // 2)
        return self._step_time(tokens, float(pairs), tokens, seqs, 0, 0)

    def shape_time_s(self, tokens: int, pairs: int, seqs: int) -> float:
        """Time of a batch of ``seqs`` sequences, ``tokens`` in all, with ``pairs`` attention
        pairs (the sums ``batch_time_s`` forms, for a dispatcher that formed them itself)."""
        return self._step_time(tokens, float(pairs), tokens, seqs, 0, 0)

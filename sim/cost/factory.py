"""Build a pool's step-time model from its spec (one registry line per model kind)."""

from __future__ import annotations

from sim.config import CostModelKind, PoolSpec
from sim.cost.base import ConstantCostModel, StepCostModel
from sim.cost.roofline import RooflineCostModel
from sim.cost.speculative import SpeculativeCostModel
from sim.cost.table import TableCostModel


def build_cost_model(pool: PoolSpec) -> StepCostModel:
    spec = pool.cost_model
    if spec.kind is CostModelKind.CONSTANT:
        return ConstantCostModel(spec.constant_step_s)
    if spec.kind is CostModelKind.TABLE:
        return TableCostModel(spec.table_rows, spec.table_source)
    target = RooflineCostModel(pool.model, pool.hardware, tp=pool.tp, pp=pool.pp,
                               weight_dtype=pool.weight_dtype, kv_dtype=pool.kv_dtype,
                               params=spec.roofline, ep=pool.ep, attention_dp=pool.attention_dp,
                               mla_prefill=spec.mla_prefill)
    drafting = pool.spec_decoding
    if not drafting.enabled:
        return target
    draft = None
    if drafting.draft_model is not None:  # under attention-DP each rank runs a whole copy
        draft = RooflineCostModel(drafting.draft_model, pool.hardware,
                                  tp=1 if pool.attention_dp else pool.tp,
                                  weight_dtype=pool.weight_dtype, kv_dtype=pool.kv_dtype,
                                  params=spec.roofline)
    return SpeculativeCostModel(target, drafting, draft=draft,
                                draft_ranks=pool.tp if pool.attention_dp else 1)

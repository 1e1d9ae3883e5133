"""What the cost model predicts for each observation (the fitter and the validation share this)."""

from __future__ import annotations

from functools import cache

import numpy as np

from hermes_opt.calibration.observations import (
    CollectiveObservation,
    OperatorObservation,
    StepObservation,
)
from hermes_opt.compose import catalog, to_sim
from sim.cost.base import StepShape
from sim.cost.roofline import RooflineCostModel, RooflineParams, allreduce_time_s
from sim.hardware.specs import DType, HardwareSpec, ModelSpec


@cache
def model_spec(name: str) -> ModelSpec:
    return to_sim.model_spec(catalog.entry("model", name))


@cache
def hardware_spec(name: str) -> HardwareSpec:
    return to_sim.hardware_spec(catalog.entry("hardware", name))


def cost_model(model: str, hardware: str, tp: int, params: RooflineParams,
               dtype: DType = DType.BF16) -> RooflineCostModel:
    return RooflineCostModel(model_spec(model), hardware_spec(hardware), tp=tp,
                             weight_dtype=dtype, kv_dtype=dtype, params=params)


def step_time_s(obs: StepObservation, params: RooflineParams, dtype: DType = DType.BF16,
                cm: RooflineCostModel | None = None) -> float:
    cm = cm or cost_model(obs.model, obs.hardware, obs.tp, params, dtype)
    if obs.phase == "prefill":
        return cm.step_time_s(StepShape.for_prefill_chunks([(0, obs.prompt_tokens)] * obs.batch_size))
    context = obs.batch_size * obs.context_tokens
    base, slope = cm.decode_coefficients(obs.batch_size, int(round(context)))
    return base + slope * context


def operator_time_s(obs: OperatorObservation, params: RooflineParams) -> float:
    return cost_model(obs.model, obs.hardware, obs.tp, params).layer_dense_s(obs.num_tokens)


def collective_time_s(obs: CollectiveObservation, params: RooflineParams) -> float:
    return allreduce_time_s(params, hardware_spec(obs.hardware), obs.num_workers, obs.size_bytes)


def predict(observations: list, params: RooflineParams) -> np.ndarray:
    """Predicted seconds for a homogeneous or mixed list of step/operator/collective rows."""
    out = np.empty(len(observations))
    models: dict[tuple, RooflineCostModel] = {}  # one cost model per (model, hardware, tp)
    for i, obs in enumerate(observations):
        if isinstance(obs, (StepObservation, OperatorObservation)):
            key = (obs.model, obs.hardware, obs.tp)
            cm = models.get(key)
            if cm is None:
                cm = models[key] = cost_model(obs.model, obs.hardware, obs.tp, params)
            out[i] = (step_time_s(obs, params, cm=cm) if isinstance(obs, StepObservation)
                      else cm.layer_dense_s(obs.num_tokens))
        else:
            out[i] = collective_time_s(obs, params)
    return out

"""Fixtures for pipeline tests (the builders live in ``pipeline_builders``)."""

from __future__ import annotations

import types

import pipeline_builders as pb
import pytest


@pytest.fixture
def b():
    return types.SimpleNamespace(hw=pb.hw, model=pb.model, fixed=pb.fixed, lognormal=pb.lognormal,
                                 poisson=pb.poisson, max_load=pb.max_load, llm_pool=pb.llm_pool,
                                 cpu_pool=pb.cpu_pool, stage=pb.stage, config=pb.config)

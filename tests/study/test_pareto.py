"""Pareto front and exact hypervolume on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from hermes_opt.study.pareto import hypervolume, pareto_mask, reference_point


def test_pareto_mask_mixed_directions():
    values = [[10, 5], [8, 2], [10, 6], [7, 1], [6, 3]]  # maximize first, minimize second
    mask = pareto_mask(values, ["maximize", "minimize"])
    assert mask.tolist() == [True, True, False, True, False]


def test_hypervolume_2d_union_of_rectangles():
    # minimise both; reference (4, 4): boxes [1,4]x[3,4] U [2,4]x[2,4] U [3,4]x[1,4] = 3+2+1... = 6
    assert hypervolume([[1, 3], [2, 2], [3, 1]], ["minimize", "minimize"], [4, 4]) == pytest.approx(6)
    # a dominated point adds nothing; a point beyond the reference adds nothing
    assert hypervolume([[1, 3], [2, 2], [3, 1], [3, 3], [5, 0]], ["minimize", "minimize"],
                       [4, 4]) == pytest.approx(6)


def test_hypervolume_3d_and_maximize():
    assert hypervolume([[1, 1, 1]], ["minimize"] * 3, [2, 3, 4]) == pytest.approx(1 * 2 * 3)
    two = hypervolume([[0, 0, 1], [1, 1, 0]], ["minimize"] * 3, [2, 2, 2])
    assert two == pytest.approx(4 + 2 - 1)  # 2x2x1 + 1x1x2 - overlap 1x1x1
    assert hypervolume([[3, 1]], ["maximize", "minimize"], [1, 2]) == pytest.approx(2)


def test_reference_point_is_worse_than_every_point():
    values = np.array([[10, 5], [8, 2], [7, 1]])
    ref = reference_point(values, ["maximize", "minimize"])
    assert ref[0] < 7 and ref[1] > 5

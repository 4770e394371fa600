"""Golden data: small fixed-key runs recorded before the architecture refactor
(``tests/golden/``), asserted after every change. A change that alters these numbers on
purpose regenerates them with ``python -m tests.golden.generate`` and says why.

Integers (episode lengths, update and epoch counts) must match exactly everywhere.
Floats match exactly where the computation has no reduction whose order XLA may change
(tabular Q-learning: one scatter-add per update). Elsewhere a tolerance is stated:
float32 sums and matmuls (CEM's elite mean and standard deviation, rollout returns,
network layers) may be re-associated by XLA when the surrounding program changes, a
few ulps per operation, so single plans get rtol 1e-5; a training run feeds those ulps
through every later gradient step, so the fit and DQN get rtol 1e-4.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.golden.cases import CASES

GOLDEN = Path(__file__).parent / "golden"

TOLERANCE = {  # case: (rtol, atol) for its float leaves
    "figure_8_2": (0.0, 0.0),
    "prioritized_sweeping": (0.0, 0.0),
    "cem_cartpole": (1e-5, 1e-6),
    "ensemble_fit": (1e-4, 1e-5),
    "dqn_cartpole": (1e-4, 1e-5),
}


def assert_matches(actual, expected, rtol: float, atol: float, where: str = "") -> None:
    """Walk nested dicts; integer leaves exactly equal, float leaves within rtol/atol."""
    if isinstance(expected, dict):
        assert sorted(actual) == sorted(expected), where
        for name in expected:
            assert_matches(actual[name], expected[name], rtol, atol, f"{where}/{name}")
        return
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, where
    if np.issubdtype(expected.dtype, np.integer) or expected.dtype == bool:
        np.testing.assert_array_equal(actual, expected, err_msg=where)
    else:
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=where)


@pytest.mark.parametrize("name", list(CASES))
def test_golden(name):
    expected = json.loads((GOLDEN / f"{name}.json").read_text())
    assert_matches(CASES[name](), expected, *TOLERANCE[name], where=name)


def test_every_case_has_golden_data_and_a_tolerance():
    assert sorted(CASES) == sorted(TOLERANCE)
    assert sorted(p.stem for p in GOLDEN.glob("*.json")) == sorted(CASES)

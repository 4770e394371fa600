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

import jax
import numpy as np
import pytest

from experiments import dyna_maze
from mbrl_jax.sweep import seed_keys
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


def test_the_dyna_maze_experiment_one_program_for_every_n_matches_figure_8_2():
    """The experiment runs n = 0, 5, 50 as one executable (n a run-time loop bound);
    its episode lengths are the golden ones of three separately built agents."""
    expected = json.loads((GOLDEN / "figure_8_2.json").read_text())
    config = dyna_maze.Config(runs=3)
    metrics = jax.jit(jax.vmap(lambda key: dyna_maze.train(config, key)))(seed_keys(0, 3)[1])
    for label, golden in expected.items():
        np.testing.assert_array_equal(metrics[label].episode_length, golden["episode_length"])

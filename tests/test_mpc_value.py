"""The mpc-value experiment end to end at its tiny preset through the CLI: the result
contract (result.json, PNG, CSV), the curves' labels and x, the planning compute per
decision by hand, and the per-chunk episode returns by hand."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from experiments.mpc_value import episode_returns_per_chunk
from mbrl_jax.cli import main


def test_episode_returns_per_chunk_by_hand():
    # one seed, 6 steps in chunks of 3: episodes end at steps 1 (return 2) and 4 (return 3)
    cumulative = np.array([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]])
    episodes = np.array([[0, 1, 1, 1, 2, 2]])
    np.testing.assert_allclose(episode_returns_per_chunk(cumulative, episodes, 3), [[2.0, 3.0]])
    # no episode ends in the second chunk: a gap
    out = episode_returns_per_chunk(cumulative, np.array([[0, 1, 1, 1, 1, 1]]), 3)
    assert out[0, 0] == 2.0 and np.isnan(out[0, 1])


@pytest.mark.slow  # SAC, MBPO, value-MPC and PETS compile on two tasks: minutes on 2 cores
def test_mpc_value_tiny_end_to_end(tmp_path):
    out = tmp_path / "run"
    argv = ["run", "mpc-value", "--preset", "tiny", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    result = json.loads((out / "result.json").read_text())
    expected = {
        f"{task}: {group}"
        for task in ("Pendulum-v1", "cart-pole")
        for group in ("PETS H=5", "value-MPC H=2", "SAC", "MBPO G=2")
    }
    assert set(result["curves"]) == expected
    assert set(result["steps_to_target"]) == expected == set(result["compute"])
    # PETS: trial 0 (random) and trial 1, 200 steps each; the Dyna groups: chunks of 100
    assert result["curves"]["cart-pole: PETS H=5"]["x"] == [200.0, 400.0]
    assert result["curves"]["Pendulum-v1: SAC"]["x"] == [100.0, 200.0]
    assert all(np.isfinite(result["curves"]["Pendulum-v1: MBPO G=2"]["y"]))
    # the cart-pole pays 1 per step, at most 200 steps an episode
    for y in result["curves"]["cart-pole: value-MPC H=2"]["y"]:
        assert y is None or 1.0 <= y <= 200.0
    # population 8 x particles 2 x horizon 2 x iterations 1 + 1 prior rollout x 2 steps
    assert result["compute"]["Pendulum-v1: value-MPC H=2"]["model_steps_per_decision"] == 34
    assert result["compute"]["Pendulum-v1: PETS H=5"]["model_steps_per_decision"] == 8 * 2 * 5
    assert set(result["actor_greedy"]) == {"Pendulum-v1: value-MPC H=2", "cart-pole: value-MPC H=2"}
    assert (out / "mpc-value.png").stat().st_size > 0
    with open(out / "mpc-value.csv") as f:
        assert {row["label"] for row in csv.DictReader(f)} == expected

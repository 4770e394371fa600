"""Every Python example in the README runs, at a smaller size, with the names it shows
(the neural ones and the tabular blend in make test-slow)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

README = (Path(__file__).parents[1] / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)


def run_block(index: int, *replacements: tuple[str, str]) -> dict:
    """Execute README block ``index`` after the (old, new) text replacements, each of
    which must apply, so the test follows the README rather than silently drifting."""
    code = BLOCKS[index]
    for old, new in replacements:
        assert old in code, f"README block {index} no longer contains {old!r}"
        code = code.replace(old, new)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    return namespace


def test_every_block_is_run_here():
    assert len(BLOCKS) == 5


def test_compose_a_tabular_agent():
    namespace = run_block(0, ("1000)", "20)"))  # fewer seeds, same code
    assert namespace["metrics"].episode_length.shape == (20, 50)


@pytest.mark.slow
def test_neural_dyna():
    namespace = run_block(
        1,
        ("num_steps=2000", "num_steps=300"),
        ("planning_starts=1000", "planning_starts=100"),
        ("key(0), 8))  # 8 seeds", "key(0), 2))  # 8 seeds"),
    )
    # Each seed made one update per real step plus 5 per step from step 100 on.
    updates = namespace["state"].updates
    assert updates.shape == (2,)
    np.testing.assert_array_equal(updates, 300 + 5 * (300 - 100 + 1))


@pytest.mark.slow
def test_sac_mbpo_and_value_guided_planning():
    namespace = run_block(
        2,
        (
            "hidden=(128, 128), learning_starts=250",
            "hidden=(16,), batch_size=16, learning_starts=20",
        ),
        ("ensemble_size=7, elites=5,", "ensemble_size=2, elites=1, hidden=(16,), max_epochs=2,"),
        ("planning_starts=250)\n", "planning_starts=20)\n"),
        ("num_steps=250", "num_steps=40"),
        ("run_chunk(carry, 250)", "run_chunk(carry, 40)"),
        ("key(0), 4)  # 4 seeds", "key(0), 2)  # 4 seeds"),
        ("range(8)", "range(2)"),
    )
    # per seed: one SAC update per real step from step 20, 10 per step once planning starts
    updates = namespace["carry"].agent_state.learner.updates
    np.testing.assert_array_equal(updates, [(80 - 20 + 1) + 10 * (80 - 20 + 1)] * 2)
    assert namespace["actions"].shape == (2, 1, 1)
    guided, key = namespace["guided"], namespace["jax"].random.key(1)
    action, _ = guided.act_stateful(guided.init(key), namespace["carry"].obs[0], key)
    assert action.shape == (1,)


@pytest.mark.slow
def test_decision_time_planning_and_pets():
    namespace = run_block(
        3,
        ("population=500, elites=50, iterations=5", "population=16, elites=4, iterations=2"),
        ("particles=20", "particles=5"),
        (
            "neural_model(4, env.action_space(),",
            "neural_model(4, env.action_space(), hidden=(16,),",
        ),
        ("make_pets(env, model, planner)", "make_pets(env, model, planner, trial_length=20)"),
    )
    low, high = namespace["env"].action_space().low, namespace["env"].action_space().high
    assert np.all((low <= namespace["action"]) & (namespace["action"] <= high))
    assert np.isfinite(float(namespace["metrics"].episode_return))


@pytest.mark.slow
def test_tabular_decision_time_planning_and_the_blend():
    namespace = run_block(4, ("key(0), 30))", "key(0), 4))"), ("num_episodes=10", "num_episodes=3"))
    lengths = np.asarray(namespace["metrics"].episode_length)
    assert lengths.shape == (4, 3) and np.all(lengths >= 14)  # 14: the shortest path
    assert namespace["info"].action_values.shape == (4,)
    assert 0 <= int(namespace["action"]) < 4

"""MCTS (Gumbel MuZero through mctx) over a StepFn: small trees with known values,
termination, determinism, vmap over start states, CartPole with the true dynamics,
and input errors."""

from __future__ import annotations

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import spaces

from mbrl_jax.planners.mcts import MCTSInfo, mcts
from mbrl_jax.planners.rollout import env_step_fn


def table_step_fn(next_node, reward, done):
    """A deterministic StepFn over integer node states from (nodes, actions) tables."""
    next_node = jnp.asarray(next_node, jnp.int32)
    reward = jnp.asarray(reward, jnp.float32)
    done = jnp.asarray(done, bool)

    def step(state, action, key):
        del key
        return next_node[state, action], reward[state, action], done[state, action]

    return step


# A depth-2 tree with 3 actions; every second step terminates into the leaf node 4.
# From the root, action 0 has the best immediate reward (1) but the trap: action 1
# gives 0 and then 5 is reachable. With gamma = 0.9 the optimal root Q-values are
# [1 + 0.9 * 2, 0 + 0.9 * 5, 0.5 + 0.9 * 3] = [2.8, 4.5, 3.2].
TRAP_GAMMA = 0.9
TRAP_NEXT = [[1, 2, 3], [4, 4, 4], [4, 4, 4], [4, 4, 4], [4, 4, 4]]
TRAP_REWARD = [[1.0, 0.0, 0.5], [0.0, 0.0, 2.0], [0.0, 5.0, 0.0], [3.0, 1.0, 1.0], [0.0, 0.0, 0.0]]
TRAP_DONE = [[False] * 3] + [[True] * 3] * 4
TRAP_Q = np.array([2.8, 4.5, 3.2], np.float32)
TRAP_V = jnp.array([4.5, 2.0, 5.0, 3.0, 0.0])  # optimal state values
# Best action from nodes 0, 1, 3 (2 is the best first action only from the root).
TRAP_STARTS, TRAP_BEST = np.array([0, 1, 3], np.int32), np.array([1, 2, 0])

# Termination, 2 actions, gamma = 1: action 0 gives 6 and terminates into node 3,
# action 1 gives 0 and then 4 + 4 (optimal Q-values [6, 8]). The terminal node 3 is
# absorbing, and its "rewards" are NaN (a learned model's garbage after the end of an
# episode): the search must neither count them nor let them reach the root, where a
# discount of 0 alone would still give 0 * NaN = NaN.
END_NEXT = [[3, 1], [2, 2], [3, 3], [3, 3]]
END_REWARD = [[6.0, 0.0], [4.0, 4.0], [4.0, 4.0], [np.nan, np.nan]]
END_DONE = [[True, False], [False, False], [True, True], [True, True]]
END_Q = np.array([6.0, 8.0], np.float32)


def jit_plan(planner, step_fn):
    return jax.jit(lambda state, key: planner.plan(planner.init(key), step_fn, state, key))


@pytest.fixture(scope="module")
def trap_step():
    return table_step_fn(TRAP_NEXT, TRAP_REWARD, TRAP_DONE)


@pytest.fixture(scope="module")
def trap_planner():
    return mcts(spaces.Discrete(3), num_simulations=256, gamma=TRAP_GAMMA)


@pytest.fixture(scope="module")
def trap_plan(trap_planner, trap_step):
    return jit_plan(trap_planner, trap_step)


def test_avoids_the_trap_and_estimates_optimal_q(trap_plan):
    action, planner_state, info = trap_plan(jnp.int32(0), jax.random.key(0))
    assert action.dtype == jnp.int32 and action.shape == ()
    assert int(action) == 1
    assert planner_state == ()
    assert isinstance(info, MCTSInfo)
    assert info.visit_counts.shape == info.action_weights.shape == info.qvalues.shape == (3,)
    assert float(info.visit_counts.sum()) == 256
    assert int(np.argmax(info.action_weights)) == 1
    # MCTS Q-values are averages over visits (value 0 at new leaves), so they approach
    # the optimal values from below as the simulations grow.
    np.testing.assert_allclose(info.qvalues, TRAP_Q, atol=0.15)


def test_value_fn_values_the_leaves(trap_step):
    # With the optimal value function, one visit per root action gives exact Q-values.
    planner = mcts(
        spaces.Discrete(3), num_simulations=3, gamma=TRAP_GAMMA, value_fn=lambda n: TRAP_V[n]
    )
    action, _, info = jit_plan(planner, trap_step)(jnp.int32(0), jax.random.key(0))
    assert int(action) == 1
    np.testing.assert_array_equal(info.visit_counts, [1, 1, 1])
    np.testing.assert_allclose(info.qvalues, TRAP_Q, rtol=1e-6)


def test_termination_stops_rewards():
    step = table_step_fn(END_NEXT, END_REWARD, END_DONE)
    action, _, info = jit_plan(mcts(spaces.Discrete(2), num_simulations=64), step)(
        jnp.int32(0), jax.random.key(0)
    )
    assert int(action) == 1
    assert float(info.qvalues[0]) == 6.0  # nothing after the termination counts
    assert np.isfinite(info.value) and np.all(np.isfinite(info.action_weights))
    np.testing.assert_allclose(info.qvalues[1], END_Q[1], atol=1.0)
    # Random-rollout leaf values: a 2-step rollout from node 1 returns 8 whatever the
    # actions, and the terminal node is worth 0 (not NaN), so one visit per root
    # action gives the optimal Q-values exactly.
    rollout_planner = mcts(spaces.Discrete(2), num_simulations=2, rollout_horizon=2)
    action, _, info = jit_plan(rollout_planner, step)(jnp.int32(0), jax.random.key(1))
    assert int(action) == 1
    np.testing.assert_array_equal(info.visit_counts, [1, 1])
    np.testing.assert_allclose(info.qvalues, END_Q)


def test_same_key_same_result(trap_plan):
    first = trap_plan(jnp.int32(0), jax.random.key(7))
    second = trap_plan(jnp.int32(0), jax.random.key(7))
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(second), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_vmap_over_start_states(trap_planner, trap_step):
    def plan(state, key):
        return trap_planner.plan((), trap_step, state, key)

    keys = jax.random.split(jax.random.key(3), len(TRAP_STARTS))
    actions, _, info = jax.jit(jax.vmap(plan))(jnp.asarray(TRAP_STARTS), keys)
    assert actions.shape == (3,)
    np.testing.assert_array_equal(actions, TRAP_BEST)
    assert info.qvalues.shape == (3, 3)
    np.testing.assert_allclose(info.qvalues[0], TRAP_Q, atol=0.15)


def cartpole_episode_lengths(choose, keys, steps: int = 100):
    """Steps survived (up to ``steps``) in CartPole-v1 episodes choosing
    ``choose(env_state, key) -> action``, one episode per key, in one jitted scan."""
    env, params = gymnax.make("CartPole-v1")

    def episode(key):
        reset_key, key = jax.random.split(key)
        _, state = env.reset_env(reset_key, params)

        def body(carry, step_key):
            state, alive = carry
            choose_key, env_key = jax.random.split(step_key)
            action = choose(state, choose_key)
            _, state, _, done, _ = env.step_env(env_key, state, action, params)
            return (state, alive & ~done), alive

        init = (state, jnp.bool_(True))
        _, alive = jax.lax.scan(body, init, jax.random.split(key, steps))
        return alive.sum()

    return jax.jit(jax.vmap(episode))(keys)


@pytest.mark.slow
def test_cartpole_with_true_dynamics_beats_random():
    env, params = gymnax.make("CartPole-v1")
    step_fn = env_step_fn(env, params)
    planner = mcts(spaces.Discrete(2), num_simulations=16, max_depth=10)

    def plan_action(state, key):
        return planner.plan((), step_fn, state, key)[0]

    def random_action(state, key):
        return jax.random.randint(key, (), 0, 2)

    planned = np.asarray(
        cartpole_episode_lengths(plan_action, jax.random.split(jax.random.key(0), 4))
    )
    random = np.asarray(
        cartpole_episode_lengths(random_action, jax.random.split(jax.random.key(0), 64))
    )
    assert random.mean() < 40  # about 20 steps
    assert planned.min() >= 80, planned
    assert planned.mean() >= 3 * random.mean()


@pytest.mark.parametrize(
    ("kwargs", "name", "value"),
    [
        ({"action_space": spaces.Discrete(0)}, "action_space.n", "0"),
        ({"action_space": spaces.Box(-1.0, 1.0, (1,))}, "mcts needs a Discrete", "Box"),
        ({"num_simulations": 0}, "num_simulations", "0"),
        ({"num_simulations": 2.5}, "num_simulations", "2.5"),
        ({"gamma": 1.5}, "gamma", "1.5"),
        ({"gamma": -0.1}, "gamma", "-0.1"),
        ({"max_depth": 0}, "max_depth", "0"),
        ({"rollout_horizon": -1}, "rollout_horizon", "-1"),
        ({"max_num_considered_actions": 0}, "max_num_considered_actions", "0"),
        ({"gumbel_scale": -1.0}, "gumbel_scale", "-1.0"),
    ],
)
def test_bad_input_names_the_value(kwargs, name, value):
    args = {"action_space": spaces.Discrete(2), "num_simulations": 8} | kwargs
    action_space = args.pop("action_space")
    with pytest.raises(ValueError, match=rf"{name}.*{value}"):
        mcts(action_space, **args)

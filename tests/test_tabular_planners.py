"""Decision-time planners over tabular models (S&B sections 8.8-8.11): hand-computed
lookahead values, rollouts against expected returns, MCTS on a true maze model, and the
planner contract (jit, same key same plan, vmap equals one call per state)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mbrl_jax.envs import Maze
from mbrl_jax.models import environment_model, fixed_model, tabular_sample_model
from mbrl_jax.planners import (
    TabularPlanInfo,
    heuristic_search,
    rollout_planner,
    tabular_mcts,
    tabular_step_fn,
)
from mbrl_jax.types import Transition, TransitionDistribution

# A hand-built tree MDP: 5 states, 2 actions, at most 2 outcomes per pair. State 4 is
# terminal. Slot 1 of a deterministic pair has probability 0 and holds garbage
# (reward 100, a state of high leaf value) that must count for nothing.
#   s0 a0: s1 r0 (1/2) | s2 r1 (1/2)        s0 a1: s3 r2
#   s1 a0: s4 r1 done                        s1 a1: s1 r0
#   s2 a0: s3 r0                             s2 a1: s4 r3 done
#   s3 a0: s3 r-1                            s3 a1: s4 r0 done
#   s4 a*: s4 r0 done
NEXT = np.array(
    [[[1, 2], [3, 2]], [[4, 2], [1, 2]], [[3, 2], [4, 2]], [[3, 2], [4, 2]], [[4, 2], [4, 2]]]
)
REWARD = np.array(
    [[[0, 1], [2, 100]], [[1, 100], [0, 100]], [[0, 100], [3, 100]], [[-1, 100], [0, 100]]]
    + [[[0, 100], [0, 100]]],
    np.float32,
)
PROB = np.array([[[0.5, 0.5], [1, 0]]] + [[[1, 0], [1, 0]]] * 4, np.float32)
DONE = NEXT == 4
LEAF_Q = jnp.array([[0, 0], [2, 1], [1, 4], [5, 0], [7, 7]], jnp.float32)  # s4's must not count
GAMMA = 0.5


def tree_model_fn(obs, action, key):
    del key
    return TransitionDistribution(
        obs,
        action,
        jnp.asarray(REWARD)[obs, action],
        jnp.asarray(NEXT)[obs, action],
        jnp.asarray(DONE)[obs, action],
        jnp.asarray(PROB)[obs, action],
    )


@functools.cache
def tree_search(depth: int):
    planner = heuristic_search(5, 2, depth=depth, gamma=GAMMA)
    return jax.jit(lambda q, obs, key: planner.plan(q, tree_model_fn, obs, key))


@pytest.mark.parametrize(
    "depth, expected, calls",
    [
        # Q1(s0, a0) = 1/2 (0 + 1/2 max Q(s1)) + 1/2 (1 + 1/2 max Q(s2)) = 1/2 + 3/2
        # Q1(s0, a1) = 2 + 1/2 max Q(s3) = 4.5
        (1, [2.0, 4.5], 2),
        # V1(s1) = max(1, 0 + 1/2 2) = 1, V1(s2) = max(0 + 1/2 5, 3) = 3,
        # V1(s3) = max(-1 + 1/2 5, 0) = 1.5
        # Q2(s0, a0) = 1/2 (0 + 1/2) + 1/2 (1 + 3/2) = 1.5, Q2(s0, a1) = 2 + 1/2 1.5
        (2, [1.5, 2.75], 2 + 2 * 4),
        # V2(s1) = max(1, 1/2 V1(s1)) = 1, V2(s2) = max(1/2 V1(s3), 3) = 3,
        # V2(s3) = max(-1 + 1/2 V1(s3), 0) = 0
        (3, [1.5, 2.0], 2 + 2 * 4 + 2 * 4 * 4),
    ],
)
def test_heuristic_search_backs_up_hand_computed_lookahead_values(depth, expected, calls):
    action, q, info = tree_search(depth)(LEAF_Q, jnp.int32(0), jax.random.key(0))
    np.testing.assert_allclose(info.action_values, expected, rtol=1e-6)
    assert int(action) == 1 and bool(jnp.all(info.searched))
    assert int(info.model_calls) == calls
    assert q is LEAF_Q or np.array_equal(q, LEAF_Q)  # the planner state comes back unchanged


def test_heuristic_search_of_depth_one_is_the_one_step_greedy_policy_on_a_maze():
    env = Maze(["S..#\n.#.G\n...."])
    params = env.default_params
    model = environment_model(lambda o, a, k: env.transition(o, a, params))
    planner = heuristic_search(env.num_states, 4, depth=1, gamma=0.9)
    q = jax.random.uniform(jax.random.key(3), (env.num_states, 4))
    model_fn = functools.partial(model.sample, ())
    plan = jax.jit(lambda obs: planner.plan(q, model_fn, obs, jax.random.key(0)))
    for cell in env.open_cells():
        _, _, info = plan(jnp.int32(cell))
        expected = []
        for a in range(4):
            nxt, r, done = env.transition(jnp.int32(cell), a, params)
            expected.append(float(r) + (0.0 if bool(done) else 0.9 * float(jnp.max(q[nxt]))))
        np.testing.assert_allclose(info.action_values, expected, rtol=1e-6)


# A one-step choice: a0 pays 1 with probability 1/2 (else 0), a1 pays 0.6 surely; both
# end the episode. a0 then reaches s1, from which a greedy rollout policy can do better.
def bandit_model_fn(obs, action, key):
    del key
    reward = jnp.where(action == 0, jnp.array([1.0, 0.0]), jnp.array([0.6, 0.0]))
    prob = jnp.where(action == 0, jnp.array([0.5, 0.5]), jnp.array([1.0, 0.0]))
    return TransitionDistribution(
        obs, action, reward, jnp.array([1, 1]), jnp.array([1, 1]) > 0, prob
    )


@functools.cache
def bandit_rollouts(rollouts: int):
    planner = rollout_planner(2, 2, rollouts=rollouts, horizon=1, gamma=1.0)
    return jax.jit(
        jax.vmap(lambda key: planner.plan(jnp.zeros((2, 2)), bandit_model_fn, jnp.int32(0), key))
    )


def test_rollout_planner_picks_the_action_of_higher_expected_return_once_m_is_large():
    keys = jax.random.split(jax.random.key(0), 32)
    actions, _, info = bandit_rollouts(4096)(keys)
    assert np.all(np.asarray(actions) == 1)
    values = np.asarray(info.action_values)
    # Mean of 4096 Bernoulli(1/2): standard error 1/128; the sure action is exact.
    np.testing.assert_allclose(values[:, 0].mean(), 0.5, atol=3 / 128 / np.sqrt(32))
    np.testing.assert_allclose(values[:, 1], 0.6, rtol=1e-6)
    few, _, _ = bandit_rollouts(1)(keys)  # one rollout each: a0's lucky draws win
    assert 0 < np.mean(np.asarray(few) == 0) < 1


def test_rollout_policy_greedy_follows_the_learned_values_random_does_not():
    # Chain: s0 a0 -> s1 (reward 0), then s1 a0 -> end (reward 1), s1 a1 -> end (0);
    # s0 a1 -> end (0.6). Random rollouts value s0 a0 at 1/2 < 0.6; rollouts greedy
    # with respect to Q(s1) = [1, 0] value it at 1 > 0.6.
    next_obs = jnp.array([[1, 2], [2, 2], [2, 2]])
    reward = jnp.array([[0.0, 0.6], [1.0, 0.0], [0.0, 0.0]])

    def sample(state, obs, action, key):
        del state, key
        nxt = next_obs[obs, action]
        return Transition(obs, action, reward[obs, action], nxt, nxt == 2)

    model_fn = functools.partial(fixed_model(sample).sample, ())
    q = jnp.array([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    key = jax.random.key(1)
    for policy, expected in [("random", 0.5), ("greedy", 1.0)]:
        planner = rollout_planner(3, 2, rollouts=4000, horizon=2, gamma=1.0, rollout_policy=policy)
        action, _, info = jax.jit(planner.plan, static_argnums=1)(q, model_fn, jnp.int32(0), key)
        np.testing.assert_allclose(info.action_values[0], expected, atol=0.03)
        assert int(action) == (1 if policy == "random" else 0)
        assert int(info.model_calls) == 2 * 4000 * 2


SMALL_MAZE = "S..#\n.#.G\n...."  # shortest path: right, right, down, right (4 steps)


@pytest.mark.slow
def test_mcts_with_the_true_maze_model_finds_the_optimal_first_action():
    """Leaf value 0: the goal's reward is found by the tree alone. The only optimal
    first action from S is right (3): up and left stay put, down is 6 steps."""
    env = Maze([SMALL_MAZE])
    params = env.default_params
    model = environment_model(lambda o, a, k: env.transition(o, a, params))
    planner = tabular_mcts(env.num_states, 4, num_simulations=1024, gamma=0.95)
    start = jnp.int32(env.start_cell())

    def plan(key):
        return planner.plan(planner.init(key), functools.partial(model.sample, ()), start, key)

    actions, _, info = jax.jit(jax.vmap(plan))(jax.random.split(jax.random.key(0), 8))
    assert np.all(np.asarray(actions) == 3)
    assert np.all(np.argmax(np.asarray(info.action_values), axis=1) == 3)
    # The backed-up value of "right" cannot exceed the true optimum gamma^3.
    assert np.all(np.asarray(info.action_values)[:, 3] <= 0.95**3 + 1e-6)


# --- the planner contract, over a learned sample model of a maze -------------------------


@functools.cache
def learned_maze_model():
    """A sample model that has seen every move of a small maze once."""
    env = Maze([SMALL_MAZE])
    params = env.default_params
    model = tabular_sample_model(env.num_states, 4)
    cells, actions = (x.ravel() for x in np.meshgrid(env.open_cells(), np.arange(4)))
    nxt, r, done = jax.vmap(env.transition, in_axes=(0, 0, None))(cells, actions, params)

    def learn(state, transition):
        return model.update(state, transition, None), None

    state, _ = jax.lax.scan(learn, model.init(None), Transition(cells, actions, r, nxt, done))
    return env, functools.partial(model.sample, state)


TABULAR_PLANNERS = {
    "heuristic_search": (heuristic_search, dict(depth=2)),
    "rollout_planner": (rollout_planner, dict(rollouts=3, horizon=4, rollout_policy="greedy")),
    "tabular_mcts": (tabular_mcts, dict(num_simulations=8)),
}


@functools.cache
def contract_case(name: str):
    env, model_fn = learned_maze_model()
    factory, settings = TABULAR_PLANNERS[name]
    planner = factory(env.num_states, 4, **settings)
    q = jax.random.uniform(jax.random.key(7), (env.num_states, 4))
    plan = jax.jit(lambda obs, key: planner.plan(q, model_fn, obs, key))
    return env, planner, q, plan


@pytest.mark.parametrize(
    # mcts's adapter keeps the StepFn planners' contract too (tests/test_contract_planners.py)
    "name",
    ["heuristic_search", "rollout_planner", pytest.param("tabular_mcts", marks=pytest.mark.slow)],
)
def test_tabular_planner_contract(name):
    env, planner, q, plan = contract_case(name)
    cells = jnp.asarray(env.open_cells()[:5], jnp.int32)
    keys = jax.random.split(jax.random.key(0), cells.shape[0])
    batched = jax.vmap(plan)(cells, keys)
    for i in range(cells.shape[0]):
        one = plan(cells[i], keys[i])
        row = jax.tree.map(lambda b, i=i: b[i], batched)
        jax.tree.map(np.testing.assert_array_equal, row, one)
    again = jax.vmap(plan)(cells, keys)
    jax.tree.map(np.testing.assert_array_equal, batched, again)  # same key, same plan
    actions, q_out, info = batched
    assert actions.dtype == jnp.int32 and np.all((actions >= 0) & (actions < 4))
    np.testing.assert_array_equal(q_out, jnp.broadcast_to(q, q_out.shape))
    assert isinstance(info, TabularPlanInfo)
    assert info.action_values.shape == (5, 4) and info.searched.shape == (5, 4)
    assert info.model_calls.shape == (5,) and np.all(np.asarray(info.model_calls) > 0)
    # Actions the search did not evaluate keep Q(s, a), so storing them changes nothing.
    kept = ~np.asarray(info.searched)
    np.testing.assert_array_equal(np.asarray(info.action_values)[kept], np.asarray(q[cells])[kept])
    assert planner.init(None).shape == (env.num_states, 4)


def test_tabular_step_fn_draws_outcomes_of_a_distribution_by_their_probabilities():
    step = jax.jit(tabular_step_fn(bandit_model_fn))
    n = 20000
    _, reward, done = step(jnp.zeros(n, jnp.int32), jnp.zeros(n, jnp.int32), jax.random.key(2))
    assert reward.shape == (n,) and bool(jnp.all(done))
    np.testing.assert_allclose(float(jnp.mean(reward)), 0.5, atol=4 * 0.5 / np.sqrt(n))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: heuristic_search(5, 2, depth=0), "depth must be an integer >= 1, got 0"),
        (lambda: rollout_planner(5, 2, rollouts=0), "rollouts must be an integer >= 1, got 0"),
        (lambda: rollout_planner(5, 2, horizon=0), "horizon must be an integer >= 1, got 0"),
        (
            lambda: rollout_planner(5, 2, rollout_policy="best"),
            "rollout_policy must be one of \\('random', 'greedy'\\), got 'best'",
        ),
        (
            lambda: tabular_mcts(5, 2, num_simulations=0),
            "num_simulations must be an integer >= 1, got 0",
        ),
        (lambda: heuristic_search(0, 2), "num_states must be an integer >= 1, got 0"),
        (lambda: tabular_mcts(5, 2, max_depth=0), "max_depth must be an integer >= 1, got 0"),
        (lambda: heuristic_search(5, 2, gamma=1.5), "gamma"),
    ],
)
def test_bad_settings_are_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("name", list(TABULAR_PLANNERS))
def test_a_value_table_of_the_wrong_size_is_a_clear_error(name):
    factory, settings = TABULAR_PLANNERS[name]
    planner = factory(12, 4, **settings)
    with pytest.raises(ValueError, match=r"has shape \(54, 4\), expected .* = \(12, 4\)"):
        planner.plan(jnp.zeros((54, 4)), tree_model_fn, jnp.int32(0), jax.random.key(0))

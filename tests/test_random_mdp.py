"""Random MDPs of S&B section 8.6 against independent expectations: exact branching,
the outcome distribution, input errors, vmapped task generation, the gymnax step's
frequencies, and the greedy policy's value against a NumPy linear solve."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mbrl_jax.envs.random_mdp import (
    RandomMDP,
    evaluation_iterations,
    greedy_policy,
    greedy_policy_value,
    policy_value,
    policy_value_to_tolerance,
    random_mdp_params,
    transition_distribution,
)

KEY = jax.random.key(0)


_PARAMS = {}


def _params(num_states: int, b: int):
    """A jitted task generator per shape, so hypothesis's seeds do not recompile."""
    if (num_states, b) not in _PARAMS:
        _PARAMS[num_states, b] = jax.jit(lambda k: random_mdp_params(k, num_states, 2, b))
    return _PARAMS[num_states, b]


@pytest.mark.parametrize("num_states, b", [(1, 1), (2, 2), (9, 1), (9, 4), (9, 9), (40, 7)])
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_every_pair_has_exactly_b_distinct_successors(num_states, b, seed):
    params = _params(num_states, b)(jax.random.key(seed))
    succ = np.asarray(params.successors)
    assert succ.shape == (num_states, 2, b) and succ.dtype == np.int32
    assert ((succ >= 0) & (succ < num_states)).all()
    for row in succ.reshape(-1, b):
        assert len(set(row.tolist())) == b
    assert params.rewards.shape == (num_states, 2, b)
    assert params.terminal_reward.shape == (num_states, 2)
    assert int(params.start) == 0


def test_successor_sets_are_uniform_over_subsets():
    # 5 states, b = 3: each of the C(5, 3) = 10 subsets has probability 1/10.
    keys = jax.random.split(KEY, 400)
    succ = np.asarray(jax.vmap(lambda k: random_mdp_params(k, 5, 2, 3).successors)(keys))
    subsets = [tuple(sorted(r)) for r in succ.reshape(-1, 3).tolist()]  # 400 * 5 * 2 = 4000
    counts = np.array([subsets.count(s) for s in set(subsets)])
    assert len(counts) == 10
    assert np.all(np.abs(counts / len(subsets) - 0.1) < 0.025)


def test_rewards_are_standard_normal():
    params = random_mdp_params(KEY, 2000, 2, 3)
    rewards = np.concatenate([np.ravel(params.rewards), np.ravel(params.terminal_reward)])
    assert abs(rewards.mean()) < 0.03 and abs(rewards.std() - 1.0) < 0.03


@pytest.mark.parametrize("b", [1, 3, 7])
def test_transition_distribution_has_b_branches_and_the_terminal_outcome(b):
    params = random_mdp_params(KEY, 7, 2, b, terminal_prob=0.2)
    d = transition_distribution(params, 4, 1)
    assert d.prob.shape == (b + 1,)
    assert float(d.prob.sum()) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(d.prob[:b], 0.8 / b, rtol=1e-6)
    assert float(d.prob[b]) == pytest.approx(0.2)
    assert not np.asarray(d.done[:b]).any() and bool(d.done[b])
    np.testing.assert_array_equal(d.next_obs[:b], params.successors[4, 1])
    np.testing.assert_array_equal(d.reward[:b], params.rewards[4, 1])
    assert float(d.reward[b]) == float(params.terminal_reward[4, 1])
    assert 0 <= int(d.next_obs[b]) < 7  # a valid placeholder index


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_states=5, branching=0), "branching must be an integer >= 1, got 0"),
        (dict(num_states=5, branching=6), r"branching must be an integer in \[1, num_states=5\]"),
        (dict(num_states=0, branching=1), "num_states must be an integer >= 1, got 0"),
        (dict(num_states=5, branching=1, terminal_prob=-0.1), r"terminal_prob must be in \[0"),
        (dict(num_states=5, branching=1, terminal_prob=1.5), r"terminal_prob must be in \[0"),
        (dict(num_states=5, branching=1.5), "branching must be an integer"),
        (dict(num_states=5, branching=1, num_actions=0), "num_actions must be an integer >= 1"),
    ],
)
def test_bad_input_is_a_clear_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        random_mdp_params(KEY, **kwargs)
    with pytest.raises(ValueError, match=match):
        RandomMDP(**kwargs)


@pytest.mark.slow
def test_vmap_over_keys_gives_different_tasks_and_the_same_key_the_same_task():
    keys = jax.random.split(KEY, 4)
    batch = jax.jit(jax.vmap(lambda k: random_mdp_params(k, 50, 2, 3)))(keys)
    assert batch.successors.shape == (4, 50, 2, 3)
    for i in range(4):
        for j in range(i + 1, 4):
            assert not np.array_equal(batch.successors[i], batch.successors[j])
            assert not np.array_equal(batch.rewards[i], batch.rewards[j])
    again = random_mdp_params(keys[2], 50, 2, 3)
    np.testing.assert_array_equal(again.successors, batch.successors[2])
    np.testing.assert_array_equal(again.rewards, batch.rewards[2])
    np.testing.assert_array_equal(again.terminal_reward, batch.terminal_reward[2])


def test_env_step_frequencies_and_rewards_match_the_distribution():
    env = RandomMDP(6, branching=3, terminal_prob=0.25, seed=3)
    params = env.default_params
    assert env.num_states == 6 and env.num_actions == 2
    _, state = env.reset(KEY, params)
    state = state.replace(pos=jnp.int32(2))
    n = 20000
    obs, new_state, reward, terminated, truncated, info = jax.vmap(
        lambda k: env.step(k, state, 1, params)
    )(jax.random.split(KEY, n))
    d = transition_distribution(params, 2, 1)
    terminated = np.asarray(terminated)
    assert not np.asarray(truncated).any()
    assert abs(terminated.mean() - 0.25) < 0.015
    # after termination: auto-reset to the start; the final observation is where it ended
    assert (np.asarray(obs)[terminated] == 0).all()
    assert (np.asarray(info["final_observation"])[terminated] == 2).all()
    np.testing.assert_allclose(np.asarray(reward)[terminated], float(d.reward[3]))
    nxt, rew = np.asarray(obs)[~terminated], np.asarray(reward)[~terminated]
    for j in range(3):
        hit = nxt == int(d.next_obs[j])
        assert abs(hit.mean() - 1 / 3) < 0.02  # each branch (1 - p) / b of all, 1/b of these
        np.testing.assert_allclose(rew[hit], float(d.reward[j]))
    assert (np.asarray(new_state.time)[~terminated] == 1).all()


def _numpy_policy_value(params, policy):
    """v_pi by a dense linear solve (I - P_pi) v = r_pi, built independently."""
    succ, rewards = np.asarray(params.successors), np.asarray(params.rewards, np.float64)
    term = np.asarray(params.terminal_reward, np.float64)
    p = float(params.terminal_prob)
    n, _, b = succ.shape
    matrix, r = np.eye(n), np.zeros(n)
    for s in range(n):
        a = int(policy[s])
        for j in range(b):
            matrix[s, succ[s, a, j]] -= (1 - p) / b
            r[s] += (1 - p) / b * rewards[s, a, j]
        r[s] += p * term[s, a]
    return np.linalg.solve(matrix, r)


@pytest.mark.parametrize("b", [1, 2, 5])
def test_greedy_policy_value_matches_a_linear_solve(b):
    params = random_mdp_params(jax.random.key(b), 30, 2, b)
    q = jax.random.normal(jax.random.key(10 + b), (30, 2))
    policy = np.argmax(np.asarray(q), axis=1)
    exact = _numpy_policy_value(params, policy)
    assert float(greedy_policy_value(params, q)) == pytest.approx(exact[0], abs=1e-3)
    np.testing.assert_allclose(policy_value(params, jnp.asarray(policy)), exact, atol=1e-3)
    # the a-posteriori stopping rule, from a far-off start, also lands within tol
    v, sweeps = policy_value_to_tolerance(
        params, jnp.asarray(policy), jnp.full((30,), 50.0), tol=1e-3
    )
    np.testing.assert_allclose(v, exact, atol=1e-3)
    assert int(sweeps) > 0


def test_greedy_policy_breaks_ties_to_the_lowest_action_and_doubling_equals_sweeps():
    q = jnp.array([[0.0, 0.0], [1.0, 2.0], [3.0, 3.0], [-1.0, -2.0]])
    np.testing.assert_array_equal(greedy_policy(q), [0, 1, 0, 0])
    params = random_mdp_params(KEY, 40, 2, 1)
    policy = jnp.asarray(np.random.default_rng(0).integers(0, 2, 40), jnp.int32)
    for n in (1, 2, 8, 64):  # b = 1 uses pointer doubling for exactly n = 2^k sweeps
        doubled = policy_value(params, policy, n)
        swept = policy_value(params, policy, n, initial_value=jnp.zeros(40))
        np.testing.assert_allclose(doubled, swept, atol=1e-5)


def test_evaluation_iterations_bound():
    n = evaluation_iterations(0.1, tol=1e-3, reward_bound=6.0)
    assert n == 105 and 0.9**n * 6.0 / 0.1 <= 1e-3 < 0.9 ** (n - 1) * 6.0 / 0.1
    with pytest.raises(ValueError, match="terminal_prob"):
        evaluation_iterations(0.0)


def test_count_model_learns_the_true_model_from_the_environment():
    from mbrl_jax.models.distribution import count_distribution_model
    from mbrl_jax.types import Transition

    env = RandomMDP(4, branching=2, terminal_prob=0.3, seed=1)
    params = env.default_params
    model = count_distribution_model(
        4, 2, max_outcomes=3
    )  # K = b + 1: two branches and termination
    n = 4000
    keys = jax.random.split(KEY, n)
    pos = jnp.asarray(np.arange(n) % 4, jnp.int32)
    action = jnp.asarray((np.arange(n) // 4) % 2, jnp.int32)
    _, state = env.reset(KEY, params)

    def real_step(k, s, a):
        _, _, reward, terminated, _, info = env.step(k, state.replace(pos=s), a, params)
        return Transition(s, a, reward, info["final_observation"], terminated)

    transitions = jax.vmap(real_step)(keys, pos, action)

    def learn(model_state, t):
        return model.update(model_state, t, KEY), None

    learned, _ = jax.lax.scan(learn, model.init(KEY), transitions)
    assert int(learned.overflow.sum()) == 0
    for s in range(4):
        for a in range(2):
            got = model.sample(learned, s, a, KEY)
            true = transition_distribution(params, s, a)
            for k in range(3):  # match outcomes by (next_obs, done)
                slot = np.flatnonzero(
                    (np.asarray(got.next_obs) == int(true.next_obs[k]))
                    & (np.asarray(got.done) == bool(true.done[k]))
                    & (np.asarray(got.prob) > 0)
                )
                assert len(slot) == 1
                assert abs(float(got.prob[slot[0]]) - float(true.prob[k])) < 0.08  # 500 visits
                assert float(got.reward[slot[0]]) == pytest.approx(float(true.reward[k]), abs=1e-5)


def test_random_mdp_runs_in_the_training_loop():
    from mbrl_jax.agents import dyna_q
    from mbrl_jax.train import TrainConfig, make_train

    env = RandomMDP(20, branching=3)
    train = make_train(
        env, dyna_q(env.num_states, env.num_actions, planning_steps=5), TrainConfig(num_steps=300)
    )
    _, metrics = jax.jit(train)(KEY)
    episodes = np.asarray(metrics.episodes)
    assert np.isfinite(np.asarray(metrics.cumulative_reward)).all()
    assert 10 < episodes[-1] < 60  # about one episode per 10 steps (terminal_prob 0.1)

"""dyna(...) and make_train: equivalences, determinism, vmap over seeds and
hyperparameters, masking, and the book's Figure 8.2 behaviour."""

from functools import partial

import chex
import jax
import numpy as np
import pytest

from mbrl_jax import Agent, TrainConfig, dyna, make_train, make_train_loop, run_in_lanes
from mbrl_jax.agents import dyna_q
from mbrl_jax.dyna import PROPOSAL_BLOCK
from mbrl_jax.learners import q_learning
from mbrl_jax.models import tabular_sample_model
from mbrl_jax.search import uniform_seen
from tests.conftest import seeds


def test_dyna_with_zero_planning_steps_equals_plain_q_learning(maze):
    S, A = maze.num_states, maze.num_actions
    learner = q_learning(S, A)
    config = TrainConfig(num_episodes=20)
    plain = jax.jit(make_train(maze, Agent(*learner), config))
    composed = jax.jit(
        make_train(
            maze,
            dyna(learner, tabular_sample_model(S, A), uniform_seen(S, A), planning_steps=0),
            config,
        )
    )
    key = jax.random.key(3)
    q_plain, m_plain = plain(key)
    state, m_dyna = composed(key)
    np.testing.assert_array_equal(m_plain.episode_length, m_dyna.episode_length)
    np.testing.assert_array_equal(q_plain.q, state.learner.q)


def test_same_key_same_result_and_vmap_equals_separate_calls(figure_8_2_train):
    train = figure_8_2_train(5)
    keys = seeds(4)
    _, batched = train(keys)
    _, again = train(keys)
    np.testing.assert_array_equal(batched.episode_length, again.episode_length)
    for i in range(4):
        _, alone = train(keys[i : i + 1])
        np.testing.assert_array_equal(alone.episode_length[0], batched.episode_length[i])


def test_runs_end_at_different_times_and_are_masked(figure_8_2_train):
    _, metrics = figure_8_2_train(0)(seeds(6))
    lengths = np.asarray(metrics.episode_length)
    totals = np.asarray(metrics.total_steps)
    assert (lengths > 0).all()
    np.testing.assert_array_equal(lengths.sum(axis=1), totals)  # each run counted its own steps
    assert len(set(totals.tolist())) > 1  # and they differ from run to run


@pytest.mark.parametrize("lanes", [2, 3, 7, 20])
def test_runs_in_lanes_equal_the_vmapped_runs_bit_for_bit(maze, figure_8_2_train, lanes):
    # 7 runs: 2 or 3 lanes refill as runs end (the runs end at different steps); 7 or
    # 20 lanes hold every run at once. (A batch of one, a lane or a vmapped run, compiles
    # to other float roundings of Q: XLA's code for one row differs, in the last ulp.)
    keys = seeds(7)
    expected = figure_8_2_train(5)(keys)  # (agent states, metrics), vmapped
    agent = dyna_q(maze.num_states, maze.num_actions, planning_steps=5)
    loop = make_train_loop(maze, agent, TrainConfig(num_episodes=50))
    in_lanes = jax.jit(run_in_lanes, static_argnums=(0, 2))(loop, keys, lanes)
    chex.assert_trees_all_equal(in_lanes, expected)


def test_a_train_loop_keeps_what_its_result_keeps_and_checks_its_input(maze):
    agent = dyna_q(maze.num_states, maze.num_actions, planning_steps=0)
    config = TrainConfig(num_episodes=5, max_steps=100)  # every run stops at 100 steps
    loop = make_train_loop(maze, agent, config)
    lengths = loop._replace(result=lambda state: loop.result(state)[1].episode_length)
    keys = seeds(3)
    expected = jax.vmap(make_train(maze, agent, config))(keys)[1].episode_length
    np.testing.assert_array_equal(jax.jit(lambda k: run_in_lanes(lengths, k, 2))(keys), expected)
    assert (np.asarray(expected)[:, -1] == -1).all()  # unfinished episodes stay missing
    with pytest.raises(ValueError, match="lanes must be"):
        run_in_lanes(loop, keys, 0)
    with pytest.raises(ValueError, match="measured in episodes"):
        make_train_loop(maze, agent, TrainConfig(num_steps=10))


def test_unfinished_episodes_are_reported_missing(maze):
    agent = dyna_q(maze.num_states, maze.num_actions, planning_steps=0)
    train = jax.jit(make_train(maze, agent, TrainConfig(num_episodes=5, max_steps=100)))
    _, m = train(jax.random.key(0))
    lengths = np.asarray(m.episode_length)
    assert int(m.total_steps) == 100
    assert lengths[-1] == -1 and np.isnan(np.asarray(m.episode_return)[-1])
    assert lengths[lengths > 0].sum() <= 100


def test_hyperparameters_are_sweepable_by_vmap(maze):
    S, A = maze.num_states, maze.num_actions
    config = TrainConfig(num_episodes=10)

    def train(key, alpha, epsilon):
        return make_train(
            maze, dyna_q(S, A, planning_steps=5, alpha=alpha, epsilon=epsilon), config
        )(key)

    alphas = np.array([0.1, 0.5, 1.0], np.float32)
    epsilons = np.array([0.1, 0.2, 0.05], np.float32)
    key = jax.random.key(7)
    _, swept = jax.jit(jax.vmap(train, in_axes=(None, 0, 0)))(key, alphas, epsilons)
    for i in range(3):
        _, alone = jax.jit(train)(key, alphas[i], epsilons[i])
        np.testing.assert_array_equal(alone.episode_length, swept.episode_length[i])


def test_step_metrics_count_rewards_and_episodes(maze):
    agent = dyna_q(maze.num_states, maze.num_actions, planning_steps=5)
    train = jax.jit(jax.vmap(make_train(maze, agent, TrainConfig(num_steps=500))))
    _, m = train(seeds(3))
    cumulative, episodes = np.asarray(m.cumulative_reward), np.asarray(m.episodes)
    assert cumulative.shape == (3, 500)
    assert (np.diff(cumulative, axis=1) >= 0).all()
    # in the Dyna maze a reward of 1 comes exactly when an episode ends
    np.testing.assert_array_equal(cumulative, episodes)


@pytest.mark.slow  # 24 s; the fast golden test checks the experiment's one program
def test_one_executable_for_every_n_equals_each_static_n(maze, figure_8_2_train):
    """n as a run-time loop bound (traced, unbatched): one compile serves n = 0, 5 and
    21 (two blocks of proposals, the second partial), and each equals the agent built
    with that n as a Python int, bit for bit."""
    S, A = maze.num_states, maze.num_actions
    config = TrainConfig(num_episodes=50)

    def train(n, keys):
        return jax.vmap(make_train(maze, dyna_q(S, A, planning_steps=n), config))(keys)

    any_n = jax.jit(train)
    keys = seeds(3)
    assert PROPOSAL_BLOCK < 21 < 2 * PROPOSAL_BLOCK
    for n in (0, 5, 21):
        state, metrics = any_n(np.int32(n), keys)
        static_train = figure_8_2_train(n) if n != 21 else jax.jit(partial(train, n))
        static_state, static_metrics = static_train(keys)
        np.testing.assert_array_equal(metrics.episode_length, static_metrics.episode_length)
        np.testing.assert_array_equal(state.learner.q, static_state.learner.q)
        np.testing.assert_array_equal(state.updates, static_state.updates)
    assert any_n._cache_size() == 1


def test_a_traced_planning_steps_must_be_an_integer_scalar(maze):
    S, A = maze.num_states, maze.num_actions
    with pytest.raises(ValueError, match="traced planning_steps must be an integer scalar"):
        jax.jit(lambda n: dyna_q(S, A, planning_steps=n))(np.float32(5))


@pytest.mark.slow
def test_planning_helps_as_in_figure_8_2(figure_8_2_train):
    """Figure 8.2's shape over 30 seeds: n=50 near the optimal 14 (~16-18 with
    epsilon 0.1) by episode 3, n=5 by about episode 6, n=0 needs ~25-30 episodes."""
    keys = seeds(30)
    mean = {n: np.asarray(figure_8_2_train(n)(keys)[1].episode_length).mean(0) for n in (0, 5, 50)}
    episode = lambda k: k - 1  # noqa: E731  (episodes are numbered from 1)
    assert mean[50][episode(2)] < 0.2 * mean[0][episode(2)]
    assert mean[50][episode(3)] < 21
    assert mean[5][episode(6)] < 25 and mean[5][episode(3)] > mean[50][episode(3)]
    assert mean[0][episode(10)] > 60  # n=0 is still far from the optimal path at episode 10
    assert mean[0][episode(30) :].mean() < 21  # and near it from about episode 30 on
    for n in (0, 5, 50):  # everybody ends near 14 steps plus exploration
        assert 14 <= mean[n][-10:].mean() < 20


@pytest.mark.parametrize("n", [-1, 2.5, "5"])
def test_bad_planning_steps_are_rejected(n, maze):
    S, A = maze.num_states, maze.num_actions
    with pytest.raises(ValueError, match="planning_steps must be an integer >= 0"):
        dyna(q_learning(S, A), tabular_sample_model(S, A), uniform_seen(S, A), planning_steps=n)

"""Inputs checked before anything runs, and out-of-range values that are only seen inside
jit (issue 18, item 5).

Each defect a user found has a test here: an eager call now raises a clear error (a
TypeError for a wrong dtype, a ValueError for an index out of range), ``make_train``
compares the agent's spaces with the environment's up front, and inside jit, where a
value cannot raise, the part's documented rule is pinned (a NaN reward or update, never a
silent move to another index), with :func:`mbrl_jax.train.checked` turning it into an
error. Sizes are small and compiled functions are shared, to keep the file cheap.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import spaces

from mbrl_jax.agents import dyna_q, neural_dyna
from mbrl_jax.envs import Racetrack, RandomMDP, dyna_maze, make, transition_distribution
from mbrl_jax.learners import QTable, dqn, q_learning, q_learning_update, td_loss
from mbrl_jax.models import count_distribution_model, neural_model, tabular_sample_model
from mbrl_jax.train import TrainConfig, checked, make_train, make_train_chunks
from mbrl_jax.types import Agent, Spaces, Transition

KEY = jax.random.key(0)
MAZE = dyna_maze()  # 54 cells, 4 actions
PARAMS = MAZE.default_params
TINY_TRACK = "S..F"


def maze_state():
    return MAZE.reset(KEY, PARAMS)[1]


def transition(obs, action, next_obs=0, reward=1.0):
    return Transition(obs, action, jnp.float32(reward), next_obs, jnp.asarray(False))


# --- environments: maze action 7 and -1 both moved right ------------------------------


@pytest.mark.parametrize("action", [7, -1, 4])
def test_maze_action_out_of_range_is_an_error(action):
    with pytest.raises(
        ValueError, match=rf"Maze: action must be an integer in \[0, 4\), got {action}"
    ):
        MAZE.step(KEY, maze_state(), action)


def test_maze_float_action_is_a_type_error():
    with pytest.raises(TypeError, match=r"Maze: action must be an integer index in \[0, 4\)"):
        MAZE.step(KEY, maze_state(), 1.0)


@functools.cache
def _jitted_maze_step():
    return jax.jit(lambda state, action: MAZE.step(KEY, state, action))


@pytest.mark.parametrize("action", [7, -1])
def test_maze_inside_jit_an_invalid_action_stays_with_reward_nan(action):
    state = maze_state()
    obs, new_state, reward, terminated, _, _ = _jitted_maze_step()(state, jnp.int32(action))
    assert int(obs) == int(state.pos)  # no move (it used to move right)
    assert np.isnan(reward)
    assert not bool(terminated)
    obs, _, reward, _, _, _ = _jitted_maze_step()(state, jnp.int32(3))  # a valid one: moves
    assert np.isfinite(reward)


def test_checked_turns_the_in_jit_rule_into_an_error():
    run = checked(lambda state, action: MAZE.step(KEY, state, action))
    run(maze_state(), jnp.int32(3))  # valid: no error
    with pytest.raises(Exception, match=r"Maze: action must be an integer in \[0, 4\), got 7"):
        run(maze_state(), jnp.int32(7))


def test_maze_transition_of_a_cell_off_the_grid():
    with pytest.raises(ValueError, match=r"Maze: cell must be an integer in \[0, 54\), got 54"):
        MAZE.transition(54, 0, PARAMS)


def test_racetrack_and_random_mdp_actions():
    track = Racetrack(TINY_TRACK, max_speed=1)
    state = track.reset(KEY)[1]
    with pytest.raises(ValueError, match=r"Racetrack.step: action must be an integer in \[0, 9\)"):
        track.step(KEY, state, 9)
    _, new, reward, _, _, _ = jax.jit(lambda s, a: track.step(KEY, s, a))(state, jnp.int32(-1))
    assert np.isnan(reward) and int(new.pos) == int(state.pos)

    mdp = RandomMDP(10, 2)
    state = mdp.reset(KEY)[1]
    with pytest.raises(ValueError, match=r"RandomMDP.step: action must be an integer in \[0, 2\)"):
        mdp.step(KEY, state, 2)
    _, new, reward, term, _, _ = jax.jit(lambda s, a: mdp.step(KEY, s, a))(state, jnp.int32(5))
    assert np.isnan(reward) and int(new.pos) == int(state.pos) and not bool(term)
    with pytest.raises(ValueError, match=r"transition_distribution: obs must be .* \[0, 10\)"):
        transition_distribution(mdp.default_params, 10, 0)


# --- tabular learners and models: state 100 dropped, state -1 updated row 53 -----------


@pytest.mark.parametrize("obs", [100, -1])
def test_q_learning_update_out_of_range_state_is_an_error(obs):
    q = jnp.zeros((54, 4))
    with pytest.raises(
        ValueError, match=rf"q_learning_update: obs must be .* \[0, 54\), got {obs}"
    ):
        q_learning_update(q, transition(obs, 0), 0.5, 0.9)
    with pytest.raises(ValueError, match=r"next_obs must be an integer in \[0, 54\), got 54"):
        q_learning_update(q, transition(0, 0, next_obs=54), 0.5, 0.9)
    with pytest.raises(ValueError, match=r"action must be an integer in \[0, 4\), got 4"):
        q_learning_update(q, transition(0, 4), 0.5, 0.9)


def test_float_observations_to_a_tabular_learner_name_the_dtype():
    learner = q_learning(54, 4)
    state = learner.init(KEY)
    with pytest.raises(
        TypeError, match=r"obs must be an integer index in \[0, 54\), got 3.0 of dtype float32"
    ):
        learner.update(state, transition(jnp.float32(3.0), 0), KEY)
    with pytest.raises(TypeError, match=r"q_table_learner.act: obs must be an integer index"):
        learner.act(state, jnp.float32(3.0), KEY)


@pytest.mark.parametrize("obs, row", [(100, 53), (-1, 53)])  # as JAX indexes: clip, wrap
def test_q_learning_inside_jit_writes_nan_not_another_rows_number(obs, row):
    q = jnp.ones((54, 4))
    new = jax.jit(q_learning_update)(q, transition(jnp.int32(obs), jnp.int32(1)), 0.5, 0.9)
    nan = np.argwhere(np.isnan(np.asarray(new)))
    assert nan.tolist() == [[row, 1]]  # the clipped entry is NaN, nothing else moved
    assert np.all(np.asarray(new)[~np.isnan(np.asarray(new))] == 1.0)


def test_q_table_learner_act_inside_jit_returns_no_action():
    learner = q_learning(54, 4)
    action = jax.jit(learner.act)(learner.init(KEY), jnp.int32(100), KEY)
    assert int(action) == -1
    with pytest.raises(
        ValueError, match=r"q_table_learner.act: obs must be an integer in \[0, 54\)"
    ):
        learner.act(learner.init(KEY), 100, KEY)


def test_tabular_models_check_their_indices():
    model = tabular_sample_model(54, 4)
    state = model.init(KEY)
    with pytest.raises(ValueError, match=r"tabular_sample_model.update: obs .* got 100"):
        model.update(state, transition(100, 0), KEY)
    with pytest.raises(ValueError, match=r"tabular_sample_model.sample: action .* got -1"):
        model.sample(state, 0, -1, KEY)
    stored = jax.jit(model.update)(state, transition(jnp.int32(-1), jnp.int32(0)), KEY)
    assert np.isnan(stored.reward[0, 0])  # clipped entry, reward NaN: not a silent write
    assert np.isnan(jax.jit(model.sample)(state, jnp.int32(54), jnp.int32(0), KEY).reward)

    counts = count_distribution_model(54, 4)
    with pytest.raises(ValueError, match=r"count_distribution_model.update: obs .* got 100"):
        counts.update(counts.init(KEY), transition(100, 0), KEY)
    sampled = jax.jit(counts.sample)(counts.init(KEY), jnp.int32(100), jnp.int32(0), KEY)
    assert np.all(np.isnan(sampled.reward))


# --- neural model: Discrete actions 5 and -3 went in as all-zero one-hots ---------------


@functools.cache
def _neural():
    model = neural_model(3, spaces.Discrete(4), ensemble_size=1, hidden=(8,), capacity=16)
    return model, model.init(KEY)


def _neural_transition(action):
    return Transition(jnp.zeros(3), action, jnp.float32(0.0), jnp.ones(3), jnp.asarray(False))


@pytest.mark.parametrize("action", [5, -3])
def test_neural_model_discrete_action_out_of_range(action):
    model, state = _neural()
    with pytest.raises(
        ValueError, match=rf"neural_model: action must be an integer in \[0, 4\), got {action}"
    ):
        model.update(state, _neural_transition(action), KEY)
    stored = jax.jit(model.update)(state, _neural_transition(jnp.int32(action)), KEY)
    assert np.isnan(np.asarray(stored.input_stats.mean)).any()  # NaN input, not all-zero
    next_obs, _, _ = jax.jit(model.predict, static_argnums=4)(
        state, jnp.zeros((1, 3)), jnp.array([action], jnp.int32), KEY, "expectation"
    )
    assert np.isnan(np.asarray(next_obs)).all()


def test_dqn_action_out_of_range():
    learner = dqn(3, 2, hidden=(8,), capacity=8, batch_size=4, learning_starts=100)
    state = learner.init(KEY)
    bad = Transition(jnp.zeros(3), 2, jnp.float32(0.0), jnp.zeros(3), jnp.asarray(False))
    with pytest.raises(
        ValueError, match=r"dqn update: action must be an integer in \[0, 2\), got 2"
    ):
        learner.update(state, bad, KEY)
    batch = Transition(
        jnp.zeros((2, 3)), jnp.array([0, 5]), jnp.zeros(2), jnp.zeros((2, 3)), jnp.zeros(2, bool)
    )
    network = learner.learner  # the Learner triple keeps the spaces
    assert network.spaces == learner.spaces
    loss = jax.jit(td_loss, static_argnums=(0, 5, 6))(
        _q_network(learner),
        *[learner.network_params(state.params)] * 2,
        batch,
        0.9,
        False,
        "squared",
    )
    assert np.isnan(loss)  # a NaN loss: the step is skipped and check_q_training reports it


def _q_network(learner):
    from mbrl_jax.learners import QNetwork

    return QNetwork((8,), learner.spaces.action.n)


# --- make_train compares the agent's sizes with the environment's spaces -----------------

CONFIG = TrainConfig(num_steps=10)


@pytest.mark.parametrize(
    "agent, message",
    [
        (
            dyna_q(10, 4, planning_steps=5),
            r"observation space Discrete\(10\) but the environment Maze has Discrete\(54\)",
        ),
        (
            dyna_q(54, 8, planning_steps=5),
            r"action space Discrete\(8\) but the environment Maze has Discrete\(4\)",
        ),
        (
            Agent(*dqn(4, 4, hidden=(8,)).learner),
            r"observation space Box\(shape=\(4,\)\) but the environment Maze has Discrete\(54\)",
        ),
    ],
)
def test_make_train_rejects_an_agent_built_for_other_spaces(agent, message):
    with pytest.raises(ValueError, match=rf"make_train: the agent was built for the {message}"):
        make_train(MAZE, agent, CONFIG)
    with pytest.raises(
        ValueError, match=rf"make_train_chunks: the agent was built for the {message}"
    ):
        make_train_chunks(MAZE, agent, CONFIG)
    with pytest.raises(ValueError, match="make_train"):  # runs measured in episodes too
        make_train(MAZE, agent, TrainConfig(num_episodes=2))


def test_make_train_neural_agents_against_gymnax_cartpole():
    env, params = make("CartPole-v1")  # observations of shape (4,), 2 actions
    wrong_obs = dqn(3, 2, hidden=(8,))
    with pytest.raises(
        ValueError,
        match=r"observation space Box\(shape=\(3,\)\) but the environment CartPole-v1 has "
        r"Box\(shape=\(4,\)\)",
    ):
        make_train(env, Agent(*wrong_obs.learner), CONFIG, params)
    model = neural_model(4, spaces.Discrete(3), ensemble_size=1, hidden=(8,), capacity=16)
    wrong_actions = neural_dyna(dqn(4, 3, hidden=(8,)), model, 4, planning_steps=1).agent
    with pytest.raises(
        ValueError,
        match=r"action space Discrete\(3\) but the environment CartPole-v1 has Discrete\(2\)",
    ):
        make_train(env, wrong_actions, CONFIG, params)
    make_train(env, Agent(*dqn(4, 2, hidden=(8,)).learner), CONFIG, params)  # matching: fine


def test_matching_and_unknown_spaces_pass():
    agent = dyna_q(54, 4, planning_steps=5)
    assert agent.spaces == Spaces(agent.spaces.observation, agent.spaces.action)
    assert (agent.spaces.observation.n, agent.spaces.action.n) == (54, 4)
    make_train(MAZE, agent, CONFIG)
    bare = Agent(agent.init, agent.act, agent.update)  # spaces unknown: not checked
    make_train(MAZE, bare, CONFIG)
    assert isinstance(agent.init(KEY).learner, QTable)

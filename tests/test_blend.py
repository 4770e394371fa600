"""The blend of background and decision-time planning (mbrl_jax.blend.decision_time):
with no search it is the Dyna agent bit for bit; what the search backs up is what gets
stored; the search sees the learned values only when it bootstraps; bad input is a
clear error."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mbrl_jax.agents import dyna_q
from mbrl_jax.blend import decision_time, store_root_values
from mbrl_jax.dyna import DynaState
from mbrl_jax.envs import dyna_maze
from mbrl_jax.learners import QTable, q_learning
from mbrl_jax.models import tabular_sample_model
from mbrl_jax.planners import heuristic_search
from mbrl_jax.train import TrainConfig, make_train
from mbrl_jax.types import Transition

ENV = dyna_maze()
S, A = ENV.num_states, 4
GOAL = 8  # row 0, col 8
BELOW_GOAL = 17  # row 1, col 8: "up" reaches the goal


@functools.cache
def train_fn(agent_name: str):
    base = dyna_q(S, A, planning_steps=5)
    agents = {
        "dyna_q": base,
        "no search": decision_time(base, tabular_sample_model(S, A), None, store_step_size=0.7),
        "blend": decision_time(base, tabular_sample_model(S, A), heuristic_search(S, A, depth=1)),
    }
    train = make_train(ENV, agents[agent_name], TrainConfig(num_episodes=3))
    return jax.jit(jax.vmap(train))


@pytest.mark.slow  # 19 s of compiling; make test had to stay under 10 minutes
def test_with_no_search_it_is_the_dyna_agent_bit_for_bit():
    keys = jax.random.split(jax.random.key(4), 3)
    (plain_state, plain), (blend_state, blend) = (
        train_fn(n)(keys) for n in ("dyna_q", "no search")
    )
    np.testing.assert_array_equal(plain.episode_length, blend.episode_length)
    jax.tree.map(np.testing.assert_array_equal, plain_state, blend_state)
    searched = train_fn("blend")(keys)[1]
    assert not np.array_equal(searched.episode_length, plain.episode_length)  # the test can fail


def known_state(q: jax.Array) -> DynaState:
    """A Dyna-Q state whose model has seen "up" below the goal (and nothing else)."""
    agent = dyna_q(S, A, planning_steps=0)
    model = tabular_sample_model(S, A)
    state = agent.init(jax.random.key(0))
    seen = Transition(jnp.int32(BELOW_GOAL), jnp.int32(0), jnp.float32(1), jnp.int32(GOAL), True)
    return state._replace(learner=QTable(q), model=model.update(state.model, seen, None))


@pytest.mark.parametrize("bootstrap", [True, False])
def test_the_search_result_is_stored_with_its_step_size(bootstrap):
    q = jnp.full((S, A), 0.5).at[BELOW_GOAL - 9].set(2.0)  # the cell above is worth 2
    state = known_state(q)
    agent = decision_time(
        dyna_q(S, A, planning_steps=0),
        tabular_sample_model(S, A),
        heuristic_search(S, A, depth=1, gamma=0.9),
        epsilon=0.0,
        store_step_size=0.25,
        bootstrap=bootstrap,
    )
    action, new_state = agent.act_stateful(state, jnp.int32(BELOW_GOAL), jax.random.key(1))
    # Seen: up -> goal, reward 1, terminal. Unseen pairs lead back to the cell itself
    # with reward 0 (the sample model's convention): 0.9 max Q(17) = 0.45 or 0 unbootstrapped.
    stay = 0.9 * 0.5 if bootstrap else 0.0
    searched = np.array([1.0, stay, stay, stay])
    expected_row = 0.5 + 0.25 * (searched - 0.5)
    np.testing.assert_allclose(new_state.learner.q[BELOW_GOAL], expected_row, rtol=1e-6)
    other = np.delete(np.arange(S), BELOW_GOAL)
    np.testing.assert_array_equal(new_state.learner.q[other], q[other])
    assert int(action) == 0  # greedy on the searched values
    jax.tree.map(np.testing.assert_array_equal, new_state.model, state.model)


def test_store_root_values_moves_only_the_row_of_the_state():
    q = jnp.arange(12.0).reshape(3, 4)
    out = store_root_values(q, 1, jnp.array([0.0, 0.0, 10.0, 7.0]), 0.5)
    np.testing.assert_allclose(out[1], [2.0, 2.5, 8.0, 7.0])
    np.testing.assert_array_equal(out[np.array([0, 2])], q[np.array([0, 2])])
    np.testing.assert_array_equal(store_root_values(q, 1, jnp.zeros(4), 0.0), q)


def test_the_blend_decides_better_on_a_return_to_a_stored_state():
    """Below the goal with an empty Q: once the search's values are stored, the
    plain Q-table policy alone (no search) now goes up."""
    state = known_state(jnp.zeros((S, A)))
    agent = decision_time(
        dyna_q(S, A, planning_steps=0),
        tabular_sample_model(S, A),
        heuristic_search(S, A, depth=1),
        epsilon=0.0,
    )
    _, state = agent.act_stateful(state, jnp.int32(BELOW_GOAL), jax.random.key(0))
    greedy = q_learning(S, A, epsilon=0.0)
    actions = jax.vmap(lambda k: greedy.act(state.learner, BELOW_GOAL, k))(
        jax.random.split(jax.random.key(1), 20)
    )
    assert np.all(np.asarray(actions) == 0)


def test_bad_input_is_a_clear_error():
    model = tabular_sample_model(S, A)
    planner = heuristic_search(S, A, depth=1)
    with pytest.raises(ValueError, match="store_step_size must be in \\[0.0, 1.0\\], got 2"):
        decision_time(dyna_q(S, A, planning_steps=0), model, planner, store_step_size=2)
    mismatched = decision_time(dyna_q(S, A, planning_steps=0), tabular_sample_model(10, A), planner)
    state = dyna_q(S, A, planning_steps=0).init(jax.random.key(0))
    state = state._replace(model=tabular_sample_model(10, A).init(None))
    with pytest.raises(
        ValueError, match=r"model's tables have shape \(10, 4\).*Q-table has \(54, 4\)"
    ):
        mismatched.act_stateful(state, jnp.int32(0), jax.random.key(0))
    not_dyna = decision_time(q_learning(S, A), model, planner)
    with pytest.raises(
        TypeError, match="wraps a tabular Dyna agent.*got an agent state of type QTable"
    ):
        not_dyna.act_stateful(QTable(jnp.zeros((S, A))), jnp.int32(0), jax.random.key(0))

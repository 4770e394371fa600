"""Tabular parts against hand computations: Q-learning, epsilon-greedy, the sample
model, Dyna-Q+'s bonus, uniform search control, Q-planning."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mbrl_jax import Transition, q_planning
from mbrl_jax.learners import QTable, epsilon_greedy, q_learning
from mbrl_jax.models import environment_model, tabular_sample_model
from mbrl_jax.search import uniform_over_states, uniform_seen

KEY = jax.random.key(0)


def tr(s, a, r, s2, done=False) -> Transition:
    return Transition(jnp.int32(s), jnp.int32(a), jnp.float32(r), jnp.int32(s2), jnp.bool_(done))


def test_q_learning_update_matches_hand_computation():
    learner = q_learning(3, 2, alpha=0.5, epsilon=0.1, gamma=0.9)
    q = jnp.array([[1.0, 2.0], [3.0, -1.0], [0.0, 0.0]])
    # Q(0,1) <- 2 + 0.5 * (0.5 + 0.9 * max(3, -1) - 2) = 2 + 0.5 * 1.2 = 2.6
    new = learner.update(QTable(q), tr(0, 1, 0.5, 1), KEY).q
    assert new[0, 1] == pytest.approx(2.6)
    assert np.array_equal(np.asarray(new).ravel()[[0, 2, 3, 4, 5]], [1.0, 3.0, -1.0, 0.0, 0.0])
    # terminal: no bootstrap. Q(1,0) <- 3 + 0.5 * (1 - 3) = 2
    assert learner.update(QTable(q), tr(1, 0, 1.0, 0, done=True), KEY).q[1, 0] == pytest.approx(2.0)


def test_epsilon_greedy_breaks_ties_uniformly_and_explores_with_epsilon():
    keys = jax.random.split(KEY, 20000)
    q = jnp.array([1.0, 3.0, 3.0, 0.0])
    greedy = np.asarray(jax.vmap(lambda k: epsilon_greedy(q, 0.0, k))(keys))
    assert set(np.unique(greedy)) == {1, 2}
    assert abs((greedy == 1).mean() - 0.5) < 0.02
    explore = np.asarray(jax.vmap(lambda k: epsilon_greedy(q, 0.2, k))(keys))
    freq = np.bincount(explore, minlength=4) / len(explore)
    # each action has eps/4 from exploring; the two maximal ones share 1 - eps
    assert np.allclose(freq, [0.05, 0.45, 0.45, 0.05], atol=0.015)


def test_epsilon_greedy_acts_per_row_of_a_batch():
    """The DQN's batched use: one action per row, the row's own maximum (ties shared)."""
    q = jnp.array([[1.0, 3.0, 3.0, 0.0], [5.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 2.0]])
    keys = jax.random.split(KEY, 5000)
    greedy = np.asarray(jax.vmap(lambda k: epsilon_greedy(q, 0.0, k))(keys))
    assert greedy.shape == (5000, 3) and greedy.dtype == np.int32
    assert set(np.unique(greedy[:, 0])) == {1, 2} and abs((greedy[:, 0] == 1).mean() - 0.5) < 0.03
    assert (greedy[:, 1] == 0).all() and (greedy[:, 2] == 3).all()
    explore = np.asarray(jax.vmap(lambda k: epsilon_greedy(q, 1.0, k))(keys))
    for row in explore.T:  # epsilon 1: uniform over the 4 actions in every row
        assert np.allclose(np.bincount(row, minlength=4) / len(row), 0.25, atol=0.025)


def test_sample_model_returns_what_was_stored_and_overwrites():
    model = tabular_sample_model(4, 2)
    state = model.init(KEY)
    state = model.update(state, tr(1, 0, 0.5, 3), KEY)
    state = model.update(state, tr(2, 1, 1.0, 0, done=True), KEY)
    got = model.sample(state, jnp.int32(1), jnp.int32(0), KEY)
    assert (int(got.next_obs), float(got.reward), bool(got.done)) == (3, 0.5, False)
    got = model.sample(state, jnp.int32(2), jnp.int32(1), KEY)
    assert (int(got.next_obs), float(got.reward), bool(got.done)) == (0, 1.0, True)
    state = model.update(state, tr(1, 0, -2.0, 2), KEY)  # the last observation wins
    got = model.sample(state, jnp.int32(1), jnp.int32(0), KEY)
    assert (int(got.next_obs), float(got.reward)) == (2, -2.0)


def test_dyna_q_plus_bonus_is_kappa_sqrt_tau_on_a_constructed_history():
    kappa = 0.01
    model = tabular_sample_model(5, 2, kappa=kappa)
    state = model.init(KEY)
    state = model.update(state, tr(0, 0, 0.25, 1), KEY)  # real step 1 tries (0, 0)
    for s in range(1, 5):  # real steps 2..5 try other pairs
        state = model.update(state, tr(s, 1, 0.0, s), KEY)
    got = model.sample(state, jnp.int32(0), jnp.int32(0), KEY)
    assert float(got.reward) == pytest.approx(0.25 + kappa * np.sqrt(4))
    fresh = model.sample(state, jnp.int32(4), jnp.int32(1), KEY)  # tried just now: tau = 0
    assert float(fresh.reward) == pytest.approx(0.0)
    # never tried: back to the same state, reward 0 + bonus for all 5 steps
    untried = model.sample(state, jnp.int32(3), jnp.int32(0), KEY)
    assert int(untried.next_obs) == 3
    assert float(untried.reward) == pytest.approx(kappa * np.sqrt(5))


def test_uniform_seen_proposes_exactly_the_seen_pairs_uniformly():
    search = uniform_seen(6, 3)
    state = search.init(KEY)
    seen = [(0, 1), (4, 2), (0, 1), (5, 0)]
    for s, a in seen:
        state = search.update(state, tr(s, a, 0.0, s), None, None, KEY)
    assert int(state.count) == 3
    keys = jax.random.split(KEY, 6000)
    obs, actions, _ = jax.vmap(search.propose, in_axes=(None, None, None, 0))(
        state, None, None, keys
    )
    pairs = list(zip(np.asarray(obs).tolist(), np.asarray(actions).tolist(), strict=True))
    counts = {p: pairs.count(p) for p in set(pairs)}
    assert set(counts) == {(0, 1), (4, 2), (5, 0)}
    assert all(abs(c / 6000 - 1 / 3) < 0.03 for c in counts.values())
    # simulated transitions do not enter the list
    state2 = search.update(state, tr(3, 0, 0.0, 3), None, None, KEY, simulated=True)
    assert int(state2.count) == 3


def test_uniform_over_seen_states_proposes_every_action():
    search = uniform_over_states(6, 3)
    state = search.init(KEY)
    state = search.update(state, tr(2, 0, 0.0, 2), None, None, KEY)
    keys = jax.random.split(KEY, 300)
    obs, actions, _ = jax.vmap(search.propose, in_axes=(None, None, None, 0))(
        state, None, None, keys
    )
    assert set(np.asarray(obs).tolist()) == {2}
    assert set(np.asarray(actions).tolist()) == {0, 1, 2}


def test_q_planning_on_the_true_maze_finds_the_optimal_values(maze):
    """Random-sample one-step tabular Q-planning (section 8.1) with the true model
    converges to Q*: from the start, V* = gamma^13 (reward 1 on the 14th step)."""
    params = maze.default_params
    gamma = 0.95
    model = environment_model(lambda obs, action, key: maze.transition(obs, action, params))
    search = uniform_over_states(maze.num_states, 4, states=maze.open_cells())
    learner = q_learning(maze.num_states, 4, alpha=0.5, gamma=gamma)
    q = jax.jit(q_planning(learner, model, search, planning_steps=30000))(KEY).q
    assert float(q[maze.start_cell()].max()) == pytest.approx(gamma**13, rel=1e-4)
    # every other open cell too: V*(s) = gamma^(d - 1), d = grid distance to the goal
    distance = grid_distances_to_goal(maze.grids[0])
    for cell in maze.open_cells():
        d = distance[divmod(int(cell), maze.width)]
        if d > 0:
            assert float(q[cell].max()) == pytest.approx(gamma ** (d - 1), rel=1e-4)


def grid_distances_to_goal(grid: np.ndarray) -> np.ndarray:
    """Breadth-first distances over open cells from the goal (moves are reversible)."""
    dist = np.full(grid.shape, -1)
    frontier = [tuple(g) for g in np.argwhere(grid == "G")]
    for cell in frontier:
        dist[cell] = 0
    while frontier:
        nxt = []
        for r, c in frontier:
            for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                rr, cc = r + dr, c + dc
                inside = 0 <= rr < grid.shape[0] and 0 <= cc < grid.shape[1]
                if inside and grid[rr, cc] != "#" and dist[rr, cc] < 0:
                    dist[rr, cc] = dist[r, c] + 1
                    nxt.append((rr, cc))
        frontier = nxt
    return dist

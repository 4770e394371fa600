"""Value iteration, policy evaluation and RTDP (S&B sections 4.4, 8.7) on tiny racetracks."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import spaces

from mbrl_jax.dynamic_programming import (
    action_values,
    greedy_value,
    policy_evaluation,
    restrict,
    rtdp,
    table_model,
    value_iteration,
)
from mbrl_jax.envs import Racetrack
from mbrl_jax.models import check_outcome_overflow, count_distribution_model
from tests.conftest import seeds

# One column: the finish line 3 rows above the start cell (max speed 2). By hand, with
# p = 0.1 the probability that the increments are zeroed and E the expected steps:
# at row 1 moving up any action finishes: E = 1; at row 2 speed 1, speeding up finishes
# unless zeroed (then on to row 1): E = 1 + p = 1.1; at the start, speeding up moves to
# row 2 unless zeroed (then it stays): E = (1 + (1 - p) 1.1) / (1 - p) = 1.99 / 0.9.
CORRIDOR = "F\n.\n.\nS"
CORRIDOR_STEPS = {(1, 0, 1, 0): 1.0, (2, 0, 1, 0): 1.1, (3, 0, 0, 0): 1.99 / 0.9}
# A small turn like Figure 5.5's (43 reachable states at max speed 2).
TURN = """
###..F
##...F
#...##
#...##
#SSS##
"""
RUNS = 8


@functools.cache
def track(layout: str = TURN, noise: float = 0.1, max_speed: int = 2) -> Racetrack:
    return Racetrack(layout, max_speed=max_speed, noise=noise)


@functools.cache
def problem(layout: str = TURN, noise: float = 0.1):
    """(table on the reachable states, their indices, start rows, synchronous VI)."""
    env = track(layout, noise)
    table, index = restrict(env.table, env.reachable())
    starts = np.searchsorted(index, env.start_states)
    return table, index, starts, value_iteration(table)


def mean_length(layout: str, values: jax.Array, noise: float = 0.1) -> jax.Array:
    """The greedy policy's mean episode length, V given on all of the track's states."""
    table, index, starts, _ = problem(layout, noise)
    return -greedy_value(table, values[index], starts)


@functools.cache
def optimum(layout: str = TURN, noise: float = 0.1) -> float:
    table, index, _, vi = problem(layout, noise)
    values = jnp.zeros(track(layout, noise).num_states).at[index].set(vi.values)
    return float(jax.jit(functools.partial(mean_length, layout, noise=noise))(values))


@functools.cache
def rtdp_runs(model_name: str = "true", layout: str = TURN, noise: float = 0.1, **settings):
    """Jitted ``lax.map`` of RTDP runs over keys (compiled once per setting)."""
    env = track(layout, noise)
    if model_name == "true":
        model = table_model(env.table)
    else:
        model = count_distribution_model(env.num_states, 9, max_outcomes=8)
    run = rtdp(
        env,
        env.default_params,
        model,
        functools.partial(mean_length, layout, noise=noise),
        target=optimum(layout, noise),
        **{"tolerance": 1e-3, "check_every": 50, "max_updates": 50_000, **settings},
    )
    return run


@functools.cache
def mapped_runs():
    """RTDP with the true model, one run per key, compiled once."""
    run = rtdp_runs()
    return jax.jit(lambda keys: jax.lax.map(run, keys))


@functools.cache
def true_model_results():
    return jax.tree.map(np.asarray, mapped_runs()(seeds(RUNS)))


# --- value iteration and policy evaluation ------------------------------------------------


def test_value_iteration_gives_the_hand_computed_optimum():
    env = track(CORRIDOR)
    reachable = env.reachable()
    assert {env.decode(s) for s in np.flatnonzero(reachable)} == set(CORRIDOR_STEPS)
    for result in (
        value_iteration(env.table, states=reachable),
        value_iteration(env.table, order=np.flatnonzero(reachable)),  # in place
    ):
        for state, steps in CORRIDOR_STEPS.items():
            assert float(result.values[env.state_index(*state)]) == pytest.approx(-steps, 1e-4)
        assert int(result.updates) == 3 * int(result.sweeps)
        assert float(result.delta) < 1e-4
    assert optimum(CORRIDOR) == pytest.approx(1.99 / 0.9, abs=1e-5)


def test_value_iteration_stops_at_theta_and_keeps_every_sweep():
    table, _, _, vi = problem()
    result = value_iteration(table, history=True)
    sweeps = int(result.sweeps)
    assert sweeps == int(vi.sweeps) and int(result.updates) == sweeps * len(table.prob)
    changes = np.abs(np.diff(np.asarray(result.history[:sweeps]), axis=0)).max(1)
    assert changes[-1] < 1e-4 <= changes[-2]  # the first sweep that changed less than theta
    np.testing.assert_array_equal(result.history[sweeps - 1], vi.values)
    # the expected update is a fixed point at the optimum (to theta's precision)
    np.testing.assert_allclose(jnp.max(action_values(table, vi.values), -1), vi.values, atol=1e-3)


def test_policy_evaluation_counts_steps_and_truncates_a_policy_that_never_ends():
    env = track(CORRIDOR)
    start = env.state_index(3, 0, 0, 0)
    up = np.full(env.num_states, 7)  # speed up vertically, everywhere
    assert -float(policy_evaluation(env.table, up)[start]) == pytest.approx(1.99 / 0.9, 1e-5)
    stay = np.full(env.num_states, 4)  # no increments: at rest on the start line for ever
    assert -float(policy_evaluation(env.table, stay, sweeps=37)[start]) == pytest.approx(37)


def test_restrict_keeps_the_dynamics_of_a_closed_set_and_rejects_others():
    env = track()
    table, index = restrict(env.table, env.reachable())
    s, a = 5, 3
    original = env.table.next_obs[index[s], a][table.prob[s, a] > 0]
    np.testing.assert_array_equal(index[table.next_obs[s, a][table.prob[s, a] > 0]], original)
    just_starts = np.zeros(env.num_states, bool)
    just_starts[env.start_states] = True
    with pytest.raises(ValueError, match="not closed"):
        restrict(env.table, just_starts)


def test_table_model_gives_the_rows_of_the_table():
    env = track()
    model = table_model(env.table)
    dist = model.sample(model.init(jax.random.key(0)), jnp.int32(7), jnp.int32(4), None)
    for got, want in zip(dist[2:], env.table[2:], strict=True):
        np.testing.assert_array_equal(np.asarray(got), want[7, 4])


# --- RTDP -----------------------------------------------------------------------------------


def test_rtdp_reaches_the_dp_optimum_with_fewer_updates_leaving_states_never_updated():
    result = true_model_results()
    table, index, _, vi = problem()
    assert result.converged.all()
    final = result.history_metric[np.arange(RUNS), np.sum(~np.isnan(result.history_metric), 1) - 1]
    np.testing.assert_allclose(final, optimum(), atol=1e-3)
    assert result.updates.mean() < int(vi.updates)
    never = (result.update_counts[:, index] == 0).sum(1)
    assert never.mean() >= 1  # some reachable states are never updated
    assert np.all(result.update_counts.sum(1) == result.updates)  # one update per step
    assert np.all(
        result.update_counts[:, np.setdiff1d(np.arange(len(result.values[0])), index)] == 0
    )  # nothing unreachable is ever visited


def test_rtdp_same_key_same_result():
    again = mapped_runs()(seeds(RUNS))
    for a, b in zip(jax.tree.leaves(again), jax.tree.leaves(true_model_results()), strict=True):
        np.testing.assert_array_equal(np.asarray(a), b)


@pytest.mark.slow
def test_rtdp_vmapped_equals_looped():
    run = rtdp_runs()
    vmapped = jax.jit(jax.vmap(run))(seeds(RUNS))
    looped = true_model_results()
    for a, b in zip(jax.tree.leaves(vmapped), jax.tree.leaves(looped), strict=True):
        np.testing.assert_array_equal(np.asarray(a), b)


@pytest.mark.slow
def test_rtdp_learns_with_the_count_model():
    # noise 0: a move's outcome is seen on its first try (a crash's start cell is random),
    # the untried pairs' optimism (same state, reward 0) and epsilon drive RTDP to try them
    run = rtdp_runs("count", noise=0.0, epsilon=0.1)
    result = jax.jit(lambda k: jax.lax.map(run, k))(seeds(4))
    check_outcome_overflow(result.model_state)
    assert np.asarray(result.converged).all()


def test_rtdp_rejects_bad_input():
    env = track()
    model = table_model(env.table)
    with pytest.raises(ValueError, match="check_every"):
        rtdp(env, env.default_params, model, jnp.sum, target=1.0, check_every=0)
    with pytest.raises(ValueError, match="epsilon"):
        rtdp(env, env.default_params, model, jnp.sum, target=1.0, epsilon=2.0)
    with pytest.raises(ValueError, match="give states .* or order"):
        value_iteration(env.table, states=env.reachable(), order=np.arange(3))
    with pytest.raises(ValueError, match="integer states"):
        rtdp(BoxObservations(), None, model, jnp.sum, target=1.0)


class BoxObservations:
    """An environment with continuous observations: not for a tabular method."""

    def action_space(self, params=None):
        return spaces.Discrete(9)

    def observation_space(self, params=None):
        return spaces.Box(0.0, 1.0, (2,))


@pytest.mark.slow
def test_example_8_6_at_two_runs_shows_what_the_book_shows():
    from experiments import racetrack_rtdp

    result = racetrack_rtdp.run(racetrack_rtdp.Config(runs=2), progress=False)
    table = result["table"]
    dp, rt = table[racetrack_rtdp.DP], table[racetrack_rtdp.RTDP]
    assert rt["runs converged"][0] == 2
    assert rt["updates to convergence"][0] < 0.7 * dp["updates to convergence"][0]
    assert dp["final greedy episode length"][0] == pytest.approx(result["optimum"])
    assert abs(rt["final greedy episode length"][0] - result["optimum"]) <= 0.1
    assert rt["% of states updated 0 times"][0] > 0  # some states never updated
    assert rt["% of states updated <= 10 times"][0] > 50  # most updated rarely
    assert set(result["curves"]) == {racetrack_rtdp.DP, racetrack_rtdp.IN_PLACE, "RTDP"}
    assert "updates to convergence" in racetrack_rtdp.summary(result)

"""The racetrack of Exercise 5.12: layout, rules, distribution model (tiny tracks mostly)."""

from __future__ import annotations

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mbrl_jax.envs import RACETRACK_LEFT, Racetrack, RacetrackState, racetrack_distribution
from mbrl_jax.envs.racetrack import parse_track

# Rows top to bottom; the car moves up (row - vertical) and right (col + horizontal).
CORRIDOR = "F\n.\n.\nS"  # one column: the finish line 3 rows above the start cell
# A crash to the right of the start line, a move up, and a finish at the top right.
TINY = """
..F
..F
SS#
"""


@functools.cache
def env(layout: str = TINY, max_speed: int = 2, noise: float = 0.1) -> Racetrack:
    return Racetrack(layout, max_speed=max_speed, noise=noise)


def up_right(vertical: int, horizontal: int) -> int:
    """The action of these increments (each -1, 0 or +1)."""
    return 3 * (vertical + 1) + horizontal + 1


@functools.cache
def jitted_steps(track: Racetrack):
    """Many steps of one (state, action), one per key, vmapped."""

    def steps(keys, state, action):
        start = RacetrackState(pos=state, time=jnp.int32(0))
        return jax.vmap(lambda k: track.step(k, start, action)[:4])(keys)

    return jax.jit(steps)


def step_many(track: Racetrack, state: int, action: int, seed: int = 0, count: int = 4000):
    """``count`` steps of ``action`` from ``state``: (obs, reward, terminated)."""
    keys = jax.random.split(jax.random.key(seed), count)
    obs, _, reward, terminated = jitted_steps(track)(keys, jnp.int32(state), jnp.int32(action))
    return np.asarray(obs), np.asarray(reward), np.asarray(terminated)


def test_left_track_of_figure_5_5():
    grid = parse_track(RACETRACK_LEFT)
    assert grid.shape == (32, 17)
    assert {c: int((grid == c).sum()) for c in "#.SF"} == {"#": 246, ".": 286, "S": 6, "F": 6}
    assert list(np.flatnonzero(grid[31] == "S")) == [3, 4, 5, 6, 7, 8]
    assert list(np.flatnonzero(grid[:, 16] == "F")) == [0, 1, 2, 3, 4, 5]
    left = Racetrack()
    assert left.num_states == (286 + 6) * 25  # track cells off the finish line x velocities
    # an independent enumeration (a plain-Python search over (row, col, v, h)) gives 2360
    assert left.reachable().sum() == 2360


def test_states_decode_and_start_states_have_zero_velocity():
    track = env()
    for s in range(track.num_states):
        assert track.state_index(*track.decode(s)) == s
    for s in track.start_states:
        row, col, v, h = track.decode(s)
        assert track.grid[row, col] == "S" and v == h == 0


def test_velocity_stays_in_bounds_and_is_never_zero_off_the_start_line():
    track = env(RACETRACK_LEFT, 4)
    reachable = track.reachable()
    table = track.table
    live = (table.prob > 0) & ~table.done & reachable[:, None, None]
    assert set(np.unique(table.next_obs[live])) == set(np.flatnonzero(reachable))
    for s in np.flatnonzero(reachable):
        row, col, v, h = track.decode(s)
        assert 0 <= v <= 4 and 0 <= h <= 4
        assert (v, h) != (0, 0) or track.grid[row, col] == "S"


def test_increments_as_the_exercise_says():
    track = env(CORRIDOR)
    s = track.state_index(2, 0, 1, 0)
    # speed up: vertical 2 from row 2 crosses the finish line in row 0
    assert track.outcome[s, up_right(1, 0), 0] < 0 and track.table.done[s, up_right(1, 0), 0]
    # slowing down to zero off the start line is not allowed: the velocity stays (1, 0)
    assert track.outcome[s, up_right(-1, 0), 0] == track.state_index(1, 0, 1, 0)
    # with the increments zeroed the velocity stays as well
    assert track.outcome[s, up_right(1, 0), 1] == track.state_index(1, 0, 1, 0)
    # at the speed limit, speeding up keeps the limit
    fast = Racetrack("F\n.\n.\n.\n.\n.\nS", max_speed=2)
    s = fast.state_index(4, 0, 2, 0)
    assert fast.outcome[s, up_right(1, 0), 0] == fast.state_index(2, 0, 2, 0)
    # on the start line both components may be zero: the car stays where it is
    start = track.state_index(3, 0, 0, 0)
    assert track.outcome[start, up_right(0, 0), 0] == start


def test_distribution_probabilities_sum_to_one_and_show_the_noise():
    track = env(RACETRACK_LEFT, 4)
    prob = track.table.prob
    np.testing.assert_allclose(prob.sum(-1), 1.0, atol=1e-6)
    half = len(track.start_states)
    np.testing.assert_allclose(prob[..., :half].sum(-1), 0.9, atol=1e-6)  # increments applied
    np.testing.assert_allclose(prob[..., half:].sum(-1), 0.1, atol=1e-6)  # increments zeroed
    assert np.all(track.table.reward == -1.0)


def test_table_is_racetrack_distribution_of_every_pair():
    track = env()
    everything = jax.jit(
        jax.vmap(jax.vmap(racetrack_distribution, (None, None, 0)), (None, 0, None))
    )(track.default_params, jnp.arange(track.num_states), jnp.arange(9))
    for got, want in zip(everything, track.table, strict=True):
        np.testing.assert_array_equal(np.asarray(got), want)


def test_crash_sends_the_car_to_a_random_start_cell_with_velocity_zero():
    track = env()
    at_rest = track.state_index(2, 0, 0, 0)  # on the start line
    right = up_right(0, 1)
    moving = track.state_index(2, 1, 0, 1)  # one cell right, still on the start line
    assert track.outcome[at_rest, right, 0] == moving
    assert np.all(track.outcome[moving, right] == -1)  # on to the '#': a crash either way
    np.testing.assert_allclose(track.table.prob[moving, right], [0.45, 0.45, 0.05, 0.05])
    assert set(track.table.next_obs[moving, right]) == set(track.start_states)
    obs, reward, terminated = step_many(track, moving, right)
    assert set(obs) == set(track.start_states) and not terminated.any()
    assert np.all(reward == -1.0)
    assert abs(np.mean(obs == track.start_states[0]) - 0.5) < 0.05


def test_crossing_the_finish_line_terminates_and_resets():
    track = env(CORRIDOR)
    s = track.state_index(1, 0, 1, 0)
    obs, reward, terminated = step_many(track, s, up_right(0, 0))
    assert terminated.all() and np.all(reward == -1.0)
    assert set(obs) == set(track.start_states)  # auto-reset to a start cell, velocity 0


def test_model_matches_the_sampled_frequencies():
    track = env(CORRIDOR)
    s = track.state_index(2, 0, 1, 0)
    action = up_right(1, 0)  # applied: finish (0.9); zeroed: on to row 1 (0.1)
    obs, _, terminated = step_many(track, s, action, seed=1)
    p_finish = track.table.prob[s, action][track.table.done[s, action]].sum()
    assert p_finish == pytest.approx(0.9)
    se = np.sqrt(0.9 * 0.1 / len(obs))
    assert abs(terminated.mean() - 0.9) < 4 * se
    assert np.all(obs[~terminated] == track.state_index(1, 0, 1, 0))


def test_mixed_outcome_frequencies_match_the_model():
    track = env()
    moving = track.state_index(2, 1, 0, 1)
    action = up_right(1, -1)  # applied: up to (1, 1); zeroed: right into the '#', a crash
    assert track.outcome[moving, action, 0] == track.state_index(1, 1, 1, 0)
    obs, _, _ = step_many(track, moving, action, seed=2)
    dist = track.table
    for outcome in np.unique(dist.next_obs[moving, action]):
        p = dist.prob[moving, action][dist.next_obs[moving, action] == outcome].sum()
        assert abs(np.mean(obs == outcome) - p) < 4 * np.sqrt(p * (1 - p) / len(obs)) + 1e-9
    assert set(obs) == set(dist.next_obs[moving, action][dist.prob[moving, action] > 0])


def test_reset_draws_a_start_cell_uniformly():
    track = env()
    keys = jax.random.split(jax.random.key(3), 4000)
    obs, _ = jax.jit(jax.vmap(track.reset))(keys)
    for start in track.start_states:
        assert abs(np.mean(np.asarray(obs) == start) - 0.5) < 0.04


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ("...F\n....", "no start cell 'S'"),
        ("...S\n....", "no finish cell 'F'"),
        ("..xF\n..S.", "unknown characters ['x']; allowed are '#'"),
        ("..F\n.S", "same width"),
        ("  \n", "empty"),
    ],
)
def test_bad_layouts_are_clear_errors(layout, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Racetrack(layout)


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match="max_speed"):
        Racetrack(TINY, max_speed=0)
    with pytest.raises(ValueError, match="noise"):
        Racetrack(TINY, noise=1.5)
    with pytest.raises(ValueError, match="not a track cell"):
        env().state_index(0, 2, 0, 0)

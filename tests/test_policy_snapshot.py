"""Figure 8.3 (experiments/policy_snapshot.py): the greedy policies halfway through
episode 2, and the spread of values that planning makes, against independent
expectations worked out by hand from the maze and Q-learning's update."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest

from experiments import policy_snapshot as ps
from mbrl_jax.agents import dyna_q, prioritized_sweeping
from mbrl_jax.cli import main
from mbrl_jax.envs import dyna_maze
from tests.conftest import seeds

RUNS = 8  # seeds 0..7; their first episodes end by step 2266, seed 0's second (n = 0) by 1214
NUM_STEPS = 3000
OPEN_CELLS = 47
MOVES = {0: (-1, 0), 1: (1, 0), 2: (0, -1), 3: (0, 1)}  # up, down, left, right


@functools.cache
def traces(label: str) -> ps.Trace:
    """Seeds 0..7 of one method, with Q kept after episode 1 and halfway through episode 2."""
    env = dyna_maze()
    if label == "prioritized sweeping":  # the experiment's settings for it
        agent = prioritized_sweeping(
            env.num_states, env.num_actions, planning_steps=5, alpha=1.0, theta=1e-6
        )
    else:  # the library's defaults are the book's: alpha 0.1, epsilon 0.1, gamma 0.95
        agent = dyna_q(env.num_states, env.num_actions, planning_steps=int(label[2:]))
    trace, _ = ps.trace_with_snapshots(ps.trace_run(env, agent, NUM_STEPS), seeds(RUNS))
    return trace


def ends(label: str) -> np.ndarray:
    found = ps.episode_ends(np.asarray(traces(label).log.episodes), 2)
    assert (found[:, 0] > 0).all(), "every test run must have finished episode 1"
    return found


def step_into(layout: list[str], cell: int, action: int) -> int:
    """The maze's move, from the layout alone: walls and edges leave the agent in place."""
    width = len(layout[0])
    row, col = divmod(cell, width)
    r, c = row + MOVES[action][0], col + MOVES[action][1]
    inside = 0 <= r < len(layout) and 0 <= c < width
    return r * width + c if inside and layout[r][c] != "#" else cell


def test_after_episode_1_only_the_state_before_the_goal_has_a_value():
    """Q-learning from Q = 0 with reward only on reaching G: the first non-zero value
    is alpha * 1 = 0.1, for the move into G; every other target is 0 + gamma * 0."""
    layout = ["".join(row) for row in dyna_maze().grids[0]]
    cells = "".join(layout)
    before = [
        (s, a)
        for s, c in enumerate(cells)
        if c not in "#G"
        for a in MOVES
        if step_into(layout, s, a) == cells.index("G")
    ]
    assert before == [(17, 0)]  # the cell below G, moving up ((0, 7) is a wall)
    q = np.asarray(traces("n=0").snapshots[:, 0])  # (runs, states, actions) after episode 1
    for run in q:
        nonzero = np.argwhere(run != 0)
        assert nonzero.tolist() == [[17, 0]]
        assert run[17, 0] == np.float32(0.1)
    # The count of valued states first turns 1 at exactly the step that ended episode 1.
    valued = np.asarray(traces("n=0").log.valued)
    first_valued = (valued == 0).sum(axis=1) + 1
    np.testing.assert_array_equal(first_valued, ends("n=0")[:, 0])


def test_episode_1_is_the_same_random_walk_for_every_n():
    np.testing.assert_array_equal(ends("n=0")[:, 0], ends("n=50")[:, 0])


def test_halfway_through_episode_2_planning_has_spread_values_over_most_of_the_maze():
    assert (ends("n=0")[:, 1] > 0).sum() >= RUNS - 1  # n = 0's second episode may be long
    arrows = {}
    for label in ("n=0", "n=50"):
        finished = ends(label)[:, 1] > 0
        halfway = np.asarray(traces(label).snapshots[:, 1])[finished]
        arrows[label] = [sum(bool(a) for a in ps.arrows(q)) for q in halfway]
    assert max(arrows["n=0"]) <= 3  # without planning, values move one step per visit
    assert arrows["n=50"][0] > OPEN_CELLS / 2  # the snapshot run, seed 0
    assert np.mean(arrows["n=50"]) > OPEN_CELLS / 2
    assert min(arrows["n=50"]) > 3 * max(arrows["n=0"])


def test_every_arrow_leads_to_a_state_with_a_value_or_the_goal():
    """Rewards are >= 0 and Q starts at 0, so a maximal action with Q > 0 was backed
    up from a next state that already had a value (values never return to 0)."""
    layout = ["".join(row) for row in dyna_maze().grids[0]]
    goal = "".join(layout).index("G")
    for q in np.asarray(traces("n=50").snapshots[:, 1]):
        valued = set(np.flatnonzero(np.any(q != 0, axis=1)).tolist()) | {goal}
        for cell, actions in enumerate(ps.arrows(q)):
            for action in actions:
                assert q[cell, action] > 0
                assert step_into(layout, cell, action) in valued


def test_arrows_are_the_maximal_actions_and_none_when_all_are_equal():
    q = np.array(
        [[0, 0, 0, 0], [0, 0.1, 0.1, 0], [0, 0, 0, -0.1], [0.3, 0.2, 0.1, 0], [2, 2, 2, 2]]
    )
    assert ps.arrows(q) == [[], [1, 2], [0, 1, 2], [0], []]


def test_counts_on_an_update_grid_interpolate_between_logged_steps():
    updates = np.array([0, 0, 5, 10])  # after steps 1..4: no updates, then 5, then 5 more
    valued = np.array([0, 0, 2, 3])
    grid = np.array([0, 2.5, 5, 7.5, 10, 11])
    np.testing.assert_allclose(ps.on_update_grid(updates, valued, grid), [0, 1, 2, 2.5, 3, np.nan])


@pytest.mark.slow
def test_more_planning_gives_more_states_a_value_after_episode_1():
    """At 20, 50 and 100 time steps after each run's first episode (the same walk for
    every n), the mean count orders n = 50 > n = 5 > n = 0."""
    first_end = ends("n=0")[:, 0]
    for k in (20, 50, 100):
        at = first_end + k - 1  # index of time step end + k
        mean = {
            label: np.take_along_axis(np.asarray(traces(label).log.valued), at[:, None], 1).mean()
            for label in ("n=0", "n=5", "n=50")
        }
        assert mean["n=50"] > mean["n=5"] > mean["n=0"], (k, mean)


@pytest.mark.slow
def test_prioritized_sweeping_gives_values_with_the_fewest_updates():
    grid = np.array([50.0, 100.0])
    mean = {}
    for label in ("n=0", "n=5", "n=50", "prioritized sweeping"):
        log = traces(label).log
        per_run = [
            ps.on_update_grid(u, v, grid)
            for u, v in zip(np.asarray(log.updates), np.asarray(log.valued), strict=True)
        ]
        mean[label] = np.mean(per_run, axis=0)  # NaN if a run made fewer updates
    assert np.isfinite(mean["prioritized sweeping"]).all()
    for label in ("n=0", "n=5", "n=50"):
        assert (mean["prioritized sweeping"] > mean[label] + 10).all(), (label, mean)


@pytest.mark.slow
def test_cli_writes_the_figure_and_redraws_it_from_result_json(tmp_path):
    out = tmp_path / "ps"
    assert main(["run", "policy-snapshot", "--runs", "3", "--out", str(out), "--no-progress"]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["seeds"] == [0, 1, 2] and set(result["policies"]) == {"n=0", "n=50"}
    labels = {"n=0", "n=5", "n=50", "prioritized sweeping"}
    assert set(result["curves"]) == labels | {label + ps.UPDATES for label in labels}
    n0 = result["policies"]["n=0"]
    assert np.asarray(n0["q"]).shape == (54, 4) and n0["states_with_arrows"] == 1
    assert n0["step"] == n0["episode_1_length"] + n0["episode_2_length"] // 2
    assert result["policies"]["n=50"]["episode_1_length"] == n0["episode_1_length"]
    png = out / "policy-snapshot.png"
    assert png.read_bytes()[:4] == b"\x89PNG"
    png.unlink()
    assert main(["plot", str(out / "result.json")]) == 0  # from result.json alone
    assert png.read_bytes()[:4] == b"\x89PNG"

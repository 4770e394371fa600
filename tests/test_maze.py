"""The book's mazes: layout, dynamics, auto-reset, layout changes inside jit, bad input."""

from collections import deque

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments.environment import Environment

from mbrl_jax.envs import Maze, blocking_maze, make, parse_layout, scale_layout, shortcut_maze
from mbrl_jax.envs.maze import DYNA_MAZE

UP, DOWN, LEFT, RIGHT = range(4)


def bfs_steps(env: Maze, params, layout: int = 0) -> tuple[int, int]:
    """(reachable cells, shortest path to a goal), by BFS through env.transition itself."""
    start = env.start_cell(layout)
    dist, queue, best = {start: 0}, deque([start]), None
    while queue:
        cell = queue.popleft()
        for action in range(4):
            nxt, reward, done = env.transition(jnp.int32(cell), action, params, layout)
            nxt = int(nxt)
            if bool(done) and best is None:
                best = dist[cell] + 1
            if nxt not in dist:
                dist[nxt] = dist[cell] + 1
                queue.append(nxt)
    return len(dist), best


def test_dyna_maze_has_47_open_cells_and_shortest_path_14(maze):
    params = maze.default_params
    assert (maze.height, maze.width) == (6, 9)
    assert len(maze.open_cells()) == 47
    reachable, shortest = bfs_steps(maze, params)
    assert reachable == 47
    assert shortest == 14
    assert maze.start_cell() == 2 * 9 + 0
    assert bool(params.goals[0, 0 * 9 + 8])
    for r, c in [(1, 2), (2, 2), (3, 2), (0, 7), (1, 7), (2, 7), (4, 5)]:
        assert bool(params.walls[0, r * 9 + c])


def test_is_a_gymnax_environment_with_terminated_and_truncated(maze):
    assert isinstance(maze, Environment)
    assert maze.action_space().n == 4 and maze.observation_space().n == 54
    params = maze.default_params
    obs, state = maze.reset(jax.random.key(0), params)
    assert int(obs) == 18
    near_goal = state.replace(pos=jnp.int32(1 * 9 + 8))
    obs, new_state, reward, terminated, truncated, info = maze.step(
        jax.random.key(1), near_goal, UP, params
    )
    assert float(reward) == 1.0 and bool(terminated) and not bool(truncated)
    assert int(info["final_observation"]) == 8  # the goal cell
    assert int(obs) == 18 and int(new_state.pos) == 18  # back at the start
    assert int(new_state.total_steps) == 1  # the global clock survives the reset


def test_walls_and_edges_block_moves(maze):
    params = maze.default_params
    start = jnp.int32(18)
    assert int(maze.transition(start, LEFT, params)[0]) == 18  # grid edge
    assert int(maze.transition(jnp.int32(19), RIGHT, params)[0]) == 19  # wall at (2, 2)
    assert int(maze.transition(start, UP, params)[0]) == 9


def test_truncation_keeps_bootstrapping_information(maze):
    params = maze.default_params.replace(max_steps_in_episode=3)
    _, state = maze.reset(jax.random.key(0), params)
    for _ in range(3):
        _, state, reward, terminated, truncated, _ = maze.step(
            jax.random.key(0), state, LEFT, params
        )
    assert bool(truncated) and not bool(terminated)


@pytest.mark.parametrize(
    ("make_env", "change", "cell", "action", "open_before"),
    [
        (blocking_maze, 1000, 4 * 9 + 8, UP, True),  # right gap closes
        (shortcut_maze, 3000, 4 * 9 + 8, UP, False),  # right gap opens
    ],
)
def test_layout_changes_at_the_global_step_inside_jit(make_env, change, cell, action, open_before):
    env = make_env()
    params = env.default_params
    _, state = env.reset(jax.random.key(0), params)
    step = jax.jit(env.step)

    def moves_through(total_steps: int) -> bool:
        s = state.replace(pos=jnp.int32(cell), total_steps=jnp.int32(total_steps))
        obs = step(jax.random.key(0), s, action, params)[0]
        return int(obs) == cell - 9

    assert moves_through(change - 1) == open_before
    assert moves_through(change) == (not open_before)


def test_scale_layout_multiplies_cells_and_keeps_one_start_and_goal():
    for factor in (1, 2, 3):
        env = Maze([scale_layout(DYNA_MAZE, factor)])
        assert len(env.open_cells()) == 47 * factor**2
        grid = env.grids[0]
        assert (grid == "S").sum() == 1 and (grid == "G").sum() == 1
        assert grid.shape == (6 * factor, 9 * factor)
    with pytest.raises(ValueError, match="factor"):
        scale_layout(DYNA_MAZE, 0)


def test_scale_layout_by_rows_and_columns_doubles_the_states_of_example_8_4():
    sizes = [len(Maze([scale_layout(DYNA_MAZE, f)]).open_cells()) for f in [(1, 2), (2, 2), (2, 4)]]
    assert sizes == [94, 188, 376]
    assert Maze([scale_layout(DYNA_MAZE, (2, 4))]).grids[0].shape == (12, 36)
    with pytest.raises(ValueError, match=r"factor must be .* got \(2, 0\)"):
        scale_layout(DYNA_MAZE, (2, 0))


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ("..G\n...", "exactly one start"),
        ("S..\n...", "no goal"),
        ("S.x\n..G", "unknown characters"),
        ("S..\n..G.", "same width"),
        ("", "empty"),
    ],
)
def test_bad_layouts_get_clear_errors(layout, message):
    with pytest.raises(ValueError, match=message):
        parse_layout(layout)


def test_unknown_environment_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown environment 'no-such-maze'.*dyna-maze"):
        make("no-such-maze")
    env, params = make("CartPole-v1")
    assert env.num_actions == 2


def test_layout_change_steps_must_match_layouts():
    from mbrl_jax.envs.maze import BLOCKING_MAZE_AFTER, BLOCKING_MAZE_BEFORE

    with pytest.raises(ValueError, match="one change step per layout"):
        Maze([BLOCKING_MAZE_BEFORE, BLOCKING_MAZE_AFTER], [])
    assert np.array_equal(blocking_maze(change_step=7).default_params.change_steps, [7])

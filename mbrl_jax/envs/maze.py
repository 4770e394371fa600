"""The book's gridworld mazes as gymnax environments, built from ASCII layouts.

Layout characters: ``.`` open, ``#`` wall, ``S`` start (exactly one), ``G`` goal
(one or more). Actions: 0 up, 1 down, 2 left, 3 right; a move into a wall or off
the grid leaves the agent in place. Reward +1 on reaching a goal, 0 otherwise;
reaching a goal *terminates* the episode and the agent is back at the start
(gymnax auto-reset). Observations are integer cell indices ``row * width + col``.

An action must be an integer in [0, 4) (and a cell given to :meth:`Maze.transition`
one in [0, height * width)): another dtype is a TypeError at once, a concrete value
out of range a ValueError (:func:`~mbrl_jax.types.check_index`). Inside jit it cannot
raise (it does under :func:`mbrl_jax.train.checked`); the rule then is: the agent
stays where it is, the reward is NaN and the episode does not terminate.

A maze may change its layout at given *global* time steps (Examples 8.2 and 8.3):
the environment state carries a step counter that survives episode resets, and
the current wall map is selected from a stacked array inside jit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from mbrl_jax.types import check_index

_ALLOWED = set(".#SG")
# (d_row, d_col) for up, down, left, right
_MOVES = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]], np.int32)


@struct.dataclass
class MazeState(environment.EnvState):
    pos: jax.Array  # () int32 cell index
    time: jax.Array  # () int32 steps in the current episode
    total_steps: jax.Array  # () int32 steps since the first reset (not reset by episodes)


@struct.dataclass
class MazeParams:
    walls: jax.Array  # (num_layouts, H * W) bool
    goals: jax.Array  # (num_layouts, H * W) bool
    start: jax.Array  # (num_layouts,) int32
    change_steps: jax.Array  # (num_layouts - 1,) int32, global steps at which layouts switch
    max_steps_in_episode: int = 2**31 - 1


def _character_grid(layout: str | Sequence[str], what: str) -> np.ndarray:
    """The rows of an ASCII layout (a string or a sequence of rows, blank lines and
    surrounding spaces dropped) as a 2-D array of characters; a clear error, naming
    ``what`` the layout is of, when it is empty or its rows differ in width."""
    rows = layout.strip().splitlines() if isinstance(layout, str) else list(layout)
    rows = [row.strip() for row in rows if row.strip()]
    if not rows:
        raise ValueError(f"{what} layout is empty")
    widths = {len(row) for row in rows}
    if len(widths) != 1:
        raise ValueError(
            f"{what} layout rows must all have the same width, got widths {sorted(widths)}"
        )
    return np.array([list(row) for row in rows])


def parse_layout(layout: str | Sequence[str]) -> np.ndarray:
    """An ASCII layout as a 2-D array of characters, with a clear error for bad input."""
    grid = _character_grid(layout, "maze")
    unknown = sorted(set(grid.ravel()) - _ALLOWED)
    if unknown:
        raise ValueError(
            f"maze layout has unknown characters {unknown}; allowed are '.', '#', 'S', 'G'"
        )
    starts = int((grid == "S").sum())
    if starts != 1:
        raise ValueError(f"maze layout must have exactly one start 'S', found {starts}")
    if not (grid == "G").any():
        raise ValueError("maze layout has no goal 'G'")
    return grid


def scale_layout(layout: str | Sequence[str], factor: int | tuple[int, int]) -> str:
    """The same maze at a finer resolution: each cell becomes a block of
    ``factor`` x ``factor`` cells, or ``rows`` x ``cols`` cells for
    ``factor=(rows, cols)`` (Example 8.4 doubles one side at a time). Start and
    goal stay single cells, at the top-left corner of their blocks; the rest of
    those blocks is open.
    """
    rows, cols = (factor, factor) if not isinstance(factor, tuple) else factor
    for f in (rows, cols):
        if isinstance(f, bool) or not isinstance(f, int) or f < 1:
            raise ValueError(f"factor must be an integer >= 1 or a pair of them, got {factor!r}")
    grid = parse_layout(layout)
    block = np.where(np.isin(grid, ["S", "G"]), ".", grid)
    big = np.repeat(np.repeat(block, rows, axis=0), cols, axis=1)
    for mark in "SG":
        for r, c in zip(*np.nonzero(grid == mark), strict=True):
            big[r * rows, c * cols] = mark
    return "\n".join("".join(row) for row in big)


class _Walk(NamedTuple):
    """The carry of a greedy walk through the maze."""

    pos: jax.Array  # () int32 cell
    steps: jax.Array  # () int32 steps taken
    reached: jax.Array  # () bool: a goal was reached


class Maze(environment.Environment[MazeState, MazeParams]):
    """A gridworld maze whose layout may change at given global time steps."""

    def __init__(self, layouts: Sequence[str | Sequence[str]], change_steps: Sequence[int] = ()):
        if isinstance(layouts, str):
            layouts = [layouts]
        grids = [parse_layout(layout) for layout in layouts]
        if len({g.shape for g in grids}) != 1:
            raise ValueError(
                f"all layouts must have the same shape, got {[g.shape for g in grids]}"
            )
        if len(change_steps) != len(grids) - 1:
            raise ValueError(
                f"need one change step per layout after the first: {len(grids)} layouts, "
                f"change_steps={list(change_steps)}"
            )
        for s in change_steps:
            if isinstance(s, bool) or not isinstance(s, int | np.integer) or not 0 <= s < 2**31:
                raise ValueError(
                    f"each change step must be an integer (a global step) in [0, 2**31 - 1], "
                    f"got {s!r} ({type(s).__name__}) in change_steps={list(change_steps)}"
                )
        if any(b <= a for a, b in zip(change_steps, change_steps[1:], strict=False)):
            raise ValueError(f"change_steps must be increasing and >= 0, got {list(change_steps)}")
        self.grids = grids
        self.height, self.width = grids[0].shape
        self.change_steps = tuple(int(s) for s in change_steps)

    # --- gymnax interface -------------------------------------------------
    @property
    def default_params(self) -> MazeParams:
        return MazeParams(
            walls=jnp.asarray(np.stack([(g == "#").ravel() for g in self.grids])),
            goals=jnp.asarray(np.stack([(g == "G").ravel() for g in self.grids])),
            start=jnp.asarray([int(np.flatnonzero(g.ravel() == "S")[0]) for g in self.grids]),
            change_steps=jnp.asarray(self.change_steps, jnp.int32),
        )

    @property
    def name(self) -> str:
        return "Maze"

    @property
    def num_actions(self) -> int:
        return 4

    @property
    def num_states(self) -> int:
        """Number of cells (walls included): the size of a tabular value function."""
        return self.height * self.width

    def action_space(self, params: MazeParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(4)

    def observation_space(self, params: MazeParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(self.num_states)

    def layout_index(self, total_steps: jax.Array, params: MazeParams) -> jax.Array:
        """Which layout is active after ``total_steps`` global steps."""
        return jnp.sum(total_steps >= params.change_steps).astype(jnp.int32)

    def transition(self, pos, action, params: MazeParams, layout=0):
        """Deterministic dynamics of one layout: ``(next_pos, reward, reached_goal)``.

        ``pos`` is a cell in [0, height * width), ``action`` an integer in [0, 4); see
        the module docstring for the rule on others (stay, reward NaN)."""
        valid = check_index("Maze", "action", action, 4) & check_index(
            "Maze", "cell", pos, self.num_states
        )
        pos = jnp.asarray(pos)
        here = jnp.clip(pos, 0, self.num_states - 1)
        row, col = here // self.width, here % self.width
        move = jnp.asarray(_MOVES)[jnp.clip(action, 0, 3)]
        new_row = jnp.clip(row + move[0], 0, self.height - 1)
        new_col = jnp.clip(col + move[1], 0, self.width - 1)
        target = new_row * self.width + new_col
        moved = jnp.where(params.walls[layout, target], here, target)
        reached = params.goals[layout, moved] & valid
        next_pos = jnp.where(valid, moved, pos).astype(jnp.int32)
        return next_pos, jnp.where(valid, reached.astype(jnp.float32), jnp.nan), reached

    def step_env(self, key, state: MazeState, action, params: MazeParams):
        del key
        layout = self.layout_index(state.total_steps, params)
        next_pos, reward, terminated = self.transition(state.pos, action, params, layout)
        new_state = MazeState(pos=next_pos, time=state.time + 1, total_steps=state.total_steps + 1)
        return next_pos, new_state, reward, terminated, {}

    def step(self, key, state: MazeState, action, params: MazeParams | None = None):
        """gymnax 1.0 step with auto-reset, keeping the global step count across resets.

        Returns ``(obs, state, reward, terminated, truncated, info)``; on a reset,
        ``info["final_observation"]`` is the cell that ended the episode.
        """
        if params is None:
            params = self.default_params
        obs_st, state_st, reward, terminated, info = self.step_env(key, state, action, params)
        truncated = self.is_truncated(state_st, params)
        done = terminated | truncated
        layout = self.layout_index(state_st.total_steps, params)
        start = params.start[layout]
        state = MazeState(
            pos=jnp.where(done, start, state_st.pos),
            time=jnp.where(done, 0, state_st.time),
            total_steps=state_st.total_steps,
        )
        info = {
            **info,
            "terminated": terminated,
            "truncated": truncated,
            "final_observation": obs_st,
        }
        return state.pos, state, reward, terminated, truncated, info

    def reset_env(self, key, params: MazeParams):
        del key
        start = params.start[0]
        return start, MazeState(
            pos=start, time=jnp.zeros((), jnp.int32), total_steps=jnp.zeros((), jnp.int32)
        )

    def is_terminated(self, state: MazeState, params: MazeParams) -> jax.Array:
        return params.goals[self.layout_index(state.total_steps, params), state.pos]

    def get_obs(self, state: MazeState, params=None, key=None) -> jax.Array:
        return state.pos

    # --- helpers for analysis and tests -------------------------------------
    def open_cells(self, layout: int = 0) -> np.ndarray:
        """Indices of the cells that are not walls."""
        return np.flatnonzero(self.grids[layout].ravel() != "#")

    def start_cell(self, layout: int = 0) -> int:
        return int(np.flatnonzero(self.grids[layout].ravel() == "S")[0])

    def greedy_path_length(
        self, q: jax.Array, params: MazeParams, max_steps: int, layout: int = 0
    ) -> jax.Array:
        """Steps the greedy policy of ``q`` (shape (num_states, 4); argmax, ties to
        the lowest action) takes from the start to a goal, or ``max_steps + 1`` when
        it has not arrived after ``max_steps`` steps (it loops or wanders). Jittable."""

        def walking(w: _Walk) -> jax.Array:
            return ~w.reached & (w.steps <= max_steps)

        def walk(w: _Walk) -> _Walk:
            pos, _, reached = self.transition(w.pos, jnp.argmax(q[w.pos]), params, layout)
            return _Walk(pos, w.steps + 1, reached)

        start = _Walk(params.start[layout], jnp.zeros((), jnp.int32), jnp.zeros((), bool))
        end = jax.lax.while_loop(walking, walk, start)
        return jnp.where(end.reached, jnp.minimum(end.steps, max_steps + 1), max_steps + 1)

    def shortest_path_length(self, layout: int = 0) -> int:
        """Steps from start to the nearest goal by breadth-first search (NumPy, not jit)."""
        grid = self.grids[layout]
        start = self.start_cell(layout)
        frontier, dist = [start], {start: 0}
        while frontier:
            nxt = []
            for cell in frontier:
                r, c = divmod(cell, self.width)
                if grid[r, c] == "G":
                    return dist[cell]
                for dr, dc in _MOVES:
                    rr = min(max(r + dr, 0), self.height - 1)
                    cc = min(max(c + dc, 0), self.width - 1)
                    n = rr * self.width + cc
                    if grid[rr, cc] != "#" and n not in dist:
                        dist[n] = dist[cell] + 1
                        nxt.append(n)
            frontier = nxt
        raise ValueError("no path from start to goal")


DYNA_MAZE = """
.......#G
..#....#.
S.#....#.
..#......
.....#...
.........
"""

BLOCKING_MAZE_BEFORE = """
........G
.........
.........
########.
.........
...S.....
"""

BLOCKING_MAZE_AFTER = """
........G
.........
.........
.########
.........
...S.....
"""

SHORTCUT_MAZE_BEFORE = BLOCKING_MAZE_AFTER
SHORTCUT_MAZE_AFTER = """
........G
.........
.........
.#######.
.........
...S.....
"""


def dyna_maze(factor: int | tuple[int, int] = 1) -> Maze:
    """Example 8.1's 6x9 maze (47 open cells, shortest path 14), optionally at a
    finer resolution (Example 8.4; see :func:`scale_layout`)."""
    return Maze([scale_layout(DYNA_MAZE, factor)])


def blocking_maze(change_step: int = 1000) -> Maze:
    """Example 8.2: the short path on the right is blocked after ``change_step``
    global steps and a longer path opens on the left."""
    return Maze([BLOCKING_MAZE_BEFORE, BLOCKING_MAZE_AFTER], [change_step])


def shortcut_maze(change_step: int = 3000) -> Maze:
    """Example 8.3: a shortcut opens on the right after ``change_step`` global steps."""
    return Maze([SHORTCUT_MAZE_BEFORE, SHORTCUT_MAZE_AFTER], [change_step])


MAZES: dict[str, Any] = {
    "dyna-maze": dyna_maze,
    "blocking-maze": blocking_maze,
    "shortcut-maze": shortcut_maze,
}

"""The racetrack of S&B Exercise 5.12 as a gymnax environment, with its distribution model.

**Layout** (an ASCII grid, one character a cell): ``#`` off the track, ``.`` track,
``S`` start line, ``F`` finish line; ``S`` and ``F`` cells are on the track. Rows run
from the top (row 0) down, columns from the left. :data:`RACETRACK_LEFT` is the left
track of Figure 5.5: 32 rows x 17 columns, 298 track cells (286 ``.``, 6 ``S`` on the
bottom row, columns 3-8, 6 ``F`` in the rightmost column, rows 0-5) and 246 ``#``.

**State** (cell, velocity): the cell is a track cell that is not on the finish line
(292 of them on the left track), the velocity (vertical, horizontal) has each component
in 0..``max_speed`` (the book: 0..4; the car moves up and right). Observations are the
integer index ``cell * (max_speed + 1)**2 + vertical * (max_speed + 1) + horizontal``
(cells numbered row-major), so tabular learners work: 292 * 25 = 7300 indices on the
left track, of which 2360 are reachable from the start states (:meth:`Racetrack.reachable`).

**Actions**: 9, action ``a`` increments the vertical velocity by ``a // 3 - 1`` and the
horizontal one by ``a % 3 - 1``. A component pushed out of 0..max_speed stays at its
bound. An action that would make both components zero off the start line is not
allowed: the velocity is then left unchanged (so it is never zero off the start line;
indices with zero velocity off the start line exist but are never reached). With
probability ``noise`` (the book: 0.1) the increments are both zero whatever the action.
An action must be an integer in [0, 9) (and a state given to
:func:`racetrack_distribution` one in [0, num_states)): another dtype is a TypeError at
once, a concrete value out of range a ValueError (:func:`~mbrl_jax.types.check_index`).
Inside jit it cannot raise (it does under :func:`mbrl_jax.train.checked`); the rule
then is: the car stays where it is, the reward is NaN and the episode goes on.

**Move**: the car's projected path from (row, col) to (row - vertical, col + horizontal)
is checked at the n = max(vertical, horizontal) cells (row - round(vertical * i / n),
col + round(horizontal * i / n)), i = 1..n, rounded half up, in order: the first that is
on the finish line ends the episode (the path crossed it; ``terminated``); the first
that is off the track or off the grid is a crash: the car goes back to a start cell drawn
uniformly, with velocity 0, and the episode continues. Reward -1 on every step. With
zero velocity (on the start line) the car stays where it is.

:func:`racetrack_distribution` gives every outcome of (s, a) with its probability as a
:class:`~mbrl_jax.types.TransitionDistribution` (for expected updates), and
:attr:`Racetrack.table` the same for all (s, a) at once, as numpy (S, A, K) arrays made
at construction (for dynamic programming).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from mbrl_jax.envs.maze import _character_grid
from mbrl_jax.types import TransitionDistribution, check_index
from mbrl_jax.validation import check_count, check_in_range

_ALLOWED = "#.SF"
#: ``outcome`` codes of a move that does not end in a state of the track
CRASH, FINISH = -1, -2
NUM_ACTIONS = 9

RACETRACK_LEFT = """
###.............F
##..............F
##..............F
#...............F
................F
................F
..........#######
.........########
.........########
.........########
.........########
.........########
.........########
.........########
#........########
#........########
#........########
#........########
#........########
#........########
#........########
#........########
##.......########
##.......########
##.......########
##.......########
##.......########
##.......########
##.......########
###......########
###......########
###SSSSSS########
"""


@struct.dataclass
class RacetrackState(environment.EnvState):
    pos: jax.Array  # () int32 state index (cell, velocity)
    time: jax.Array  # () int32 steps in the current episode


@struct.dataclass
class RacetrackParams:
    """The dynamics as tables. S states, A = 9 actions, N start states."""

    outcome: jax.Array  # (S, A, 2) int32: next state with the increment applied / zeroed,
    #                     or CRASH / FINISH
    starts: jax.Array  # (N,) int32: the start states (start cells, velocity 0)
    noise: jax.Array  # () float32: probability that the increments are both zero
    max_steps_in_episode: int = struct.field(pytree_node=False, default=2**31 - 1)


def parse_track(layout: str | Sequence[str]) -> np.ndarray:
    """A racetrack layout as a 2-D array of characters, with a clear error for bad input:
    rows of unequal width, unknown characters, no start cell or no finish cell."""
    grid = _character_grid(layout, "racetrack")
    unknown = sorted(str(c) for c in set(grid.ravel()) - set(_ALLOWED))
    if unknown:
        raise ValueError(
            f"racetrack layout has unknown characters {unknown}; allowed are '#' (off the "
            f"track), '.' (track), 'S' (start line) and 'F' (finish line)"
        )
    if not (grid == "S").any():
        raise ValueError("racetrack layout has no start cell 'S'")
    if not (grid == "F").any():
        raise ValueError("racetrack layout has no finish cell 'F'")
    return grid


def _path_end(grid: np.ndarray, row: int, col: int, vertical: int, horizontal: int):
    """Where the move from (row, col) with this velocity ends: a (row, col), CRASH or
    FINISH (see the module docstring for the cells checked)."""
    n = max(vertical, horizontal)
    height, width = grid.shape
    for i in range(1, n + 1):
        r = row - int(np.floor(vertical * i / n + 0.5))
        c = col + int(np.floor(horizontal * i / n + 0.5))
        if not (0 <= r < height and 0 <= c < width) or grid[r, c] == "#":
            return CRASH
        if grid[r, c] == "F":
            return FINISH
    return row - vertical, col + horizontal


def _outcome_table(grid: np.ndarray, max_speed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(outcome (S, A, 2), starts (N,))`` of the layout, by enumeration (numpy)."""
    speeds = max_speed + 1
    cells = [(r, c) for r, c in zip(*np.nonzero(np.isin(grid, [".", "S"])), strict=True)]
    index = {cell: i for i, cell in enumerate(cells)}
    num_v = speeds * speeds
    # moves[cell, v]: the state index reached with velocity v, or CRASH / FINISH
    moves = np.empty((len(cells), num_v), np.int32)
    for i, (r, c) in enumerate(cells):
        for v in range(num_v):
            end = _path_end(grid, r, c, v // speeds, v % speeds)
            moves[i, v] = end if isinstance(end, int) else index[end] * num_v + v
    state = np.arange(len(cells) * num_v)
    cell, vertical, horizontal = state // num_v, (state % num_v) // speeds, state % speeds
    on_start = np.array([grid[r, c] == "S" for r, c in cells])[cell]
    action = np.arange(NUM_ACTIONS)
    new_v = np.clip(vertical[:, None] + action // 3 - 1, 0, max_speed)
    new_h = np.clip(horizontal[:, None] + action % 3 - 1, 0, max_speed)
    forbidden = (new_v == 0) & (new_h == 0) & ~on_start[:, None]  # zero velocity off the start
    applied = np.where(forbidden, (state % num_v)[:, None], new_v * speeds + new_h)
    zeroed = np.broadcast_to((state % num_v)[:, None], applied.shape)
    outcome = np.stack([moves[cell[:, None], applied], moves[cell[:, None], zeroed]], -1)
    starts = np.array([index[(r, c)] * num_v for r, c in cells if grid[r, c] == "S"], np.int32)
    return outcome.astype(np.int32), starts


def racetrack_distribution(params: RacetrackParams, obs, action) -> TransitionDistribution:
    """Every outcome of ``action`` in state ``obs`` with its probability, on a fixed
    outcome axis of K = 2 N slots (N start states): slots [0, N) the increment applied
    (probability 1 - noise in all), slots [N, 2N) the increments zeroed (probability
    noise). In each half, a move to a state is slot 0 with the half's whole
    probability (the other N - 1 slots have probability 0); a crash is N slots, start
    state j with an N-th of it each; crossing the finish line is slot 0 with ``done``
    True (its ``next_obs`` is ``obs``, a placeholder never bootstrapped from). Reward -1
    in every slot. ``obs`` is a state index, ``action`` in [0, 9); for others see the
    module docstring (inside jit: reward NaN in every slot)."""
    num_starts, num_states = params.starts.shape[0], params.outcome.shape[0]
    valid = check_index("racetrack_distribution", "obs", obs, num_states) & check_index(
        "racetrack_distribution", "action", action, NUM_ACTIONS
    )
    obs = jnp.clip(jnp.asarray(obs, jnp.int32), 0, num_states - 1)
    ends = params.outcome[obs, jnp.clip(action, 0, NUM_ACTIONS - 1)]  # (2,) applied, zeroed
    half_prob = jnp.stack([1.0 - params.noise, params.noise])
    crash = (ends == CRASH)[:, None]
    first = (jnp.arange(num_starts) == 0)[None, :]
    next_obs = jnp.where(crash, params.starts[None, :], jnp.where(ends >= 0, ends, obs)[:, None])
    share = jnp.where(crash, 1.0 / num_starts, first.astype(jnp.float32))
    prob = (half_prob[:, None] * share).astype(jnp.float32)
    done = (ends == FINISH)[:, None] & first
    reward = jnp.full((2 * num_starts,), -1.0, jnp.float32)
    reward = jnp.where(valid, reward, jnp.nan)  # out of range (inside jit): NaN
    return TransitionDistribution(
        obs, action, reward, next_obs.reshape(-1), done.reshape(-1), prob.reshape(-1)
    )


def _distribution_table(
    outcome: np.ndarray, starts: np.ndarray, noise: float
) -> TransitionDistribution:
    """:func:`racetrack_distribution` of every (s, a) at once, in numpy."""
    num_states, num_actions, _ = outcome.shape
    num_starts = len(starts)
    obs = np.broadcast_to(np.arange(num_states, dtype=np.int32)[:, None, None], outcome.shape)
    crash = (outcome == CRASH)[..., None]  # (S, A, 2, 1)
    first = np.arange(num_starts) == 0
    next_obs = np.where(crash, starts, np.where(outcome >= 0, outcome, obs)[..., None])
    share = np.where(crash, 1.0 / num_starts, first.astype(np.float32))
    prob = np.array([1.0 - noise, noise], np.float32)[:, None] * share
    done = (outcome == FINISH)[..., None] & first
    shape = (num_states, num_actions, 2 * num_starts)
    return TransitionDistribution(
        obs[..., 0],
        np.broadcast_to(np.arange(num_actions, dtype=np.int32), (num_states, num_actions)),
        np.full(shape, -1.0, np.float32),
        next_obs.reshape(shape).astype(np.int32),
        done.reshape(shape),
        prob.reshape(shape).astype(np.float32),
    )


def _uniform_start(params: RacetrackParams, u: jax.Array) -> jax.Array:
    """The start state of index floor(u N) for u uniform in [0, 1): each with prob 1/N."""
    num_starts = params.starts.shape[0]
    return params.starts[jnp.minimum((u * num_starts).astype(jnp.int32), num_starts - 1)]


class Racetrack(environment.Environment[RacetrackState, RacetrackParams]):
    """The racetrack of Exercise 5.12 (see the module docstring for the rules).

    ``layout`` defaults to :data:`RACETRACK_LEFT`; ``max_speed`` (>= 1) bounds each
    velocity component, ``noise`` in [0, 1] is the probability that the increments are
    both zero. ``reset`` puts the car on a start cell drawn uniformly with velocity 0;
    ``step`` is gymnax's, with auto-reset: on crossing the finish line it returns
    ``terminated`` True, ``info["final_observation"]`` the state the car left (the
    finish line has no state) and the observation of a new start.
    """

    def __init__(
        self,
        layout: str | Sequence[str] = RACETRACK_LEFT,
        *,
        max_speed: int = 4,
        noise: float = 0.1,
    ):
        self.grid = parse_track(layout)
        self.max_speed = check_count("max_speed", max_speed, minimum=1)
        check_in_range("noise", noise, 0.0, 1.0)
        self.noise = float(noise)
        self.outcome, self.start_states = _outcome_table(self.grid, self.max_speed)
        self.cells = np.argwhere(np.isin(self.grid, [".", "S"]))  # (C, 2) row, col
        with jax.ensure_compile_time_eval():  # concrete arrays even if built under jit
            self._default_params = RacetrackParams(
                outcome=jnp.asarray(self.outcome),
                starts=jnp.asarray(self.start_states),
                noise=jnp.asarray(self.noise, jnp.float32),
            )
        #: every outcome of every (s, a) as :func:`racetrack_distribution` gives it, for
        #: all pairs at once: numpy (S, A) ``obs`` and ``action``, (S, A, K) the rest
        self.table = _distribution_table(self.outcome, self.start_states, self.noise)

    # --- gymnax interface -------------------------------------------------
    @property
    def default_params(self) -> RacetrackParams:
        return self._default_params

    @property
    def name(self) -> str:
        return "Racetrack"

    @property
    def num_actions(self) -> int:
        return NUM_ACTIONS

    @property
    def num_states(self) -> int:
        """Number of state indices: track cells off the finish line x velocities."""
        return len(self.cells) * (self.max_speed + 1) ** 2

    def action_space(self, params: RacetrackParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(NUM_ACTIONS)

    def observation_space(self, params: RacetrackParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(self.num_states)

    def step(self, key, state: RacetrackState, action, params: RacetrackParams | None = None):
        """gymnax's step (jitted, with auto-reset). ``action`` is an integer in [0, 9);
        a concrete one out of range is a ValueError here, before the jitted step."""
        check_index("Racetrack.step", "action", action, NUM_ACTIONS)
        return super().step(key, state, action, params)

    def step_env(self, key, state: RacetrackState, action, params: RacetrackParams):
        valid = check_index("Racetrack.step", "action", action, NUM_ACTIONS)
        u = jax.random.uniform(key, (2,))  # the noise, and the start cell after a crash
        zeroed = u[0] < params.noise
        action = jnp.clip(action, 0, NUM_ACTIONS - 1)
        end = params.outcome[state.pos, action, zeroed.astype(jnp.int32)]
        start = _uniform_start(params, u[1])
        finished = (end == FINISH) & valid
        moved = jnp.where(end == CRASH, start, jnp.where(end == FINISH, state.pos, end))
        next_pos = jnp.where(valid, moved, state.pos)
        new_state = RacetrackState(pos=next_pos.astype(jnp.int32), time=state.time + 1)
        reward = jnp.where(valid, jnp.float32(-1.0), jnp.nan)
        return new_state.pos, new_state, reward, finished, {}

    def reset_env(self, key, params: RacetrackParams):
        start = _uniform_start(params, jax.random.uniform(key))
        return start, RacetrackState(pos=start, time=jnp.zeros((), jnp.int32))

    def is_terminated(self, state: RacetrackState, params: RacetrackParams) -> jax.Array:
        return jnp.zeros((), bool)  # the finish line has no state: left at once (auto-reset)

    def get_obs(self, state: RacetrackState, params=None, key=None) -> jax.Array:
        return state.pos

    # --- helpers for analysis and tests -------------------------------------
    def state_index(self, row: int, col: int, vertical: int, horizontal: int) -> int:
        """The observation of the car at (row, col) with this velocity."""
        matches = np.flatnonzero((self.cells[:, 0] == row) & (self.cells[:, 1] == col))
        if len(matches) != 1:
            raise ValueError(f"({row}, {col}) is not a track cell off the finish line")
        speeds = self.max_speed + 1
        for name, v in (("vertical", vertical), ("horizontal", horizontal)):
            if not 0 <= v <= self.max_speed:
                raise ValueError(f"{name} velocity must be in [0, {self.max_speed}], got {v}")
        return int(matches[0]) * speeds * speeds + vertical * speeds + horizontal

    def decode(self, state: int) -> tuple[int, int, int, int]:
        """``(row, col, vertical, horizontal)`` of a state index."""
        speeds = self.max_speed + 1
        cell, v = divmod(int(state), speeds * speeds)
        row, col = self.cells[cell]
        return int(row), int(col), v // speeds, v % speeds

    def reachable(self, policy: np.ndarray | None = None) -> np.ndarray:
        """(S,) bool: the states reachable from the start states under some policy (with
        the noise's outcomes), or under the deterministic ``policy`` (S,) when given (the
        book's *relevant* states, for an optimal policy), by breadth-first search over
        :attr:`table` (numpy)."""
        table = self.table
        if policy is not None:
            policy = np.asarray(policy)
            rows = np.arange(self.num_states)
            table = TransitionDistribution(*(x[rows, policy][:, None] for x in table))
        seen = np.zeros(self.num_states, bool)
        seen[self.start_states] = True
        frontier = self.start_states
        while len(frontier):
            live = (table.prob[frontier] > 0) & ~table.done[frontier]
            successors = np.unique(table.next_obs[frontier][live])
            frontier = successors[~seen[successors]]
            seen[frontier] = True
        return seen

"""Example 8.4: prioritized sweeping vs Dyna-Q on the Dyna maze at growing resolution.

The maze of Example 8.1 is refined one side at a time (6x9, 6x18, 12x18, ...),
so the number of open cells doubles: 47, 94, 188, 376, 752, 1504, 3008, 6016
(the book's 47 ... 6016). Both methods make at most n = 5 value updates per real
step from planning; Dyna-Q also makes its direct-RL update, prioritized sweeping
(the book's box) does not, and stops planning when its queue is empty. Every
value update, real or simulated, is counted.

"Optimal solution found" is checked by the code, not assumed: at the end of each
episode (on reaching the goal), the greedy policy of the current Q (argmax, ties
to the lowest action) is walked from the start in the true maze; the solution
counts as optimal once it reaches the goal within ``tolerance`` (1.2) times the
shortest path length (breadth-first search on the layout). The number plotted
is the count of value updates made up to that episode's end, mean over runs; a
run that has not found it after ``max_steps`` real steps is reported, not hidden.

Settings (not given in the book; chosen alike for both methods): alpha 1 (the
maze is deterministic, so the last observed outcome is the exact one; with
alpha 0.5 each backup halves the propagated value and the sweeps die out
within a dozen cells), epsilon 0.1, gamma 0.95, theta 1e-6, Q initialised to 0.
Theta must stay below the smallest value that must propagate, gamma^(path
length): 0.95^176 ~ 1.2e-4 at 6016 states, so the usual 1e-4 would stop the
sweeps short of the start there.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from mbrl_jax.agents import dyna_q, prioritized_sweeping
from mbrl_jax.config import ExperimentConfig, setting
from mbrl_jax.envs import Maze, dyna_maze
from mbrl_jax.results import curve, make_result, timing_line
from mbrl_jax.search import check_predecessor_overflow
from mbrl_jax.sweep import seed_keys
from mbrl_jax.timing import Timing, compile_and_run
from mbrl_jax.types import Agent, Transition
from mbrl_jax.validation import check_count, check_in_range

NAME = "prioritized-sweeping"
DESCRIPTION = "Example 8.4: updates until optimal, prioritized sweeping vs Dyna-Q, maze sizes"

# (rows, cols) refinement of the 6x9 maze: open cells 47 * rows * cols.
RESOLUTIONS = ((1, 1), (1, 2), (2, 2), (2, 4), (4, 4), (4, 8), (8, 8), (8, 16))


class Search(NamedTuple):
    """Outcome of one run of :func:`updates_until_optimal`."""

    found: jax.Array  # bool: optimal solution found within max_steps
    steps: jax.Array  # int32: real steps taken when it was found (the run stops there)
    agent_state: Any

    @property
    def updates(self) -> jax.Array:
        """Value updates made when it was found (or by max_steps, if not found)."""
        return self.agent_state.updates


class _Walk(NamedTuple):
    """The carry of one run's search: where it is and what it has found."""

    obs: Any
    env_state: Any
    result: Search
    key: jax.Array


def updates_until_optimal(env: Maze, agent: Agent, max_steps: int, tolerance: float = 1.2):
    """``run(key) -> Search``: one run that steps until it has found the optimal
    solution (see the module docstring) or ``max_steps`` real steps have passed.

    Map it over keys with ``jax.lax.map`` rather than ``jax.vmap``: each run then
    stops on its own, the greedy check (a walk of up to ``tolerance * shortest``
    steps) runs only at episode ends, and prioritized sweeping's planning
    ``while_loop`` stays a loop. Under vmap the last two become selects over the
    whole state of every run at every step (``benchmarks/prioritized_sweeping.py``
    measures the difference: 13x at 6016 states).
    """
    max_steps = check_count("max_steps", max_steps, minimum=1)
    check_in_range("tolerance", tolerance, 1.0, math.inf)
    params = env.default_params
    limit = int(tolerance * env.shortest_path_length())

    def run(key: jax.Array) -> Search:
        key, k_reset, k_init = jax.random.split(key, 3)
        obs, env_state = env.reset(k_reset, params)
        zero = jnp.zeros((), jnp.int32)
        carry = _Walk(obs, env_state, Search(jnp.bool_(False), zero, agent.init(k_init)), key)

        def searching(carry: _Walk) -> jax.Array:
            return (carry.result.steps < max_steps) & ~carry.result.found

        def step(carry: _Walk) -> _Walk:
            obs, env_state, result, key = carry
            key, k_act, k_step, k_update = jax.random.split(key, 4)
            action = agent.act(result.agent_state, obs, k_act)
            next_obs, env_state, reward, terminated, _, info = env.step(
                k_step, env_state, action, params
            )
            transition = Transition(obs, action, reward, info["final_observation"], terminated)
            agent_state = agent.update(result.agent_state, transition, k_update)
            found = jax.lax.cond(
                terminated,
                lambda q: env.greedy_path_length(q, params, limit) <= limit,
                lambda q: jnp.bool_(False),
                agent_state.learner.q,
            )
            return _Walk(next_obs, env_state, Search(found, result.steps + 1, agent_state), key)

        return jax.lax.while_loop(searching, step, carry).result

    return run


@dataclass(frozen=True)
class Config(ExperimentConfig):
    runs: int = setting(10, "independent runs; run i uses seed + i")
    seed: int = setting(0, "the first run's seed")
    resolutions: tuple[tuple[int, int], ...] = setting(
        RESOLUTIONS, "(rows, cols) refinements of the 6x9 maze, one size each"
    )
    planning_steps: int = setting(5, "most planning updates per real step, both methods")
    alpha: float = setting(1.0, "step size of the value updates", traced=True)
    epsilon: float = setting(0.1, "exploration rate of the epsilon-greedy policy", traced=True)
    gamma: float = setting(0.95, "discount rate", traced=True)
    theta: float = setting(1e-6, "prioritized sweeping's priority threshold", traced=True)
    tolerance: float = setting(1.2, "optimal: greedy path within tolerance x shortest path")
    max_steps: int = setting(3_000_000, "most real steps per run")


def _methods(config: Config) -> dict[str, Callable[[Maze], Agent]]:
    """Each method as a function of the maze."""
    common = dict(alpha=config.alpha, epsilon=config.epsilon, gamma=config.gamma)
    n = config.planning_steps
    return {
        "Dyna-Q": lambda env: dyna_q(env.num_states, env.num_actions, planning_steps=n, **common),
        "prioritized sweeping": lambda env: prioritized_sweeping(
            env.num_states, env.num_actions, planning_steps=n, theta=config.theta, **common
        ),
    }


def check(config: Config) -> None:
    """Raise ValueError for settings :func:`run` cannot use (before anything runs)."""
    check_count("max_steps", config.max_steps, minimum=1)
    check_in_range("tolerance", config.tolerance, 1.0, math.inf)
    if not config.resolutions:
        raise ValueError("resolutions must name at least one (rows, cols) refinement")
    methods = _methods(config)
    for resolution in config.resolutions:
        env = dyna_maze(resolution)
        for make_agent in methods.values():
            make_agent(env)


def run(config: Config = Config(), *, progress: bool = True) -> dict:
    check(config)
    seeds, keys = seed_keys(config.seed, config.runs)
    methods = _methods(config)
    sizes, updates, not_found, times = [], {m: [] for m in methods}, {m: [] for m in methods}, {}
    timing = Timing()
    groups = [(r, m) for r in config.resolutions for m in methods]
    for resolution, method in tqdm(groups, desc=NAME, unit="group", disable=not progress):
        env = dyna_maze(resolution)
        agent = methods[method](env)
        search = updates_until_optimal(env, agent, config.max_steps, config.tolerance)
        result, group_timing = compile_and_run(functools.partial(jax.lax.map, search), keys)
        if method == "prioritized sweeping":
            check_predecessor_overflow(result.agent_state.search)
        timing += group_timing
        times[f"{method} @ {len(env.open_cells())}"] = group_timing.as_dict()
        found = np.asarray(result.found)
        updates[method].append(np.where(found, np.asarray(result.updates, float), np.nan))
        not_found[method].append(int((~found).sum()))
        if method == "Dyna-Q":
            sizes.append(len(env.open_cells()))
    curves = {}
    for method in methods:
        per_size = np.stack(updates[method], axis=1)  # (runs, sizes)
        curves[method] = curve(sizes, per_size)  # runs that never found it are left out
    ratio = [
        d / p if d is not None and p else None
        for d, p in zip(curves["Dyna-Q"]["y"], curves["prioritized sweeping"]["y"], strict=True)
    ]
    return make_result(
        NAME,
        config=config,
        seeds=seeds,
        timing=timing,
        x_label="Gridworld size (#states)",
        y_label="Updates until optimal solution",
        curves=curves,
        plot_style={"log_x": True, "log_y": True, "title": "Example 8.4: prioritized sweeping"},
        ratio_dyna_q_to_prioritized=ratio,
        runs_not_found=not_found,
        timing_per_group=times,
    )


def summary(result: dict) -> str:
    dq, ps = result["curves"]["Dyna-Q"], result["curves"]["prioritized sweeping"]
    lines = [f"{'states':>8} {'Dyna-Q':>14} {'prioritized':>14} {'ratio':>7}"]
    for i, size in enumerate(dq["x"]):
        d, p, r = dq["y"][i], ps["y"][i], result["ratio_dyna_q_to_prioritized"][i]
        cell = [f"{v:>14,.0f}" if v is not None else f"{'-':>14}" for v in (d, p)]
        lines.append(f"{size:>8.0f} {cell[0]} {cell[1]} {r or float('nan'):>6.1f}x")
    missing = result["runs_not_found"]
    if any(sum(v) for v in missing.values()):
        lines.append(f"runs that did not find the optimal path (per size): {missing}")
    lines.append(timing_line(result))
    return "\n".join(lines)

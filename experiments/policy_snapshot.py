"""Figure 8.3: the greedy policies of Dyna-Q halfway through the second episode, n = 0 and
n = 50, on the Dyna maze (Example 8.1), and the curve the figure stands for.

The snapshot: for one run (``snapshot_run``, the same seed for both n; episode 1 is the
same random walk for every n, since Q stays 0 until the goal is first reached), the Q
table after time step len(episode 1) + len(episode 2) // 2. Each open cell gets an arrow
along argmax_a Q(s, a), one arrow per maximal action when several tie at the maximum;
a cell whose four action values are all equal gets no arrow (as in the book).

The curve: the number of states with a value (any Q(s, a) != 0) against time steps, and
against value updates made (``DynaState.updates``: real plus planning updates), for
Dyna-Q with n = 0, 5, 50 and for prioritized sweeping; mean over runs, standard errors.
Each run's count is linearly interpolated onto a common grid of update counts before
averaging; a grid point is drawn for a method only while every run has reached it.
Horizon: the first ``num_steps`` = 4000 time steps (episode 1, a random walk, takes
about 800 steps on average and up to a few thousand; 4000 lets every one of the 30 runs
finish it, so that prioritized sweeping, which makes no update before the goal is
first reached, has a curve against updates over all runs). Planning orders the curves
n = 50 > n = 5 > n = 0 while values spread (beyond the standard errors over about the
first 800 steps); later n = 5 catches up with n = 50: a state can only get a value once
it has been visited, and n = 5's longer episodes visit about as many states.

Settings: Dyna-Q as in the book, alpha 0.1, epsilon 0.1, gamma 0.95, Q initialised to 0.
Prioritized sweeping as ``experiments/prioritized_sweeping.py`` runs it on this maze:
at most n = 5 planning updates per real step, no direct-RL update, alpha 1 (the maze
is deterministic), theta 1e-6, epsilon 0.1, gamma 0.95.

Each method is one compiled, vmapped ``lax.scan`` over time steps whose body is the
library's own time step (:func:`mbrl_jax.train.make_train_chunks`, one step a chunk),
so a run is the run :func:`mbrl_jax.train.make_train` makes with the same key. It is
called twice: once to find every run's episode ends, once more, with the snapshot steps
as an argument, to keep the Q table at those steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from mbrl_jax.agents import dyna_q, prioritized_sweeping
from mbrl_jax.config import ExperimentConfig, setting
from mbrl_jax.envs import Maze, dyna_maze
from mbrl_jax.results import curve, draw_panel, make_result, timing_line
from mbrl_jax.search import check_predecessor_overflow
from mbrl_jax.sweep import seed_keys
from mbrl_jax.timing import Timing, compile_timed, run_timed
from mbrl_jax.train import TrainCarry, TrainConfig, make_train_chunks
from mbrl_jax.types import Agent
from mbrl_jax.validation import check_count

NAME = "policy-snapshot"
DESCRIPTION = "Figure 8.3: Dyna-Q's greedy policy halfway through episode 2, n = 0 vs 50"
PS_LABEL = "prioritized sweeping"
UPDATES = " (updates)"  # suffix of the labels of the curves against value updates
ACTIONS = ("up", "down", "left", "right")  # the maze's actions 0..3
_ARROWS = np.array([[0, -1], [0, 1], [-1, 0], [1, 0]], float)  # (d_col, d_row) per action


class StepLog(NamedTuple):
    """Logged after every time step t = 1 .. num_steps of one run."""

    valued: jax.Array  # (num_steps,) int32: states with any Q(s, a) != 0
    updates: jax.Array  # (num_steps,) int32: value updates made so far, real plus planning
    episodes: jax.Array  # (num_steps,) int32: episodes finished so far


class Trace(NamedTuple):
    """One run of :func:`trace_run`."""

    log: StepLog
    snapshots: jax.Array  # (K, num_states, num_actions): Q after each requested step
    agent_state: Any  # at the end of the run


class _Carry(NamedTuple):
    train: TrainCarry
    snapshots: jax.Array  # (K, num_states, num_actions)


def states_with_a_value(q: jax.Array) -> jax.Array:
    """The number of states (rows of ``q``) with some action value other than 0."""
    return jnp.sum(jnp.any(q != 0, axis=-1), axis=-1)


def trace_run(env: Maze, agent: Agent, num_steps: int):
    """``run(key, snapshot_steps) -> Trace``: ``num_steps`` time steps of ``agent`` (a
    tabular Dyna agent) on ``env``, logging :class:`StepLog` after every step and keeping
    the Q table after each time step in ``snapshot_steps`` ((K,) int32, counted from 1;
    -1 or a step beyond ``num_steps`` keeps zeros). Jittable and vmappable over both."""
    num_steps = check_count("num_steps", num_steps, minimum=1)
    start, run_chunk = make_train_chunks(env, agent, TrainConfig(num_steps=num_steps))

    def run(key: jax.Array, snapshot_steps: jax.Array) -> Trace:
        def step(carry: _Carry, t: jax.Array) -> tuple[_Carry, StepLog]:
            train, _ = run_chunk(carry.train, 1)
            q = train.agent_state.learner.q
            keep = (snapshot_steps == t)[:, None, None]
            snapshots = jnp.where(keep, q[None], carry.snapshots)
            log = StepLog(states_with_a_value(q), train.agent_state.updates, train.episodes)
            return _Carry(train, snapshots), log

        first = start(key)
        q = first.agent_state.learner.q
        empty = jnp.zeros((snapshot_steps.shape[0], *q.shape), q.dtype)
        ts = jnp.arange(1, num_steps + 1, dtype=jnp.int32)
        last, log = jax.lax.scan(step, _Carry(first, empty), ts)
        return Trace(log, last.snapshots, last.train.agent_state)

    return run


def episode_ends(episodes: np.ndarray, count: int) -> np.ndarray:
    """(runs, count): the time step (from 1) that ended episode k = 1 .. count of each
    run, from its logged ``episodes`` (runs, num_steps); -1 where it had not ended."""
    episodes = np.asarray(episodes)
    ends = [
        np.where(episodes[:, -1] >= k, (episodes < k).sum(axis=1) + 1, -1)
        for k in range(1, count + 1)
    ]
    return np.stack(ends, axis=1)


def snapshot_steps(ends: np.ndarray) -> np.ndarray:
    """(runs, 2) int32: the end of episode 1 and halfway through episode 2,
    len(episode 1) + len(episode 2) // 2; -1 where the episode had not ended."""
    first, second = ends[:, 0], ends[:, 1]
    half = np.where(second > 0, first + (second - first) // 2, -1)
    return np.stack([first, half], axis=1).astype(np.int32)


def on_update_grid(updates: np.ndarray, valued: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """One run's count of states with a value at each number of updates in ``grid``:
    linear between the counts logged after consecutive time steps (at 0 updates, 0
    states); NaN beyond the updates the run made."""
    xp = np.concatenate([[0], updates]).astype(float)
    fp = np.concatenate([[0], valued]).astype(float)
    last = np.append(xp[1:] != xp[:-1], True)  # the last step at each update count
    return np.interp(grid, xp[last], fp[last], right=np.nan)


def arrows(q: np.ndarray) -> list[list[int]]:
    """The actions drawn in each state: every maximal action, none if all are equal."""
    q = np.asarray(q)
    return [[] if np.all(row == row[0]) else np.flatnonzero(row == row.max()).tolist() for row in q]


@dataclass(frozen=True)
class Config(ExperimentConfig):
    runs: int = setting(30, "independent runs; run i uses seed + i")
    seed: int = setting(0, "the first run's seed")
    planning_steps: tuple[int, ...] = setting(
        (0, 5, 50), "Dyna-Q's planning steps n, one curve each"
    )
    snapshot_planning_steps: tuple[int, ...] = setting(
        (0, 50), "the n whose policies are drawn (among planning_steps)"
    )
    snapshot_run: int = setting(0, "the run whose policies are drawn (< runs)")
    num_steps: int = setting(4000, "time steps per run")
    log_every: int = setting(10, "time steps between the points of the curves against steps")
    alpha: float = setting(0.1, "Dyna-Q's step size", traced=True)
    epsilon: float = setting(0.1, "exploration rate of the epsilon-greedy policy", traced=True)
    gamma: float = setting(0.95, "discount rate", traced=True)
    ps_planning_steps: int = setting(5, "prioritized sweeping's most planning updates per step")
    ps_alpha: float = setting(1.0, "prioritized sweeping's step size", traced=True)
    ps_theta: float = setting(1e-6, "prioritized sweeping's priority threshold", traced=True)
    update_points: int = setting(120, "grid points of the curves against value updates")


def check(config: Config) -> None:
    """Raise ValueError for settings :func:`run` cannot use (before anything runs)."""
    if check_count("snapshot_run", config.snapshot_run) >= config.runs:
        raise ValueError(
            f"snapshot_run must be an integer < runs={config.runs}, got {config.snapshot_run!r}"
        )
    num_steps = check_count("num_steps", config.num_steps, minimum=1)
    if check_count("log_every", config.log_every, minimum=1) > num_steps:
        raise ValueError(f"log_every must be <= num_steps={num_steps}, got {config.log_every!r}")
    check_count("update_points", config.update_points, minimum=1)
    missing = sorted(set(config.snapshot_planning_steps) - set(config.planning_steps))
    if missing:
        raise ValueError(
            f"snapshot_planning_steps {missing} must be among planning_steps "
            f"{list(config.planning_steps)}"
        )
    _methods(dyna_maze(), config)


def _methods(env: Maze, config: Config) -> dict[str, Agent]:
    """Dyna-Q for each n, labelled ``n=N``, and prioritized sweeping."""
    methods = {
        f"n={n}": dyna_q(
            env.num_states,
            env.num_actions,
            planning_steps=n,
            alpha=config.alpha,
            epsilon=config.epsilon,
            gamma=config.gamma,
        )
        for n in config.planning_steps
    }
    methods[PS_LABEL] = prioritized_sweeping(
        env.num_states,
        env.num_actions,
        epsilon=config.epsilon,
        gamma=config.gamma,
        **_ps_settings(config),
    )
    return methods


def _ps_settings(config: Config) -> dict[str, Any]:
    return dict(
        planning_steps=config.ps_planning_steps, alpha=config.ps_alpha, theta=config.ps_theta
    )


def trace_with_snapshots(run, keys: jax.Array) -> tuple[Trace, Timing]:
    """Both calls of one method's compiled run: episode ends, then the snapshots."""
    none = jnp.full((keys.shape[0], 2), -1, jnp.int32)
    compiled, timing = compile_timed(jax.vmap(run), keys, none)
    first, first_s = run_timed(compiled, keys, none)
    steps = snapshot_steps(episode_ends(first.log.episodes, 2))
    trace, second_s = run_timed(compiled, keys, jnp.asarray(steps))
    return trace, Timing(timing.compile_s, first_s + second_s, timing.flops, timing.bytes_accessed)


def _policy(trace: Trace, run: int) -> dict[str, Any]:
    """The snapshot of one run, JSON-ready."""
    ends = episode_ends(np.asarray(trace.log.episodes[run : run + 1]), 2)[0]
    steps = snapshot_steps(ends[None])[0]
    q_end, q_half = (np.asarray(trace.snapshots[run, i]) for i in range(2))
    return {
        "step": int(steps[1]),
        "episode_1_length": int(ends[0]),
        "episode_2_length": int(ends[1] - ends[0]) if ends[1] > 0 else None,
        "q": q_half.tolist(),
        "q_after_episode_1": q_end.tolist(),
        "states_with_arrows": sum(bool(a) for a in arrows(q_half)),
    }


def run(config: Config = Config(), *, progress: bool = True) -> dict:
    check(config)
    env = dyna_maze()
    seeds, keys = seed_keys(config.seed, config.runs)
    methods = _methods(env, config)
    traces, timing = {}, Timing()
    for label, agent in tqdm(methods.items(), desc=NAME, unit="group", disable=not progress):
        run_fn = trace_run(env, agent, config.num_steps)
        traces[label], group_timing = trace_with_snapshots(run_fn, keys)
        timing += group_timing
    check_predecessor_overflow(traces[PS_LABEL].agent_state.search)
    snapshot_run = config.snapshot_run
    policies = {
        f"n={n}": _policy(traces[f"n={n}"], snapshot_run) for n in config.snapshot_planning_steps
    }
    for label, policy in policies.items():
        if policy["episode_2_length"] is None:
            raise ValueError(
                f"run {snapshot_run} (seed {seeds[snapshot_run]}) did not finish episode 2 "
                f"within num_steps={config.num_steps} for {label}; use a larger num_steps"
            )
    return make_result(
        NAME,
        config=config,
        snapshot_seed=seeds[snapshot_run],
        seeds=seeds,
        timing=timing,
        x_label="Time steps",
        y_label="States with a non-zero value",
        curves=_curves(traces, config.log_every, config.update_points),
        plot_style=_plot_style(list(methods)),
        layout=["".join(row) for row in env.grids[0]],
        actions=list(ACTIONS),
        policies=policies,
        snapshot_counts=_snapshot_counts(traces),
    )


def _curves(traces: dict[str, Trace], log_every: int, update_points: int) -> dict[str, dict]:
    """Against time steps (every ``log_every``-th step) and against value updates."""
    curves = {}
    for label, trace in traces.items():
        valued = np.asarray(trace.log.valued)
        t = np.arange(log_every, valued.shape[1] + 1, log_every)
        curves[label] = curve(t, valued[:, t - 1])
    most = max(int(np.asarray(trace.log.updates)[:, -1].min()) for trace in traces.values())
    grid = np.unique(np.round(np.geomspace(1, most, update_points)))
    for label, trace in traces.items():
        updates, valued = np.asarray(trace.log.updates), np.asarray(trace.log.valued)
        on_grid = grid[grid <= updates[:, -1].min()]
        per_run = [on_update_grid(u, v, on_grid) for u, v in zip(updates, valued, strict=True)]
        curves[label + UPDATES] = curve(on_grid, np.stack(per_run))
    return curves


def _snapshot_counts(traces: dict[str, Trace]) -> dict[str, dict[str, list]]:
    """Per run: states with a value after episode 1 and halfway through episode 2
    (None where the run had not got there)."""
    counts = {}
    for label, trace in traces.items():
        ends = episode_ends(np.asarray(trace.log.episodes), 2)
        steps = snapshot_steps(ends)
        valued = np.asarray(states_with_a_value(trace.snapshots))  # (runs, 2)
        counts[label] = {
            name: [
                int(v) if s > 0 else None for v, s in zip(valued[:, i], steps[:, i], strict=True)
            ]
            for i, name in enumerate(("after_episode_1", "halfway_episode_2"))
        }
    return counts


def _plot_style(labels: list[str]) -> dict[str, Any]:
    return {
        "title": "Figure 8.3: planning spreads values from the goal (Dyna maze)",
        "panels": [
            {"title": "against time steps", "labels": labels, "x_label": "Time steps"},
            {
                "title": "against value updates made",
                "labels": [label + UPDATES for label in labels],
                "x_label": "Value updates made (real + planning)",
                "log_x": True,
            },
        ],
    }


def plot(result: dict[str, Any], path: str | Path) -> None:
    """The figure from ``result`` (a parsed result.json) alone: the policy panels of
    Figure 8.3 above, the curves against time steps and against value updates below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    style, policies = result["plot_style"], result["policies"]
    columns = max(len(policies), len(style["panels"]))
    fig, axes = plt.subplots(2, columns, figsize=(6.4 * columns, 9.6), squeeze=False)
    for ax, (label, policy) in zip(axes[0], policies.items(), strict=False):
        title = f"{label}: after step {policy['step']} (halfway through episode 2)"
        draw_policy(ax, result["layout"], np.asarray(policy["q"]), title)
    for ax, panel in zip(axes[1], style["panels"], strict=False):
        draw_panel(ax, result, panel, style)
    for ax in [*axes[0, len(policies) :], *axes[1, len(style["panels"]) :]]:
        ax.set_visible(False)
    fig.suptitle(style["title"])
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def draw_policy(ax, layout: list[str], q: np.ndarray, title: str = "") -> None:
    """The maze ``layout`` on ``ax``, walls filled, S and G marked, and the greedy
    arrows of ``q`` (num_states, 4) in each open cell (see :func:`arrows`)."""
    grid = np.array([list(row) for row in layout])
    height, width = grid.shape
    ax.imshow(grid == "#", cmap="Greys", vmin=0, vmax=1.6, extent=(0, width, height, 0))
    for cell, actions in enumerate(arrows(q)):
        row, col = divmod(cell, width)
        if grid[row, col] in "SG":
            ax.text(
                col + 0.5,
                row + 0.5,
                grid[row, col],
                ha="center",
                va="center",
                fontsize=14,
                weight="bold",
                alpha=0.35 if actions else 1.0,
            )
        for action in actions:
            dx, dy = _ARROWS[action] * 0.32
            ax.arrow(
                col + 0.5 - dx,
                row + 0.5 - dy,
                2 * dx,
                2 * dy,
                width=0.03,
                head_width=0.18,
                length_includes_head=True,
                color="k",
            )
    ax.set_xticks(np.arange(width + 1))
    ax.set_yticks(np.arange(height + 1))
    ax.grid(color="0.6", linewidth=0.8)
    ax.tick_params(length=0, labelbottom=False, labelleft=False)
    ax.set_title(title)


def summary(result: dict) -> str:
    curves = result["curves"]
    labels = [label for label in curves if not label.endswith(UPDATES)]
    lines = [f"{'':>28}" + "".join(f"{label:>22}" for label in labels)]
    for t in (500, 1000, 2000, 4000):
        lines.append(_row(f"t = {t}", [curves[label] for label in labels], t))
    for u in (100, 1000, 10_000, 100_000):
        lines.append(_row(f"{u} updates", [curves[label + UPDATES] for label in labels], u))
    for label, policy in result["policies"].items():
        lines.append(
            f"{label}: {policy['states_with_arrows']} states with arrows at step {policy['step']}"
            f" (episode 1: {policy['episode_1_length']} steps, episode 2: "
            f"{policy['episode_2_length']})"
        )
    halfway = {
        label: np.mean([v for v in c["halfway_episode_2"] if v is not None])
        for label, c in result["snapshot_counts"].items()
    }
    lines.append(
        "states with a value halfway through episode 2, mean over runs: "
        + ", ".join(f"{label} {v:.1f}" for label, v in halfway.items())
    )
    lines.append(timing_line(result))
    return "\n".join(lines)


def _row(name: str, curves: list[dict], x: float) -> str:
    """Mean (standard error) of each curve at its grid point nearest ``x``."""
    cells = []
    for c in curves:
        i = int(np.argmin(np.abs(np.asarray(c["x"]) - x))) if c["x"] else None
        ok = i is not None and abs(c["x"][i] - x) <= 0.05 * x and c["y"][i] is not None
        cells.append(f"{c['y'][i]:.1f} ({c['y_err'][i]:.1f})" if ok else "-")
    return f"{name:>28}" + "".join(f"{cell:>22}" for cell in cells)

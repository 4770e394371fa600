"""Value-bootstrapped MPC (the blend of decision-time and background planning) against
PETS at its full horizon, SAC alone and MBPO, on gymnax ``Pendulum-v1`` and the
continuous cart-pole: return against real environment steps, seeds vmapped.

The groups, per task (``tasks``):

- ``PETS H=h``: the PETS loop of ``pets-pendulum`` / ``pets-cartpole`` (their nested
  configs ``pets_pendulum.*`` / ``pets_cartpole.*``, default their ``cpu`` presets' CEM
  and ensemble; the top-level ``runs`` and ``seed`` replace theirs). Trial 0 is random;
  trial t ends at real step (t + 1) x trial_length.
- ``value-MPC H=h``: :func:`mbrl_jax.blend.value_guided` over the MBPO agent of
  :func:`experiments.mbpo_common.make_parts` (SAC + ensemble + G branched-rollout
  updates per real step): from ``planning_starts`` (the first refit) on it acts by CEM
  through the ensemble with TSinf particles, h steps, the return bootstrapped by
  gamma^h V_SAC(s_h) and ``prior_fraction`` of the population the SAC policy's rollouts.
- ``SAC`` (G = 0) and ``MBPO G=n`` (:mod:`experiments.mbpo_common`).

Every model-based group uses the task's known reward (and the cart-pole's known
termination), as the PETS experiments do, so the model learns the dynamics only.

What a curve measures (the same for all: the return of the agent as it acts when
deployed): SAC and MBPO act by sampling their stochastic policy while training, so
their curve is the greedy (mean-action) policy's return over ``eval_episodes`` real
episodes after each chunk of ``eval_every`` real steps. PETS and value-MPC act by their
planner, whose action is the CEM mean (deterministic given the model), so their curve
is the return of the real episodes they act in: value-MPC's points are the mean return
of the episodes that ended within each chunk (none: a gap), PETS's the trial's episode.
``actor_greedy`` holds value-MPC's own SAC actor evaluated greedily (what background
learning from the planner's data gave), ``acting_returns`` every Dyna group's training
episodes.

``compute`` states the planning compute per real step: model steps per decision =
population x particles x horizon x iterations (+ prior count x horizon for the policy's
rollouts), with the value and policy evaluations, and the background model steps
(G x rollout_batch x the schedule's longest rollout length) of the Dyna groups.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import numpy as np
from tqdm import tqdm

from mbrl_jax.blend import value_guided
from mbrl_jax.config import setting
from mbrl_jax.envs import cartpole_reward, cartpole_termination, pendulum_reward
from mbrl_jax.pets import run_pets
from mbrl_jax.planners import cem
from mbrl_jax.results import curve, make_result, steps_to_target, timing_line
from mbrl_jax.sweep import seed_keys
from mbrl_jax.timing import Timing
from mbrl_jax.validation import check_count, check_in_range

from . import pets_cartpole, pets_pendulum
from .mbpo_common import (
    TINY_MBPO,
    MBPOConfig,
    Parts,
    Task,
    check_common,
    make_parts,
    run_group,
)
from .pets_common import CEMConfig, PETSConfig, make_experiment

NAME = "mpc-value"
DESCRIPTION = "value-bootstrapped MPC (H <= 5) vs PETS, SAC and MBPO on Pendulum and cart-pole"
GROUPS = ("PETS", "value-MPC", "SAC", "MBPO")


TASKS = {
    "pendulum": Task("Pendulum-v1", "Pendulum-v1", pendulum_reward, None, -200.0),
    "cartpole": Task(
        "ContinuousCartPole", "cart-pole", cartpole_reward, cartpole_termination, 190.0
    ),
}


class Suite(NamedTuple):
    """The tasks of a value-MPC experiment, and where its config keeps each one's PETS."""

    tasks: Mapping[str, Task]
    pets_config: Callable[[Any, str], PETSConfig]  # (config, task name) -> its PETS config


@dataclass(frozen=True)
class ValueMPCConfig(MBPOConfig):
    """The four groups' settings but the tasks and PETS (each experiment's own);
    SAC's and MBPO's settings are :class:`MBPOConfig`'s."""

    groups: tuple[str, ...] = setting(GROUPS, f"groups run, of {GROUPS}")
    eval_every: int = setting(
        200, "real steps per chunk: the model is refitted and the greedy policy evaluated after it"
    )
    learning_starts: int = setting(
        200, "real steps of uniform random actions before SAC starts learning"
    )
    num_steps: int = setting(10_000, "real steps of SAC alone")
    planning_num_steps: int = setting(2_000, "real steps of each MBPO and value-MPC run")
    planning_steps: int = setting(20, "G, gradient steps on model rollouts per real step")
    rollout_schedule: tuple[int, int, int, int] = setting(
        (250, 750, 1, 25),
        "MBPO's rollout length schedule (first_step, last_step, min_length, max_length): "
        "k from 1 at step 250 to 25 at step 750, as mbpo-pendulum",
    )
    mpc_horizons: tuple[int, ...] = setting((5,), "value-MPC's planning horizons H (<= 5)")
    mpc: CEMConfig = setting(
        CEMConfig(horizon=3, population=64, elites=8, iterations=4, particles=5),
        "value-MPC's CEM (its horizon is replaced by each of mpc_horizons)",
    )
    prior_fraction: float = setting(0.05, "share of the CEM population from the SAC policy")


@dataclass(frozen=True)
class Config(ValueMPCConfig):
    """The four groups on Pendulum-v1 and the cart-pole."""

    tasks: tuple[str, ...] = setting(("pendulum", "cartpole"), f"tasks, of {tuple(TASKS)}")
    pets_pendulum: pets_pendulum.Config = setting(
        pets_pendulum.PRESETS["cpu"], "PETS on Pendulum-v1 (runs and seed: the top-level ones)"
    )
    pets_cartpole: pets_cartpole.Config = setting(
        pets_cartpole.PRESETS["cpu"], "PETS on the cart-pole (runs and seed: the top-level ones)"
    )


def _tiny_pets(config):
    planner = CEMConfig(horizon=5, population=8, elites=2, iterations=1, particles=2)
    return replace(config, trials=1, ensemble_size=2, hidden=(16,), max_epochs=2, planner=planner)


#: the Config fields of the value-MPC experiments' ``tiny`` presets, PETS's apart
TINY_VALUE_MPC = dict(
    TINY_MBPO,
    num_steps=200,
    planning_num_steps=200,
    planning_steps=2,
    mpc_horizons=(2,),
    mpc=CEMConfig(horizon=2, population=8, elites=2, iterations=1, particles=2),
)

PRESETS = {
    "cpu": Config(),
    "tiny": replace(
        Config(),
        **TINY_VALUE_MPC,
        pets_pendulum=_tiny_pets(pets_pendulum.PRESETS["cpu"]),
        pets_cartpole=_tiny_pets(pets_cartpole.PRESETS["cpu"]),
    ),
    "gpu": replace(
        Config(),
        num_steps=20_000,
        planning_num_steps=5_000,
        hidden=(256, 256),
        mpc_horizons=(1, 3, 5),
        mpc=CEMConfig(horizon=5, population=256, elites=32, iterations=6, particles=8),
        pets_pendulum=pets_pendulum.PRESETS["paper"],
        pets_cartpole=pets_cartpole.PRESETS["paper"],
    ),
}


SUITE = Suite(
    TASKS,
    lambda config, task: config.pets_pendulum if task == "pendulum" else config.pets_cartpole,
)


def _pets_config(config: ValueMPCConfig, suite: Suite, task: str) -> PETSConfig:
    return replace(suite.pets_config(config, task), runs=config.runs, seed=config.seed)


def _pets(config: ValueMPCConfig, suite: Suite, name: str):
    """The PETS loop of task ``name`` (its known functions, as the Dyna groups')."""
    task = suite.tasks[name]
    env, _ = task.make()
    return make_experiment(
        env, _pets_config(config, suite, name), reward_fn=task.reward_fn,
        termination_fn=task.termination_fn,
    )  # fmt: skip


def _planner_of(space, config: ValueMPCConfig, horizon: int):
    p = config.mpc

    def planner_of(value_fn, policy):
        return cem(
            space,
            horizon=horizon,
            population=p.population,
            elites=p.elites,
            iterations=p.iterations,
            smoothing=p.smoothing,
            particles=p.particles,
            gamma=config.gamma,
            value_fn=value_fn,
            policy=policy,
            prior_fraction=config.prior_fraction,
        )

    return planner_of


def _mpc_parts(env, env_params, config: ValueMPCConfig, task: Task, horizon: int) -> Parts:
    """value_guided over the MBPO agent: CEM of ``horizon`` steps through the ensemble."""
    mbpo = make_parts(
        env, env_params, config.planning_steps, config, config.planning_num_steps,
        task.reward_fn, task.termination_fn,
    )  # fmt: skip
    agent = value_guided(
        mbpo.agent,
        mbpo.learner,
        _planner_of(env.action_space(env_params), config, horizon),
        lambda m: mbpo.model.step_fn(m, "tsinf"),
        planning_starts=max(config.eval_every, config.learning_starts),
    )
    return Parts(agent, mbpo.learner, mbpo.model)


def episode_returns_per_chunk(cumulative: np.ndarray, episodes: np.ndarray, chunk: int):
    """Per seed (rows) and chunk of ``chunk`` steps, the mean return of the episodes
    that ended in it (NaN if none), from the per-step cumulative reward and episode
    count of a run."""
    seeds, steps = cumulative.shape
    out = np.full((seeds, steps // chunk), np.nan)
    for s in range(seeds):
        ends = np.flatnonzero(np.diff(episodes[s], prepend=0) > 0)
        totals = np.diff(cumulative[s, ends], prepend=0.0)
        for c in range(steps // chunk):
            inside = (ends >= c * chunk) & (ends < (c + 1) * chunk)
            if inside.any():
                out[s, c] = totals[inside].mean()
    return out


def mpc_compute(config: ValueMPCConfig, horizon: int) -> dict[str, Any]:
    """Value-MPC's planning compute per real step (one decision)."""
    p = config.mpc
    prior = max(1, int(np.floor(config.prior_fraction * p.population + 0.5)))
    prior = prior if config.prior_fraction > 0 else 0
    scored = p.population * p.particles * horizon * p.iterations
    return {
        "model_steps_per_decision": scored + prior * horizon,
        "formula": f"{p.population} x {p.particles} x {horizon} x {p.iterations} "
        f"+ {prior} prior rollouts x {horizon}",
        "value_evaluations_per_decision": p.population * p.particles * p.iterations,
        "policy_evaluations_per_decision": prior * horizon,
        "background_model_steps_per_step": background_model_steps(config),
    }


def background_model_steps(config: ValueMPCConfig) -> int:
    """Model steps of MBPO's branched rollouts per real step at the rollout length
    schedule's longest: G x rollout_batch x max_length."""
    return config.planning_steps * config.rollout_batch * config.rollout_schedule[3]


def pets_compute(planner: CEMConfig) -> dict[str, Any]:
    steps = planner.population * planner.particles * planner.horizon * planner.iterations
    return {
        "model_steps_per_decision": steps,
        "formula": f"{planner.population} x {planner.particles} x {planner.horizon} "
        f"x {planner.iterations}",
        "value_evaluations_per_decision": 0,
        "policy_evaluations_per_decision": 0,
        "background_model_steps_per_step": 0,
    }


def check_suite(config: ValueMPCConfig, suite: Suite) -> None:
    """Raise ValueError for settings :func:`run_suite` cannot run (before anything runs)."""
    check_count("runs", config.runs, minimum=1)
    check_common(config, config.num_steps, config.planning_num_steps)
    check_count("planning steps G", config.planning_steps, minimum=1)
    check_in_range("prior_fraction", config.prior_fraction, 0.0, 1.0)
    for name in config.tasks:
        if name not in suite.tasks:
            raise ValueError(f"unknown task {name!r}; available: {', '.join(suite.tasks)}")
    for name in config.groups:
        if name not in GROUPS:
            raise ValueError(f"unknown group {name!r}; available: {', '.join(GROUPS)}")
    if "value-MPC" in config.groups and not config.mpc_horizons:
        raise ValueError("mpc_horizons is empty: give value-MPC at least one horizon")
    for h in config.mpc_horizons:
        check_count("value-MPC horizon", h, minimum=1)
    for name in config.tasks:
        env, env_params = suite.tasks[name].make()
        if "PETS" in config.groups:
            _pets(config, suite, name)
        for h in config.mpc_horizons if "value-MPC" in config.groups else ():
            _mpc_parts(env, env_params, config, suite.tasks[name], h)


def check(config: Config) -> None:
    """Raise ValueError for settings this experiment cannot run (before anything runs)."""
    check_suite(config, SUITE)


def _dyna_groups(config: ValueMPCConfig, env, env_params, task: Task):
    """(label, parts, run length, compute) of the Dyna groups of one task."""
    out = []
    if "value-MPC" in config.groups:
        for h in config.mpc_horizons:
            parts = _mpc_parts(env, env_params, config, task, h)
            out.append(
                (f"value-MPC H={h}", parts, config.planning_num_steps, mpc_compute(config, h))
            )
    none = {"model_steps_per_decision": 0, "formula": "0 (acts by its policy)"}
    if "SAC" in config.groups:
        parts = make_parts(env, env_params, 0, config, config.num_steps)
        out.append(("SAC", parts, config.num_steps, none))
    if "MBPO" in config.groups:
        n, steps = config.planning_steps, config.planning_num_steps
        parts = make_parts(env, env_params, n, config, steps, task.reward_fn, task.termination_fn)
        background = {**none, "background_model_steps_per_step": background_model_steps(config)}
        out.append((f"MBPO G={n}", parts, steps, background))
    return out


def run_task(
    config: ValueMPCConfig, suite: Suite, name: str, keys, progress: bool
) -> dict[str, Any]:
    """All groups on one task: curves, acting returns, actor returns, compute, timing."""
    task = suite.tasks[name]
    env, env_params = task.make()
    out = {"curves": {}, "acting": {}, "actor": {}, "compute": {}, "lengths": {}}
    timing = Timing()
    if "PETS" in config.groups:
        pets_config = _pets_config(config, suite, name)
        outcome = run_pets(_pets(config, suite, name), keys, pets_config.trials, progress=progress)
        label = f"{task.title}: PETS H={pets_config.planner.horizon}"
        x = np.arange(1, pets_config.trials + 2) * pets_config.trial_length
        out["curves"][label] = (x, outcome.returns)
        out["compute"][label] = pets_compute(pets_config.planner)
        out["lengths"][label] = int(x[-1])
        timing = timing + outcome.timing
    groups = _dyna_groups(config, env, env_params, task)
    total = sum(steps // config.eval_every for _, _, steps, _ in groups)
    bar = tqdm(total=total, desc=name, unit="chunk", disable=not progress)
    for short, parts, steps, compute in groups:
        label = f"{task.title}: {short}"
        group = run_group(env, env_params, parts, config, steps, keys, bar)
        acting = episode_returns_per_chunk(
            group.cumulative_reward, group.episodes, config.eval_every
        )
        x = np.arange(1, steps // config.eval_every + 1) * config.eval_every
        planned = short.startswith("value-MPC")
        out["curves"][label] = (x, acting if planned else group.greedy)
        out["acting"][label] = _curve(x, acting)
        if planned:
            out["actor"][label] = curve(x, group.greedy)
        out["compute"][label] = compute
        out["lengths"][label] = steps
        timing = timing + group.timing
    bar.close()
    return out | {"timing": timing}


def _curve(x, runs: np.ndarray) -> dict[str, list]:
    """:func:`mbrl_jax.results.curve`, quiet about chunks where no seed's episode ended
    (their points are null)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return curve(x, runs)


def run_suite(
    experiment: str, config: ValueMPCConfig, suite: Suite, *, progress: bool = True
) -> dict[str, Any]:
    """Every group of ``config.groups`` on every task of ``config.tasks`` (of ``suite``),
    seeds vmapped: the result of ``experiment`` (see the module docstring)."""
    check_suite(config, suite)
    seeds, keys = seed_keys(config.seed, config.runs)
    curves, reached, final, acting, actor, compute, timing = {}, {}, {}, {}, {}, {}, Timing()
    panels = []
    for name in config.tasks:
        out = run_task(config, suite, name, keys, progress)
        timing = timing + out["timing"]
        for label, (x, runs) in out["curves"].items():
            curves[label] = _curve(x, runs)
            reached[label] = steps_to_target(
                x, np.nan_to_num(runs, nan=-np.inf), suite.tasks[name].target
            )
            final[label] = final_return(runs)
        acting |= out["acting"]
        actor |= out["actor"]
        compute |= out["compute"]
        panels.append({"title": suite.tasks[name].title, "labels": list(out["curves"])})
    return make_result(
        experiment,
        config=config,
        seeds=seeds,
        timing=timing,
        x_label="Real environment steps",
        y_label="Return (SAC/MBPO: greedy evaluation; PETS/value-MPC: episodes acted in)",
        curves=curves,
        targets={suite.tasks[n].title: suite.tasks[n].target for n in config.tasks},
        steps_to_target=reached,
        final_return=final,
        compute=compute,
        acting_returns=acting,
        actor_greedy=actor,
        plot_style={"title": "Value-bootstrapped MPC, PETS, SAC and MBPO", "panels": panels},
    )


def run(config: Config = Config(), *, progress: bool = True) -> dict[str, Any]:
    return run_suite(NAME, config, SUITE, progress=progress)


def final_return(runs: np.ndarray) -> dict[str, float]:
    """Mean and standard error over seeds of each seed's last finite point."""
    last = np.array(
        [row[np.isfinite(row)][-1] if np.isfinite(row).any() else np.nan for row in runs]
    )
    last = last[np.isfinite(last)]
    err = float(np.std(last, ddof=1) / np.sqrt(len(last))) if len(last) > 1 else 0.0
    return {"mean": float(np.mean(last)) if len(last) else float("nan"), "std_err": err}


def summary(result: dict) -> str:
    lines = [
        "group: final return (mean +- s.e.), real steps to target per seed, model steps/decision"
    ]
    for label, fin in result["final_return"].items():
        steps = result["steps_to_target"][label]
        done = [v for v in steps if v is not None]
        mean = f"{np.mean(done):.0f}" if done else "-"
        lines.append(
            f"  {label:28s} {fin['mean']:8.1f} +- {fin['std_err']:5.1f}   reached "
            f"{len(done)}/{len(steps)} (mean {mean}: {steps})   "
            f"{result['compute'][label]['model_steps_per_decision']}"
        )
    for label, c in result["actor_greedy"].items():
        lines.append(f"  {label} (its SAC actor, greedy): final {c['y'][-1]:.1f}")
    lines.append(timing_line(result))
    return "\n".join(lines)


__all__ = ["DESCRIPTION", "NAME", "PRESETS", "Config", "check", "run", "summary"]

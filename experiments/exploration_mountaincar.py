"""Exploration that improves the model: PETS with and without the ensemble's
disagreement bonus on gymnax ``MountainCarContinuous-v0``.

The car starts at rest in the valley and must rock back and forth to reach the flag
(position >= 0.45); the reward is -0.1 a^2 a step and +100 on reaching the flag,
which ends the episode. A planner whose horizon is far shorter than the way up sees
only the action cost and keeps still: PETS without exploration rarely finds the goal.
With the bonus (:func:`mbrl_jax.models.disagreement_step_fn`) the planner maximizes
return plus ``exploration_weight`` times the members' disagreement, is drawn to states
the model has not seen, and the data it brings back widens the model until the goal
comes within the planning horizon.

Both arms plan with CEM through the same probabilistic ensemble (TSinf particles) and
the known reward and termination (:func:`~mbrl_jax.envs.continuous_mountain_car_reward`,
:func:`~mbrl_jax.envs.continuous_mountain_car_termination`); only the bonus differs.
Curves: the fraction of seeds that have reached the goal in any episode up to each
trial (trial 0: random actions), with its standard error. A trial is ``trial_length``
steps (150 by default, not the environment's 999: long enough for a car that swings
well, short enough for a 2-core CPU; the episode ends at the goal).

Measured (``mbrl-jax run exploration-mountaincar``, the defaults: 8 seeds, 3 planned
trials of 150 steps, 5 members of 64-64, CEM horizon 25, population 64, 3 iterations,
5 particles; 10.6 min wall on the shared 2-core CPU, 2026-12-01): PETS reached the goal
in 0 of 8 seeds in every trial (it keeps still: returns about -0.1); with the bonus at
weight 3, 6 of 8 by trial 1 and 8 of 8 by trial 2 (weight 1: 5/8, then 6/8; weight
0.3: 4/8, then 5/8). Finding the goal is not yet keeping to it: of the 10 times a seed
reached it in trials 1-2 (weight 3), it reached it again in the next trial 4 times; the
goal lies beyond the 25-step horizon from the valley, so the climb still depends on the
bonus, which fades where the model has seen the way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnax
import numpy as np

from mbrl_jax.config import setting
from mbrl_jax.envs import continuous_mountain_car_reward, continuous_mountain_car_termination
from mbrl_jax.pets import PETS, run_pets
from mbrl_jax.results import curve, make_result, timing_line
from mbrl_jax.sweep import seed_keys
from mbrl_jax.validation import check_count, check_nonnegative

from .pets_common import CEMConfig, PETSConfig, make_experiment

NAME = "exploration-mountaincar"
DESCRIPTION = "PETS with and without the disagreement bonus on MountainCarContinuous-v0"
ENV_NAME = "MountainCarContinuous-v0"
ARMS = ("PETS", "PETS + disagreement")


@dataclass(frozen=True)
class Config(PETSConfig):
    """PETS on MountainCarContinuous-v0, both arms; the defaults are the ``cpu`` preset."""

    runs: int = setting(8, "independent runs (seeds) per arm; run i uses seed + i")
    trials: int = setting(3, "planned trials after the random-action trial 0")
    trial_length: int = setting(150, "environment steps per trial (the env's own: 999)")
    hidden: tuple[int, ...] = setting((64, 64), "hidden layer widths of each member")
    capacity: int = setting(1000, "transitions kept in the model's buffer")
    max_epochs: int = setting(30, "most training epochs per refit (early-stopped)")
    exploration_weight: float = setting(
        3.0, "weight of the disagreement bonus in the second arm", traced=True
    )
    planner: CEMConfig = setting(
        CEMConfig(horizon=25, population=64, elites=8, iterations=3, particles=5),
        "the CEM planner",
    )


PRESETS = {
    "cpu": Config(),
    "tiny": Config(
        runs=2,
        trials=1,
        trial_length=20,
        ensemble_size=2,
        hidden=(8,),
        capacity=64,
        max_epochs=2,
        planner=CEMConfig(horizon=5, population=8, elites=2, iterations=1, particles=2),
    ),
}


def pets(config: Config, exploration_weight: Any = 0.0) -> PETS:
    """The PETS loop of ``config``, planning with the bonus at ``exploration_weight``
    (0: PETS itself); the constructors check the settings."""
    env, _ = gymnax.make(ENV_NAME)
    return make_experiment(
        env, config, reward_fn=continuous_mountain_car_reward,
        termination_fn=continuous_mountain_car_termination,
        exploration_weight=exploration_weight,
    )  # fmt: skip


def check(config: Config) -> None:
    """Raise ValueError for settings this experiment does not accept (before anything runs)."""
    check_count("trials", config.trials, minimum=1)
    check_nonnegative("exploration_weight", config.exploration_weight)
    if config.ensemble_size < 2:
        size = config.ensemble_size
        raise ValueError(f"ensemble_size must be >= 2 for a disagreement, got {size}")
    pets(config, config.exploration_weight)


def reached_goal(returns: np.ndarray) -> np.ndarray:
    """Whether each episode reached the goal, from its return: the goal pays 100 and the
    action cost is at most 0.1 a step, so over fewer than 1000 steps a return > 0 means
    the goal was reached and one <= 0 that it was not."""
    return np.asarray(returns) > 0.0


def run(config: Config = Config(), *, progress: bool = True) -> dict:
    check(config)
    seeds, keys = seed_keys(config.seed, config.runs)
    x = np.arange(config.trials + 1)
    curves, returns, timing = {}, {}, None
    for arm, weight in zip(ARMS, (0.0, config.exploration_weight), strict=True):
        outcome = run_pets(pets(config, weight), keys, config.trials, progress=progress)
        reached = np.maximum.accumulate(reached_goal(outcome.returns), axis=1)
        curves[arm] = curve(x, reached.astype(np.float64))
        returns[arm] = outcome.returns.tolist()
        timing = outcome.timing if timing is None else timing + outcome.timing
    return make_result(
        NAME,
        config=config,
        seeds=seeds,
        timing=timing,
        x_label="Trial (0: random actions)",
        y_label="Fraction of seeds that reached the goal",
        curves=curves,
        returns_per_seed=returns,
        plot_style={"title": f"Exploration by disagreement on {ENV_NAME}"},
    )


def summary(result: dict) -> str:
    lines = [f"{'trial':>6} " + " ".join(f"{arm:>24}" for arm in ARMS)]
    c = result["curves"]
    for i, x in enumerate(c[ARMS[0]]["x"]):
        cells = [f"{c[a]['y'][i]:>15.2f} +- {c[a]['y_err'][i]:<5.2f}" for a in ARMS]
        lines.append(f"{int(x):>6} " + " ".join(cells))
    lines.append(timing_line(result))
    return "\n".join(lines)


__all__ = ["DESCRIPTION", "NAME", "PRESETS", "Config", "check", "run", "summary"]

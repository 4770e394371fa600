"""What the PETS experiments share: their config (the loop, the ensemble and a nested
CEM planner config), and one runner that writes the result in the common format
(curve ``PETS``: mean return over seeds against the trial number; trial 0 is the
random-action trial)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from mbrl_jax.config import ExperimentConfig, setting
from mbrl_jax.models import neural_model
from mbrl_jax.pets import PETS, make_pets, run_pets
from mbrl_jax.planners import cem
from mbrl_jax.results import curve, make_result, timing_line
from mbrl_jax.sweep import seed_keys


@dataclass(frozen=True)
class CEMConfig(ExperimentConfig):
    """The CEM planner of PETS (:func:`mbrl_jax.planners.cem`), ``planner.*`` on the
    command line (``--set planner.horizon=30``)."""

    horizon: int = setting(15, "planning horizon (steps per action sequence)")
    population: int = setting(100, "action sequences drawn per CEM iteration")
    elites: int = setting(10, "best sequences the CEM distribution is refitted to")
    iterations: int = setting(5, "CEM iterations per decision")
    particles: int = setting(5, "TSinf particles rolled out per sequence")
    smoothing: float = setting(
        0.1, "CEM's smoothing of its mean and standard deviation", traced=True
    )


@dataclass(frozen=True)
class PETSConfig(ExperimentConfig):
    """One PETS configuration: the loop, the ensemble and the CEM ``planner``; each
    PETS experiment derives its ``Config`` from it with its own defaults (its ``cpu``
    preset) and names its presets in ``PRESETS``."""

    runs: int = setting(5, "independent runs; run i uses seed + i")
    seed: int = setting(0, "the first run's seed")
    trials: int = setting(5, "planned trials after the random-action trial 0")
    trial_length: int = setting(200, "environment steps per trial")
    propagation: Literal["expectation", "ts1", "tsinf"] = setting(
        "tsinf", "how particles move through the ensemble"
    )
    ensemble_size: int = setting(5, "members of the probabilistic ensemble")
    hidden: tuple[int, ...] = setting((200, 200, 200), "hidden layer widths of each member")
    capacity: int = setting(4000, "transitions kept in the model's buffer")
    batch_size: int = setting(32, "model training minibatch size")
    max_epochs: int = setting(50, "most training epochs per refit (early-stopped)")
    planner: CEMConfig = setting(CEMConfig(), "the CEM planner")


def make_experiment(
    env, config: PETSConfig, *, reward_fn=None, termination_fn=None, exploration_weight=0.0
) -> PETS:
    """The PETS loop of ``config`` on ``env`` (planning with the disagreement bonus at
    ``exploration_weight``, 0: PETS itself); the constructors check the settings."""
    space = env.action_space(env.default_params)
    obs_size = env.observation_space(env.default_params).shape[0]
    model = neural_model(
        obs_size,
        space,
        ensemble_size=config.ensemble_size,
        hidden=config.hidden,
        capacity=config.capacity,
        batch_size=config.batch_size,
        max_epochs=config.max_epochs,
        reward_fn=reward_fn,
        termination_fn=termination_fn,
    )
    p = config.planner
    planner = cem(
        space,
        horizon=p.horizon,
        population=p.population,
        elites=p.elites,
        iterations=p.iterations,
        smoothing=p.smoothing,
        particles=p.particles,
    )
    return make_pets(
        env, model, planner, trial_length=config.trial_length, propagation=config.propagation,
        exploration_weight=exploration_weight,
    )  # fmt: skip


def run_pets_experiment(
    name: str, title: str, pets: PETS, config: PETSConfig, *, progress: bool
) -> dict[str, Any]:
    """Run ``pets`` for ``config.runs`` seeds (vmapped) and build the result: curve
    ``PETS`` (mean episode return over seeds per trial) and the planner's own mean
    predicted return per trial as a diagnostic."""
    seeds, keys = seed_keys(config.seed, config.runs)
    outcome = run_pets(pets, keys, config.trials, progress=progress)
    x = np.arange(config.trials + 1)
    return make_result(
        name,
        config=config,
        seeds=seeds,
        timing=outcome.timing,
        x_label="Trial (0: random actions)",
        y_label="Return",
        curves={"PETS": curve(x, outcome.returns)},
        returns_per_seed=outcome.returns.tolist(),
        predicted_return=curve(x[1:], outcome.predicted[:, 1:]),
        plot_style={"title": title},
    )


def summary(result: dict) -> str:
    c = result["curves"]["PETS"]
    lines = [f"{'trial':>6} {'mean return':>12} {'std err':>8}"]
    for x, y, e in zip(c["x"], c["y"], c["y_err"], strict=True):
        lines.append(f"{int(x):>6} {y:>12.1f} {e:>8.1f}")
    lines.append(timing_line(result))
    return "\n".join(lines)

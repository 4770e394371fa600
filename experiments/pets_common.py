"""What the PETS experiments share: their settings, presets, and one runner that
writes the result in the common format (curve ``PETS``: mean return over seeds
against the trial number; trial 0 is the random-action trial)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from mbrl_jax.models import neural_model
from mbrl_jax.pets import make_pets, run_pets
from mbrl_jax.planners import cem
from mbrl_jax.results import curve, make_result, timing_line
from mbrl_jax.sweep import seed_keys
from mbrl_jax.validation import check_count


@dataclass(frozen=True)
class PETSSettings:
    """One PETS configuration: the loop, the CEM planner and the ensemble."""

    trials: int
    horizon: int
    population: int
    elites: int
    iterations: int
    particles: int
    ensemble_size: int = 5
    hidden: tuple[int, ...] = (200, 200, 200)
    smoothing: float = 0.1  # CEM's smoothing of its mean and standard deviation
    propagation: str = "tsinf"
    trial_length: int = 200
    capacity: int = 4000
    batch_size: int = 32
    max_epochs: int = 50


def settings_for(presets: dict[str, PETSSettings], preset: str | None, **overrides):
    """The named preset (default ``"cpu"``) with ``overrides`` applied; clear errors for
    unknown presets."""
    name = preset or "cpu"
    if name not in presets:
        raise ValueError(f"unknown preset {name!r}; available: {', '.join(presets)}")
    return replace(presets[name], **{k: v for k, v in overrides.items() if v is not None})


def run_pets_experiment(
    name: str,
    title: str,
    env,
    settings: PETSSettings,
    *,
    runs: int,
    seed: int,
    progress: bool,
    preset: str,
    reward_fn=None,
    termination_fn=None,
) -> dict[str, Any]:
    """Run PETS with ``settings`` on ``env`` for ``runs`` seeds (vmapped) and build the
    result: curve ``PETS`` (mean episode return over seeds per trial) and the
    planner's own mean predicted return per trial as a diagnostic."""
    check_count("runs", runs, minimum=1)
    space = env.action_space(env.default_params)
    obs_size = env.observation_space(env.default_params).shape[0]
    model = neural_model(
        obs_size,
        space,
        ensemble_size=settings.ensemble_size,
        hidden=settings.hidden,
        capacity=settings.capacity,
        batch_size=settings.batch_size,
        max_epochs=settings.max_epochs,
        reward_fn=reward_fn,
        termination_fn=termination_fn,
    )
    planner = cem(
        space,
        horizon=settings.horizon,
        population=settings.population,
        elites=settings.elites,
        iterations=settings.iterations,
        smoothing=settings.smoothing,
        particles=settings.particles,
    )
    pets = make_pets(
        env, model, planner, trial_length=settings.trial_length, propagation=settings.propagation
    )
    seeds, keys = seed_keys(seed, runs)
    outcome = run_pets(pets, keys, settings.trials, progress=progress)
    x = np.arange(settings.trials + 1)
    return make_result(
        name,
        params={**asdict(settings), "preset": preset, "runs": runs},
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

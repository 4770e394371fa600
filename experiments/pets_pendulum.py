"""PETS on gymnax ``Pendulum-v1`` (swing-up, 200-step episodes): CEM through a
probabilistic ensemble with TSinf particles and the known reward.

The ``cpu`` preset (default) keeps PETS's ensemble (5 members, three hidden
layers of 200) with a planner sized for a 2-core CPU; ``--preset paper`` uses
population 500, 50 elites, 20 particles, sized for a GPU.
"""

from __future__ import annotations

import gymnax

from experiments.pets_common import PETSSettings, run_pets_experiment, settings_for, summary
from mbrl_jax.envs import pendulum_reward

NAME = "pets-pendulum"
DESCRIPTION = "PETS (CEM + ensemble + TSinf) on Pendulum-v1: return per episode"
PRESETS = {
    "cpu": PETSSettings(trials=10, horizon=20, population=64, elites=8, iterations=4, particles=5),
    "paper": PETSSettings(
        trials=10, horizon=25, population=500, elites=50, iterations=5, particles=20
    ),
}


def run(*, runs: int = 5, seed: int = 0, progress: bool = True, preset: str | None = None, **kw):
    settings = settings_for(PRESETS, preset, **kw)
    env, _ = gymnax.make("Pendulum-v1")
    return run_pets_experiment(
        NAME,
        "PETS on Pendulum-v1",
        env,
        settings,
        runs=runs,
        seed=seed,
        progress=progress,
        preset=preset or "cpu",
        reward_fn=pendulum_reward,
    )


__all__ = ["DESCRIPTION", "NAME", "PRESETS", "run", "summary"]

"""PETS on the continuous cart-pole (Chua et al. 2018): CEM through a probabilistic
ensemble with TSinf particles, the known reward (1 per step) and termination.

The ``cpu`` preset (default) keeps PETS's ensemble (5 members, three hidden
layers of 200, swish) and horizon 15, and shrinks the planner (population 100,
10 elites, 5 particles, 5 iterations) so that 5 seeds x 5 trials run in a few
minutes on a 2-core CPU. ``--preset paper`` uses the paper's planner (population
500, 50 elites, 20 particles), sized for a GPU.
"""

from __future__ import annotations

from experiments.pets_common import PETSSettings, run_pets_experiment, settings_for, summary
from mbrl_jax.envs import ContinuousCartPole, cartpole_reward, cartpole_termination

NAME = "pets-cartpole"
DESCRIPTION = "PETS (CEM + ensemble + TSinf) on the continuous cart-pole: return per trial"
PRESETS = {
    "cpu": PETSSettings(trials=5, horizon=15, population=100, elites=10, iterations=5, particles=5),
    "paper": PETSSettings(
        trials=5, horizon=15, population=500, elites=50, iterations=5, particles=20
    ),
}


def run(*, runs: int = 5, seed: int = 0, progress: bool = True, preset: str | None = None, **kw):
    settings = settings_for(PRESETS, preset, **kw)
    return run_pets_experiment(
        NAME,
        "PETS on the continuous cart-pole",
        ContinuousCartPole(),
        settings,
        runs=runs,
        seed=seed,
        progress=progress,
        preset=preset or "cpu",
        reward_fn=cartpole_reward,
        termination_fn=cartpole_termination,
    )


__all__ = ["DESCRIPTION", "NAME", "PRESETS", "run", "summary"]

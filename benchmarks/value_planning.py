"""Benchmark: the latency per decision of a value-bootstrapped CEM call (a short horizon
through the PETS ensemble, the last state valued by a SAC critic, a few SAC policy
rollouts in the population) against PETS's horizon-15 call, on this machine.

    python -m benchmarks.value_planning [--repeats 10] [--horizons 3,5] [--populations 256,512]
    python -m benchmarks.value_planning --quick     # tiny sizes, a smoke test

The task is the continuous cart-pole of benchmarks/planning.py (obs 4, action 1, known
reward and termination). The value-bootstrapped call: CEM with ``iterations`` rounds,
``elites`` elites, ``particles`` TSinf particles per candidate through an ensemble of
5 probabilistic members with two hidden layers of 200 (swish), the states reached after
the horizon valued by :func:`mbrl_jax.learners.sac`'s ``value`` (twin 256 x 256 critics
at the actor's mean action) and ``prior_fraction`` of the population rolled out by its
``policy`` (a 256 x 256 actor). PETS's call is benchmarks/planning.py's (horizon 15,
population 500, 20 particles, 5 iterations, three hidden layers of 200). Networks are
freshly initialized: timing does not depend on what they learned.

Each call is jitted and timed by :func:`mbrl_jax.timing.compile_and_time`: compile time
apart, the median (min, max) of ``--repeats`` calls after warm-ups. "Model steps" counts
rows through the ensemble per decision (candidates x particles x horizon x iterations,
plus the policy rollouts' steps); "value rows" the rows through the critics.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass

import jax

from benchmarks import planning
from benchmarks.tables import ints, md_row
from mbrl_jax.envs import ContinuousCartPole, cartpole_reward, cartpole_termination
from mbrl_jax.learners import sac
from mbrl_jax.models import neural_model
from mbrl_jax.planners import cem
from mbrl_jax.timing import compile_and_time, device_description, versions

OBS_SIZE = 4


@dataclass(frozen=True)
class ValueSetting:
    """Sizes of one value-bootstrapped planning call."""

    horizon: int = 3
    population: int = 256
    elites: int = 32
    iterations: int = 5
    particles: int = 5
    prior_fraction: float = 0.05
    ensemble: int = 5
    hidden: tuple[int, ...] = (200, 200)
    value_hidden: tuple[int, ...] = (256, 256)

    @property
    def prior(self) -> int:
        """Policy sequences per call (the planner's rule: round, at least one)."""
        return max(1, int(self.prior_fraction * self.population + 0.5))

    @property
    def model_steps(self) -> int:
        """Rows through the ensemble per decision: the candidates' rollouts and the
        policy's (horizon - 1 steps each, the last state is not stepped)."""
        search = self.population * self.particles * self.horizon * self.iterations
        return search + self.prior * (self.horizon - 1)

    @property
    def value_rows(self) -> int:
        return self.population * self.particles * self.iterations


QUICK = ValueSetting(population=32, elites=4, iterations=2, hidden=(32, 32), value_hidden=(32,))


def log(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def build_call(setting: ValueSetting, seed: int = 0):
    """The jittable call ``fn(model_state, sac_state, planner_state, obs, key)`` and
    its arguments."""
    space = ContinuousCartPole().action_space()
    model = neural_model(
        OBS_SIZE,
        space,
        ensemble_size=setting.ensemble,
        hidden=setting.hidden,
        reward_fn=cartpole_reward,
        termination_fn=cartpole_termination,
    )
    learner = sac(OBS_SIZE, space, hidden=setting.value_hidden)

    def planner_of(value_fn, policy):
        return cem(
            space,
            horizon=setting.horizon,
            population=setting.population,
            elites=setting.elites,
            iterations=setting.iterations,
            particles=setting.particles,
            gamma=0.99,
            value_fn=value_fn,
            policy=policy,
            prior_fraction=setting.prior_fraction,
        )

    def call(model_state, sac_state, planner_state, obs, key):
        planner = planner_of(
            lambda s: learner.value(sac_state, s), lambda s, k: learner.policy(sac_state, s, k)
        )
        return planner.plan(planner_state, model.step_fn(model_state, "tsinf"), obs, key)

    k_model, k_sac, k_plan, k_obs, k_call = jax.random.split(jax.random.key(seed), 5)
    obs = jax.random.uniform(k_obs, (OBS_SIZE,), minval=-0.05, maxval=0.05)
    planner_state = planner_of(None, None).init(k_plan)
    return call, (model.init(k_model), learner.init(k_sac), planner_state, obs, k_call)


def measure(setting: ValueSetting, repeats: int, warmups: int) -> dict:
    fn, args = build_call(setting)
    _, timing, times = compile_and_time(fn, *args, repeats=repeats, warmups=warmups)
    return {
        "compile_s": timing.compile_s,
        "median_s": times.median_s,
        "min_s": times.min_s,
        "max_s": times.max_s,
        "model_steps": setting.model_steps,
        "value_rows": setting.value_rows,
    }


def print_row(label: str, row: dict, pets_s: float) -> None:
    print(
        md_row(
            label,
            f"{row['compile_s']:.2f}",
            f"{1e3 * row['median_s']:.1f}",
            f"{1e3 * row['min_s']:.1f}",
            f"{1e3 * row['max_s']:.1f}",
            f"{row['model_steps']:,}",
            f"{row['value_rows']:,}",
            f"{pets_s / row['median_s']:.1f}x",
        ),
        flush=True,
    )


def parse_args(argv: list[str] | None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmups", type=int, default=2)
    parser.add_argument("--horizons", default="3,5")
    parser.add_argument("--populations", default="256,512")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    base, pets = ValueSetting(), planning.Setting()
    if args.quick:
        base, pets = QUICK, planning.QUICK
        args.repeats, args.warmups, args.horizons, args.populations = 3, 1, "3", "32"
    log(f"device: {device_description()}; load average (1 min) {os.getloadavg()[0]:.2f}")
    log(f"PETS call: horizon {pets.horizon}, population {pets.population}")
    pets_row = planning.measure_call(pets, args.repeats, args.warmups)
    pets_row = {**pets_row, "model_steps": pets.rows, "value_rows": 0}
    print(f"## Value-bootstrapped CEM against the PETS call (batch 1), {args.repeats} calls\n")
    print(
        f"Device: {device_description()}; jax {versions()['jax']}; load average (1 min) at "
        f"the start {os.getloadavg()[0]:.2f}. Value-bootstrapped: {base.iterations} "
        f"iterations, {base.particles} particles, ensemble {base.ensemble} x "
        f"{'x'.join(map(str, base.hidden))}, SAC critics and actor "
        f"{'x'.join(map(str, base.value_hidden))}, prior fraction {base.prior_fraction}.\n"
    )
    print(
        "| call | compile s | median ms | min ms | max ms | model steps | value rows "
        "| faster than PETS |"
    )
    print("|---|---|---|---|---|---|---|---|")
    label = f"PETS: H={pets.horizon}, N={pets.population}, P={pets.particles}, no value"
    print_row(label, pets_row, pets_row["median_s"])
    for population in ints(args.populations):
        for horizon in ints(args.horizons):
            setting = ValueSetting(
                horizon=horizon,
                population=population,
                elites=max(1, population // 8) if not args.quick else base.elites,
                iterations=base.iterations,
                particles=base.particles,
                hidden=base.hidden,
                value_hidden=base.value_hidden,
            )
            log(f"value-bootstrapped: horizon {horizon}, population {population}")
            row = measure(setting, args.repeats, args.warmups)
            label = f"value + prior: H={horizon}, N={population}, P={setting.particles}"
            print_row(label, row, pets_row["median_s"])
    print()


if __name__ == "__main__":
    main()

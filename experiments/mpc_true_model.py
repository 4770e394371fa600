"""Decision-time planning with a perfect model: random shooting vs CEM vs MPPI vs iCEM on
gymnax ``Pendulum-v1`` (swing-up), return against the planning budget.

Every planner searches through the environment's own dynamics
(:func:`mbrl_jax.planners.env_step_fn`), the upper bound of model-based planning.
The budget is the number of action sequences rolled out per decision: random
shooting draws all of them at once; CEM and MPPI spend it over ``iterations``
rounds of ``budget / iterations`` sequences; iCEM starts from a larger population
that shrinks each round (decay ``icem_decay``, 1.25) so that the rounds add up to
about the same budget. Each (planner, budget) pair is one compiled call of ``runs``
vmapped 200-step episodes; run i uses
``jax.random.key(seed + i)`` for every pair, so all planners start from the same
states.

Sweepable (``mbrl-jax sweep mpc-true-model --grid mppi_temperature=0.3,1,3``): the
static fields (budgets, horizon, ...) are grouped, ``mppi_temperature`` is vmapped.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from typing import Literal

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from mbrl_jax.config import ExperimentConfig, setting
from mbrl_jax.planners import cem, env_step_fn, icem, mppi, random_shooting
from mbrl_jax.results import curve, format_table, make_result
from mbrl_jax.sweep import seed_keys
from mbrl_jax.timing import Timing, compile_and_run
from mbrl_jax.types import Planner
from mbrl_jax.validation import check_count

NAME = "mpc-true-model"
DESCRIPTION = "Random shooting vs CEM, MPPI, iCEM through the true Pendulum-v1: return vs budget"
SCORE_LABEL = "Episode return"
PLANNERS = ("random shooting", "CEM", "MPPI", "iCEM")
PlannerName = Literal["random shooting", "CEM", "MPPI", "iCEM"]


@dataclass(frozen=True)
class Config(ExperimentConfig):
    """The planners, budgets and episodes compared (Pendulum-v1 is fixed)."""

    runs: int = setting(10, "independent runs; run i uses seed + i")
    seed: int = setting(0, "the first run's seed")
    budgets: tuple[int, ...] = setting(
        (16, 64, 256, 1024), "planning budgets: action sequences rolled out per decision"
    )
    planners: tuple[PlannerName, ...] = setting(PLANNERS, "the planners compared, one curve each")
    horizon: int = setting(20, "planning horizon of every planner")
    iterations: int = setting(4, "rounds per decision of CEM, MPPI and iCEM")
    steps: int = setting(200, "environment steps per episode")
    mppi_temperature: float = setting(1.0, "MPPI's temperature", traced=True)
    icem_decay: float = setting(1.25, "iCEM's population decay per round")


def make_planners(space, budget: int, config: Config) -> dict[str, Planner]:
    """The planners of ``config.planners`` at one budget (sequences rolled out per
    decision); their constructors check the settings."""
    horizon, iterations, decay = config.horizon, config.iterations, config.icem_decay
    population = max(budget // iterations, 2)
    # iCEM's rounds shrink as N / decay^i; its first round is sized to spend the budget.
    first = max(int(budget / sum(decay**-i for i in range(iterations))), 2)
    sizes = dict(horizon=horizon, iterations=iterations)
    make = {
        "random shooting": lambda: random_shooting(space, horizon=horizon, population=budget),
        "CEM": lambda: cem(space, population=population, elites=max(population // 10, 2), **sizes),
        "MPPI": lambda: mppi(
            space, population=population, temperature=config.mppi_temperature, **sizes
        ),
        "iCEM": lambda: icem(
            space, population=first, elites=max(first // 10, 1), decay=decay, **sizes
        ),
    }
    return {label: make[label]() for label in config.planners}


def make_episode(env, env_params, planner: Planner, steps: int):
    """``episode(key) -> return`` of one episode acting by ``planner`` through the
    true dynamics (the planner sees the environment state)."""
    step_fn = env_step_fn(env, env_params)

    def episode(key):
        k_reset, k_plan, k_steps = jax.random.split(key, 3)
        _, state = env.reset_env(k_reset, env_params)

        def body(carry, k):
            state, planner_state, total = carry
            k_act, k_env = jax.random.split(k)
            action, planner_state, _ = planner.plan(planner_state, step_fn, state, k_act)
            _, state, reward, _, _ = env.step_env(k_env, state, action, env_params)
            return (state, planner_state, total + reward), None

        init = (state, planner.init(k_plan), jnp.zeros(()))
        (_, _, total), _ = jax.lax.scan(body, init, jax.random.split(k_steps, steps))
        return total

    return episode


def check(config: Config) -> None:
    """Raise ValueError for settings the planners do not accept (before anything runs)."""
    check_count("iterations", config.iterations, minimum=1)
    check_count("steps", config.steps, minimum=1)
    if not config.budgets:
        raise ValueError("budgets must list at least one budget, got none")
    for budget in config.budgets:
        check_count("budget", budget, minimum=config.iterations)
    if not config.planners or len(set(config.planners)) != len(config.planners):
        raise ValueError(f"planners must list distinct planners, got {config.planners!r}")
    env, env_params = gymnax.make("Pendulum-v1")
    for budget in config.budgets:
        make_planners(env.action_space(env_params), budget, config)


def train(config: Config, key: jax.Array) -> dict[str, jax.Array]:
    """One episode of every planner at every budget from ``key`` (all start from the
    same state): ``{planner: returns (len(budgets),)}``."""
    env, env_params = gymnax.make("Pendulum-v1")
    returns: dict[str, list[jax.Array]] = {label: [] for label in config.planners}
    for budget in config.budgets:
        for label, planner in make_planners(env.action_space(env_params), budget, config).items():
            returns[label].append(make_episode(env, env_params, planner, config.steps)(key))
    return {label: jnp.stack(values) for label, values in returns.items()}


def score(config: Config, metrics: dict[str, jax.Array]) -> dict[str, np.ndarray]:
    """Per run, each episode return: ``return`` for one planner and one budget, else
    prefixed by the planner (``CEM return``) and suffixed by the budget
    (``return, budget=64``) where there are several."""
    out = {}
    for label, values in metrics.items():
        values = np.asarray(values)
        for i, budget in enumerate(config.budgets):
            name = "return" if len(metrics) == 1 else f"{label} return"
            name += f", budget={budget}" if len(config.budgets) > 1 else ""
            out[name] = values[..., i]
    return out


def run(config: Config = Config(), *, progress: bool = True) -> dict:
    """Every (budget, planner) pair is one compiled call of :func:`train` with that
    budget and planner alone, vmapped over the runs."""
    check(config)
    seeds, keys = seed_keys(config.seed, config.runs)
    returns: dict[str, list[np.ndarray]] = {}
    timing = Timing()
    pairs = [(b, label) for b in config.budgets for label in config.planners]
    for budget, label in tqdm(pairs, desc=NAME, unit="group", disable=not progress):
        one = replace(config, budgets=(budget,), planners=(label,))
        totals, group_timing = compile_and_run(jax.vmap(partial(train, one)), keys)
        timing += group_timing
        returns.setdefault(label, []).append(np.asarray(totals[label][:, 0]))
    curves = {
        label: curve(np.asarray(config.budgets), np.stack(per_budget, axis=1))
        for label, per_budget in returns.items()
    }
    return make_result(
        NAME,
        config=config,
        seeds=seeds,
        timing=timing,
        x_label="Planning budget (action sequences rolled out per step)",
        y_label="Episode return",
        curves=curves,
        plot_style={"log_x": True, "title": "Planning with the true model: Pendulum-v1"},
    )


def summary(result: dict) -> str:
    return format_table(result, result["config"]["budgets"], "budget")

"""Decision-time planning with a perfect model: random shooting vs CEM vs MPPI vs iCEM on
gymnax ``Pendulum-v1`` (swing-up), return against the planning budget.

Every planner searches through the environment's own dynamics
(:func:`mbrl_jax.planners.env_step_fn`), the upper bound of model-based planning.
The budget is the number of action sequences rolled out per decision: random
shooting draws all of them at once; CEM and MPPI spend it over ``iterations``
rounds of ``budget / iterations`` sequences; iCEM starts from a larger population
that shrinks each round (decay 1.25) so that the rounds add up to about the same
budget. Each (planner, budget) pair is one
compiled call of ``runs`` vmapped 200-step episodes; run i uses
``jax.random.key(seed + i)`` for every pair, so all planners start from the same
states.
"""

from __future__ import annotations

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from mbrl_jax.planners import cem, env_step_fn, icem, mppi, random_shooting
from mbrl_jax.results import curve, format_table, make_result
from mbrl_jax.sweep import seed_keys
from mbrl_jax.timing import Timing, compile_and_run
from mbrl_jax.types import Planner
from mbrl_jax.validation import check_count

NAME = "mpc-true-model"
DESCRIPTION = "Random shooting vs CEM, MPPI, iCEM through the true Pendulum-v1: return vs budget"
PLANNERS = ("random shooting", "CEM", "MPPI", "iCEM")
DECAY = 1.25
BUDGETS = (16, 64, 256, 1024)


def make_planners(space, budget: int, horizon: int, iterations: int) -> dict[str, Planner]:
    """The four planners at one budget (sequences rolled out per decision)."""
    population = max(budget // iterations, 2)
    # iCEM's rounds shrink as N / decay^i; its first round is sized to spend the budget.
    first = max(int(budget / sum(DECAY**-i for i in range(iterations))), 2)
    sizes = dict(horizon=horizon, iterations=iterations)
    return {
        "random shooting": random_shooting(space, horizon=horizon, population=budget),
        "CEM": cem(space, population=population, elites=max(population // 10, 2), **sizes),
        "MPPI": mppi(space, population=population, temperature=1.0, **sizes),
        "iCEM": icem(space, population=first, elites=max(first // 10, 1), decay=DECAY, **sizes),
    }


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


def run(
    *,
    runs: int = 10,
    seed: int = 0,
    progress: bool = True,
    budgets: tuple[int, ...] = BUDGETS,
    horizon: int = 20,
    iterations: int = 4,
    steps: int = 200,
) -> dict:
    check_count("runs", runs, minimum=1)
    iterations = check_count("iterations", iterations, minimum=1)
    if not budgets:
        raise ValueError("budgets must list at least one budget, got none")
    for budget in budgets:
        check_count("budget", budget, minimum=iterations)
    env, env_params = gymnax.make("Pendulum-v1")
    space = env.action_space(env_params)
    seeds, keys = seed_keys(seed, runs)
    returns: dict[str, list[np.ndarray]] = {}
    timing = Timing()
    pairs = [(b, label) for b in budgets for label in PLANNERS]
    for budget, label in tqdm(pairs, desc=NAME, unit="group", disable=not progress):
        planner = make_planners(space, budget, horizon, iterations)[label]
        episode = make_episode(env, env_params, planner, steps)
        totals, group_timing = compile_and_run(jax.vmap(episode), keys)
        timing += group_timing
        returns.setdefault(label, []).append(np.asarray(totals))
    curves = {
        label: curve(np.asarray(budgets), np.stack(per_budget, axis=1))
        for label, per_budget in returns.items()
    }
    return make_result(
        NAME,
        params=dict(
            env="Pendulum-v1",
            budgets=list(budgets),
            horizon=horizon,
            iterations=iterations,
            steps=steps,
            runs=runs,
            mppi_temperature=1.0,
        ),
        seeds=seeds,
        timing=timing,
        x_label="Planning budget (action sequences rolled out per step)",
        y_label="Episode return",
        curves=curves,
        plot_style={"log_x": True, "title": "Planning with the true model: Pendulum-v1"},
    )


def summary(result: dict) -> str:
    return format_table(result, result["params"]["budgets"], "budget")

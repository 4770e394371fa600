"""Benchmark: the latency of one decision of each tabular decision-time planner, and the
whole chapter-8 decision-time experiments (compile and run apart).

    python -m benchmarks.tabular_planning [--repeats 20] [--batch 1000]
    python -m benchmarks.tabular_planning --no-experiments   # only the planners
    python -m benchmarks.tabular_planning --quick            # small sizes, a smoke test

Each planner plans from a state of the Dyna maze through a sample model that has seen
every move once, its leaves valued by a random Q-table, at its default budget:
``heuristic_search`` depth 2 (20 model calls), ``rollout_planner`` 8 random rollouts
of 10 steps per action (320), ``tabular_mcts`` 32 simulations (32). One jitted call
plans for 1 state, and one for ``--batch`` states vmapped (keys and states differ per
row). Times are the median (min, max) of ``--repeats`` calls after one warm-up, each
blocked until ready; compile time is apart. The experiments (``racetrack-rtdp``,
``decision-time-maze``) run once at their defaults; their compile and run seconds are
their own ``result["timing"]`` and wall is the whole ``run`` call.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.tables import md_row
from mbrl_jax.envs import dyna_maze
from mbrl_jax.models import tabular_sample_model
from mbrl_jax.planners import heuristic_search, rollout_planner, tabular_mcts
from mbrl_jax.timing import compile_and_time, device_description, versions
from mbrl_jax.types import Transition

PLANNERS = {
    "heuristic_search": heuristic_search,
    "rollout_planner": rollout_planner,
    "tabular_mcts": tabular_mcts,
}


def log(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def seen_maze_model():
    """The Dyna maze and a sample model that has seen every move of it once."""
    env = dyna_maze()
    params = env.default_params
    model = tabular_sample_model(env.num_states, env.num_actions)
    cells, actions = (x.ravel() for x in np.meshgrid(env.open_cells(), np.arange(4)))
    nxt, r, done = jax.vmap(env.transition, in_axes=(0, 0, None))(cells, actions, params)

    def learn(state, transition):
        return model.update(state, transition, None), None

    state, _ = jax.lax.scan(learn, model.init(None), Transition(cells, actions, r, nxt, done))
    return env, functools.partial(model.sample, state)


def planner_rows(batch: int, repeats: int) -> list[str]:
    env, model_fn = seen_maze_model()
    q = jax.random.uniform(jax.random.key(0), (env.num_states, env.num_actions))
    open_cells = jnp.asarray(env.open_cells(), jnp.int32)
    rows = []
    for name, factory in PLANNERS.items():
        planner = factory(env.num_states, env.num_actions)

        def plan(obs, key, planner=planner):
            return planner.plan(q, model_fn, obs, key)

        keys = jax.random.split(jax.random.key(1), batch)
        states = open_cells[jnp.arange(batch) % open_cells.shape[0]]
        (_, _, info), one, times_one = compile_and_time(
            plan, open_cells[0], keys[0], repeats=repeats, warmups=1
        )
        _, many, times_many = compile_and_time(
            jax.vmap(plan), states, keys, repeats=repeats, warmups=1
        )
        log(f"{name}: 1 state {times_one.median_s * 1e6:.0f} us, {batch} states "
            f"{times_many.median_s * 1e3:.2f} ms")  # fmt: skip
        rows.append(
            md_row(
                name,
                int(info.model_calls),
                f"{one.compile_s:.2f}",
                f"{times_one.median_s * 1e6:.0f} ({times_one.min_s * 1e6:.0f}, "
                f"{times_one.max_s * 1e6:.0f})",
                f"{many.compile_s:.2f}",
                f"{times_many.median_s * 1e3:.2f} ({times_many.min_s * 1e3:.2f}, "
                f"{times_many.max_s * 1e3:.2f})",
                f"{times_many.median_s / batch * 1e6:.1f}",
            )
        )
    return rows


def experiment_rows(names: list[str]) -> list[str]:
    import experiments

    rows = []
    for name in names:
        log(f"running {name} ...")
        start = time.perf_counter()
        result = experiments.load(name).run(progress=False)
        wall = time.perf_counter() - start
        t = result["timing"]
        rows.append(
            md_row(
                name,
                result["config"]["runs"],
                f"{t['compile_s']:.1f}",
                f"{t['run_s']:.1f}",
                f"{wall:.1f}",
            )  # fmt: skip
        )
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--no-experiments", action="store_true")
    parser.add_argument("--quick", action="store_true", help="batch 16, 3 repeats, no experiments")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.quick:
        args.batch, args.repeats, args.no_experiments = 16, 3, True
    log(f"{device_description()}; load average {os.getloadavg()[0]:.2f}")
    log(", ".join(f"{k} {v}" for k, v in versions().items()))
    print("## One decision of a tabular planner (Dyna maze, seen sample model)\n")
    print(md_row("planner", "model calls", "compile s (1)", "µs, 1 state: median (min, max)",
                 f"compile s ({args.batch})", f"ms, {args.batch} states: median (min, max)",
                 "µs per decision, batched"))  # fmt: skip
    print(md_row(*["---"] * 7))
    for row in planner_rows(args.batch, args.repeats):
        print(row)
    if not args.no_experiments:
        print("\n## Whole experiments (defaults)\n")
        print(md_row("experiment", "runs", "compile s", "run s", "wall s"))
        print(md_row(*["---"] * 5))
        for row in experiment_rows(["racetrack-rtdp", "decision-time-maze"]):
            print(row)
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

"""Benchmark: prioritized-sweeping planning updates per second as the maze grows,
for the blocked priority queue (block ~ sqrt(capacity)) against a dense one
(one argmax over every pair), and the time of the Example 8.4 experiment.

    python -m benchmarks.prioritized_sweeping [--runs 10] [--repeats 5] [--updates 2000]

Planning throughput is measured on a busy queue: the agent first learns the
maze's model from a random walk of ``4 * states`` steps (every pair seen), then
every pair is queued with a random priority and ``--updates`` planning updates
(pop, model, Q-update, predecessor pushes) run in one ``lax.fori_loop``, vmapped
over ``--runs`` independent runs. Compile time is reported apart from run time;
run time is the median of ``--repeats`` calls.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp

from experiments import prioritized_sweeping as example_8_4
from mbrl_jax.dyna import DynaState, dyna, planning_updates
from mbrl_jax.envs import dyna_maze
from mbrl_jax.learners import q_learning
from mbrl_jax.models import tabular_sample_model
from mbrl_jax.priority_queue import queue_push
from mbrl_jax.search import prioritized
from mbrl_jax.sweep import seed_keys
from mbrl_jax.timing import compile_and_time, device_description, versions
from mbrl_jax.types import Transition


def busy_planning(resolution, block_size: int | None, planning_steps: int):
    """``run(keys) -> DynaState`` that learns the model from a random walk, fills the
    queue, then makes ``planning_steps`` planning updates; and the planning part alone."""
    env = dyna_maze(resolution)
    params = env.default_params
    states, actions = env.num_states, env.num_actions
    model = tabular_sample_model(states, actions)
    learner = q_learning(states, actions, alpha=1.0)
    search = prioritized(states, actions, model, block_size=block_size)
    agent = dyna(learner, model, search, planning_steps=0, direct_rl=False)
    walk = 4 * len(env.open_cells())

    def prepare(key: jax.Array) -> DynaState:
        k_init, k_walk, k_priority = jax.random.split(key, 3)

        def step(carry, k):
            obs, env_state, agent_state = carry
            k_act, k_step = jax.random.split(k)
            action = jax.random.randint(k_act, (), 0, actions)
            next_obs, env_state, reward, terminated, _, info = env.step(
                k_step, env_state, action, params
            )
            t = Transition(obs, action, reward, info["final_observation"], terminated)
            return (next_obs, env_state, agent.update(agent_state, t, k)), None

        obs, env_state = env.reset(k_init, params)
        carry = (obs, env_state, agent.init(k_init))
        (_, _, state), _ = jax.lax.scan(step, carry, jax.random.split(k_walk, walk))
        priorities = jax.random.uniform(k_priority, (states * actions,))
        queue = queue_push(state.search.queue, jnp.arange(states * actions), priorities)
        return state._replace(search=state.search._replace(queue=queue))

    def plan(state: DynaState, key: jax.Array) -> DynaState:
        return planning_updates(learner, model, search, planning_steps, state, key)

    return prepare, plan


def time_planning(
    resolution, block_size, runs: int, repeats: int, updates: int, batch: str = "vmap"
) -> dict:
    """``batch="vmap"`` runs the runs as one batch; ``"map"`` one after another
    (``lax.map``), where the planning ``while_loop`` stays a real loop per run."""
    prepare, plan = busy_planning(resolution, block_size, updates)
    if batch == "vmap":
        plan_runs = jax.vmap(plan)
    else:

        def plan_runs(states, keys):
            return jax.lax.map(lambda args: plan(*args), (states, keys))

    _, keys = seed_keys(0, runs)
    states = jax.block_until_ready(jax.jit(jax.vmap(prepare))(keys))
    out, timing, _ = compile_and_time(plan_runs, states, keys, repeats=repeats)
    made = int((out.updates - states.updates).sum())
    return {
        "compile_s": timing.compile_s,
        "run_s": timing.run_s,
        "updates_per_s": made / timing.run_s,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--sizes", type=int, default=len(example_8_4.RESOLUTIONS))
    parser.add_argument("--example-runs", type=int, default=0, help="also time Example 8.4")
    args = parser.parse_args(argv)
    print(f"device: {device_description()}; versions: {versions()}")
    print(
        f"\n## Prioritized-sweeping planning updates/s ({args.runs} vmapped runs, "
        f"{args.updates} updates each, busy queue)\n"
    )
    print(
        "| states | pairs | compile s | blocked, vmap | dense, vmap | blocked, one run at a "
        "time (lax.map) | dense, lax.map |"
    )
    print("|---|---|---|---|---|---|---|")
    for resolution in example_8_4.RESOLUTIONS[: args.sizes]:
        env = dyna_maze(resolution)
        pairs = env.num_states * env.num_actions
        blocked = time_planning(resolution, None, args.runs, args.repeats, args.updates)
        dense = time_planning(resolution, pairs, args.runs, args.repeats, args.updates)
        mapped = time_planning(resolution, None, args.runs, args.repeats, args.updates, "map")
        dense_mapped = time_planning(
            resolution, pairs, args.runs, args.repeats, args.updates, "map"
        )
        print(
            f"| {len(env.open_cells())} | {pairs} | {blocked['compile_s']:.2f} | "
            f"{blocked['updates_per_s']:,.0f} | {dense['updates_per_s']:,.0f} | "
            f"{mapped['updates_per_s']:,.0f} | {dense_mapped['updates_per_s']:,.0f} |",
            flush=True,
        )
    if args.example_runs:
        config = example_8_4.Config(runs=args.example_runs)
        result = example_8_4.run(config, progress=False)
        print(f"\n## Example 8.4, {args.example_runs} runs\n")
        print(example_8_4.summary(result))
        for group, t in result["timing_per_group"].items():
            print(f"{group}: compile {t['compile_s']:.2f} s, run {t['run_s']:.2f} s")


if __name__ == "__main__":
    main()

"""Benchmark: neural Dyna (Dyna-DQN on CartPole-v1) throughput of the whole vmapped
training run, for 1, 8 and 64 seeds in one call.

    python -m benchmarks.dyna_dqn [--seeds 1,8,64] [--n 0,5] [--steps 1000] [--repeats 3]

Each (n, seeds) is ``jax.jit(jax.vmap(train))`` of a ``make_train`` run of
``--steps`` real steps with the dyna-dqn experiment's CartPole settings (learning
and planning start after 200 steps, so most steps are the steady state). Compile
time is reported apart; run times are medians of ``--repeats`` calls. Env steps/s
counts real steps of all seeds; Q-updates/s counts the DQN's gradient steps (real
replay batches of 64 plus simulated batches of 64), model steps/s the model's
(n = 0 is plain DQN with no model, as the experiment runs it).
The baseline of each row is the 1-seed run of the same n: "x 1 seed" is the
per-seed throughput relative to it. Prints a Markdown table for RESULTS.md.
"""

from __future__ import annotations

import argparse

import jax
import numpy as np

from benchmarks.tables import print_seed_scaling
from experiments.dyna_dqn import Config, make_parts, task_config
from mbrl_jax.envs import make
from mbrl_jax.sweep import seed_keys
from mbrl_jax.timing import compile_and_time, device_description, versions
from mbrl_jax.train import TrainConfig, make_train
from mbrl_jax.validation import check_count

STARTS = 200  # learning_starts and planning_starts: steady state from step 200


def timed_training(n: int, seeds: int, steps: int, repeats: int) -> dict:
    """Compile once, run ``repeats`` times: median seconds and the work done."""
    env, params = make("CartPole-v1")
    config = Config(env="CartPole-v1", planning_starts=STARTS, learning_starts=STARTS)
    parts = make_parts(env, params, n, task_config(config))
    train = make_train(env, parts.agent, TrainConfig(num_steps=steps), params)
    _, keys = seed_keys(0, seeds)
    (state, _), timing, times = compile_and_time(jax.vmap(train), keys, repeats=repeats)
    compile_s, run_s = timing.compile_s, timing.run_s
    q_updates = int(np.asarray(parts.learner_state(state).updates, np.int64).sum())
    model = 0 if parts.model is None else np.asarray(state.model.total_steps, np.int64).sum()
    model_steps = int(model)
    return {
        "n": n,
        "seeds": seeds,
        "steps": steps,
        "compile_s": compile_s,
        "run_s": run_s,
        "run_s_min": times.min_s,
        "run_s_max": times.max_s,
        "env_steps_per_s": seeds * steps / run_s,
        "q_updates_per_s": q_updates / run_s,
        "model_steps_per_s": model_steps / run_s,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,8,64")
    parser.add_argument("--n", default="0,5")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    seed_counts = [check_count("--seeds", int(s), minimum=1) for s in args.seeds.split(",")]
    ns = [check_count("--n", int(n), minimum=0) for n in args.n.split(",")]
    steps = check_count("--steps", args.steps, minimum=STARTS + 1)
    repeats = check_count("--repeats", args.repeats, minimum=1)
    print(f"Device: {device_description()}; versions: {versions()}\n")
    print(f"## Dyna-DQN training throughput (CartPole-v1, {steps} real steps per seed)\n")
    print_seed_scaling(
        "n",
        ("compile s", "run s (median, min-max)", "env steps/s", "Q-updates/s", "model steps/s"),
        ns,
        seed_counts,
        lambda n, seeds: timed_training(n, seeds, steps, repeats),
        lambda r: (
            f"{r['compile_s']:.1f}",
            f"{r['run_s']:.2f} ({r['run_s_min']:.2f}-{r['run_s_max']:.2f})",
            f"{r['env_steps_per_s']:,.0f}",
            f"{r['q_updates_per_s']:,.0f}",
            f"{r['model_steps_per_s']:,.0f}",
        ),
    )


if __name__ == "__main__":
    main()

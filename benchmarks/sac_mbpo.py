"""Benchmark: SAC and MBPO (Pendulum-v1) throughput of the whole vmapped training run, for
1, 8 and 64 seeds in one call.

    python -m benchmarks.sac_mbpo [--seeds 1,8,64] [--g 0,10] [--steps 500] [--repeats 3]
                                  [--threefry jax|unrolled]

Each (G, seeds) is ``jax.jit(jax.vmap(train))`` of a ``make_train`` run of ``--steps``
real steps with the mbpo-pendulum experiment's settings (SAC 128-128, MBPO's ensemble
5 x 200-200-200, 40 rollouts per planning step), learning and planning from step 100
so that most steps are the steady state. MBPO's refits between chunks are not in
these runs (the model stays at its initial fit: the per-step cost is the same);
their cost is the experiment's and reported by it. Compile time is apart; run times
are medians of ``--repeats`` calls. Env steps/s counts real steps of all seeds,
gradient steps/s SAC's updates (real and model minibatches of 256). ``--threefry``:
JAX's own rolled loop on the CPU (the default, what ``mbrl-jax run`` uses) or the hash
lowered unrolled (:func:`mbrl_jax.threefry.use_unrolled_threefry`, opt-in).
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import gymnax
import jax
import numpy as np

from benchmarks.tables import print_seed_scaling
from experiments.mbpo_common import make_parts
from experiments.mbpo_pendulum import Config
from mbrl_jax.sweep import seed_keys
from mbrl_jax.threefry import use_unrolled_threefry
from mbrl_jax.timing import compile_and_time, device_description, versions
from mbrl_jax.train import TrainConfig, make_train
from mbrl_jax.validation import check_count

STARTS = 100


def timed_training(g: int, seeds: int, steps: int, repeats: int) -> dict:
    """Compile once, run ``repeats`` times: median seconds and the work done."""
    env, params = gymnax.make("Pendulum-v1")
    config = replace(Config(), learning_starts=STARTS, eval_every=STARTS)
    parts = make_parts(env, params, g, config, max(steps, config.batch_size))  # replay capacity
    train = make_train(env, parts.agent, TrainConfig(num_steps=steps), params)
    _, keys = seed_keys(0, seeds)
    (state, _), timing, times = compile_and_time(jax.vmap(train), keys, repeats=repeats)
    updates = int(np.asarray(parts.learner_state(state).updates, np.int64).sum())
    return {
        "compile_s": timing.compile_s,
        "run_s": timing.run_s,
        "run_s_min": times.min_s,
        "run_s_max": times.max_s,
        "env_steps_per_s": seeds * steps / timing.run_s,
        "gradient_steps_per_s": updates / timing.run_s,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,8,64")
    parser.add_argument("--g", default="0,10")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threefry", choices=("jax", "unrolled"), default="jax")
    args = parser.parse_args(argv)
    if args.threefry == "unrolled":
        use_unrolled_threefry()
    seed_counts = [check_count("--seeds", int(s), minimum=1) for s in args.seeds.split(",")]
    gs = [check_count("--g", int(g), minimum=0) for g in args.g.split(",")]
    steps = check_count("--steps", args.steps, minimum=STARTS + 1)
    repeats = check_count("--repeats", args.repeats, minimum=1)
    print(f"Device: {device_description()}; versions: {versions()}\n")
    print(
        f"## SAC (G = 0) and MBPO training throughput (Pendulum-v1, {steps} real steps, "
        f"Threefry: {args.threefry})\n"
    )
    print_seed_scaling(
        "G",
        ("compile s", "run s (median, min-max)", "env steps/s", "gradient steps/s"),
        gs,
        seed_counts,
        lambda g, seeds: timed_training(g, seeds, steps, repeats),
        lambda r: (
            f"{r['compile_s']:.1f}",
            f"{r['run_s']:.2f} ({r['run_s_min']:.2f}-{r['run_s_max']:.2f})",
            f"{r['env_steps_per_s']:,.0f}",
            f"{r['gradient_steps_per_s']:,.0f}",
        ),
    )


if __name__ == "__main__":
    main()

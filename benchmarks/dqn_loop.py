"""Benchmark: the library's DQN in ``make_train`` against a plain single-function JAX
DQN (``benchmarks/plain_dqn.py``) in the same run, for 1 and 8 seeds.

    JAX_NUM_CPU_DEVICES=2 python -m benchmarks.dqn_loop [--seeds 1,8] [--steps 3000]
                                  [--rounds 5] [--curve-steps 20000] [--curve-seeds 8]

(``JAX_NUM_CPU_DEVICES``: one CPU device per core, as ``mbrl-jax`` sets it; gymnax starts
JAX's backend on import, so the benchmark cannot set it itself.) The jitted runs of
both use the first device only; the ``run_seeds`` column is ours as the experiments run
it, the seeds sharded across the devices. Each loop is compiled twice: with JAX's
Threefry lowering on the CPU (a rolled loop per random draw) and after
``mbrl_jax.threefry.use_unrolled_threefry()`` (the same random bits, unrolled; opt-in,
nothing in the library calls it); ``run_seeds`` runs after it.

Both run the same algorithm and settings: CartPole-v1, one environment per seed,
double DQN on a 120-84 ReLU network, one Adam step on a 64-transition minibatch per
real step once ``learning_starts`` (200 here, so the timed steps are the steady state)
transitions are stored, a hard target copy every 100 gradient steps; the whole run
jitted and vmapped over seeds. Compile time is reported apart; each round calls both
compiled runs once, alternating, and the table gives the median over rounds of env
steps/s and of the ratio ours/plain within a round (the machine's load shifts both).

The learning-curve check runs both for ``--curve-steps`` steps (learning from step
1000, as the dyna-dqn experiment) and prints the mean training-episode return of the
last 2,000 steps per seed: mean, standard error over seeds, for each. Prints Markdown
tables for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics

import jax
import numpy as np

from benchmarks.plain_dqn import PlainDQN, make_plain_dqn
from benchmarks.tables import ints, md_row
from mbrl_jax.envs import make
from mbrl_jax.learners import dqn
from mbrl_jax.sweep import run_seeds, seed_keys
from mbrl_jax.threefry import use_unrolled_threefry
from mbrl_jax.timing import compile_timed, device_description, run_timed, versions
from mbrl_jax.train import TrainConfig, make_train
from mbrl_jax.types import Agent

WINDOW = 2000  # steps at the end of a run whose episodes give the "return at T steps"


def library_train(settings: PlainDQN, num_steps: int):
    """``train(key) -> (cumulative_reward, episodes)`` of ``mbrl_jax``'s ``dqn`` in
    ``make_train``, with the plain baseline's settings."""
    env, params = make("CartPole-v1")
    learner = dqn(
        env.observation_space(params).shape[0],
        env.action_space(params).n,
        hidden=settings.hidden,
        learning_rate=settings.learning_rate,
        gamma=settings.gamma,
        batch_size=settings.batch_size,
        capacity=settings.capacity,
        learning_starts=settings.learning_starts,
        target_period=settings.target_period,
        epsilon_end=settings.epsilon_end,
        epsilon_steps=settings.epsilon_steps,
        max_grad_norm=settings.max_grad_norm,
    )
    train = make_train(env, Agent(*learner.learner), TrainConfig(num_steps=num_steps), params)

    def curves(key):
        _, metrics = train(key)
        return metrics.cumulative_reward, metrics.episodes

    return curves


def window_return(cumulative_reward: np.ndarray, episodes: np.ndarray) -> np.ndarray:
    """Per seed (rows), the mean return of the episodes that ended in the last
    ``WINDOW`` steps: reward of those steps over episodes finished in them (CartPole
    pays 1 per step, so this is their mean length, up to the partial episodes)."""
    reward = cumulative_reward[:, -1] - cumulative_reward[:, -WINDOW - 1]
    ended = episodes[:, -1] - episodes[:, -WINDOW - 1]
    return reward / np.maximum(ended, 1)


LOOPS = ("ours", "plain", "ours, unrolled", "plain, unrolled", "ours via run_seeds")


def timed_loops(seeds: int, steps: int, rounds: int) -> dict:
    """Both runs compiled for ``seeds`` seeds with JAX's Threefry lowering, then both
    again after :func:`~mbrl_jax.threefry.use_unrolled_threefry` (the same bits), then
    ``rounds`` rounds calling each once, and ours through ``run_seeds`` (the seeds
    sharded over this process's devices; it compiles again each call, and only its run
    seconds count). Ratios are against the plain loop with JAX's lowering, within each
    round."""
    settings = PlainDQN(learning_starts=200)
    seed_list, keys = seed_keys(0, seeds)
    makers = {"ours": library_train, "plain": make_plain_dqn}
    compiled, compile_s = {}, {}
    for suffix in ("", ", unrolled"):
        if suffix:
            use_unrolled_threefry()  # for this process from now on
        for name, make_run in makers.items():
            fn = jax.vmap(make_run(settings, steps))
            compiled[name + suffix], timing = compile_timed(fn, keys)
            compile_s[name + suffix] = timing.compile_s
            run_timed(compiled[name + suffix], keys)  # warm-up
    seconds = {name: [] for name in LOOPS}
    sharded = library_train(settings, steps)
    for _ in range(rounds):
        for name, fn in compiled.items():
            seconds[name].append(run_timed(fn, keys)[1])
        seconds["ours via run_seeds"].append(run_seeds(sharded, seed_list)[1].run_s)
    ratios = {
        name: [p / o for o, p in zip(s, seconds["plain"], strict=True)]
        for name, s in seconds.items()
    }
    return {
        "seeds": seeds,
        "compile_s": compile_s,
        "steps_per_s": {n: seeds * steps / statistics.median(s) for n, s in seconds.items()},
        "ratio": {n: statistics.median(r) for n, r in ratios.items()},
        "ratio_range": {n: (min(r), max(r)) for n, r in ratios.items()},
    }


def learning_curves(steps: int, seeds: int) -> dict[str, np.ndarray]:
    """Return of the last ``WINDOW`` steps per seed, for both, at ``steps`` steps."""
    settings = PlainDQN()
    _, keys = seed_keys(0, seeds)
    out = {}
    for name, fn in (
        ("ours", library_train(settings, steps)),
        ("plain", make_plain_dqn(settings, steps)),
    ):
        total, episodes = jax.jit(jax.vmap(fn))(keys)
        out[name] = window_return(np.asarray(total), np.asarray(episodes))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,8")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--curve-steps", type=int, default=20_000)
    parser.add_argument("--curve-seeds", type=int, default=8)
    args = parser.parse_args(argv)
    print(f"Device: {device_description()}; versions: {versions()}\n")
    print(f"CPU devices: {len(jax.devices())}\n")
    print(f"## DQN in make_train against a plain JAX DQN ({args.steps} steps per seed)\n")
    print(
        "Env steps/s, median over rounds, and in brackets the median ratio to the plain "
        "loop with JAX's lowering within a round (min-max); 'unrolled': after "
        "use_unrolled_threefry().\n"
    )
    print(md_row("seeds", "compile s (ours, plain; unrolled: ours, plain)", *LOOPS))
    print(md_row(*["---"] * (2 + len(LOOPS))))
    for seeds in ints(args.seeds):
        r = timed_loops(seeds, args.steps, args.rounds)
        c = r["compile_s"]
        cells = []
        for name in LOOPS:
            low, high = r["ratio_range"][name]
            cells.append(
                f"{r['steps_per_s'][name]:,.0f} ({r['ratio'][name]:.2f}, {low:.2f}-{high:.2f})"
            )
        compiles = "; ".join(
            f"{c['ours' + suffix]:.1f}, {c['plain' + suffix]:.1f}" for suffix in ("", ", unrolled")
        )
        print(md_row(seeds, compiles, *cells), flush=True)
    if args.curve_steps > WINDOW:
        returns = learning_curves(args.curve_steps, args.curve_seeds)
        print(f"\n## Return of the last {WINDOW} steps at {args.curve_steps} steps\n")
        print(md_row("DQN", "mean return", "s.e. over seeds", "seeds"))
        print(md_row(*["---"] * 4))
        for name, values in returns.items():
            se = np.std(values, ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0.0
            print(md_row(name, f"{np.mean(values):.1f}", f"{se:.1f}", len(values)))


if __name__ == "__main__":
    main()

"""Benchmark: what the in-jit input rules of the tabular parts cost on the planning hot
path (issue 18), against the same loop written without them, in the same run.

    python -m benchmarks.input_checks [--steps 20000] [--runs 1,100] [--repeats 15]

The loop is Dyna-Q's planning: ``--steps`` sequential planning updates, each a sample
of a random seen (s, a) from the last-seen sample model and one Q-learning update
(eq. 6.8) on a (54, 4) table, vmapped over ``--runs`` independent tables. *library*
uses ``tabular_sample_model().sample`` and ``q_learning_update`` (which check their
indices: a NaN rule inside jit, a ``checkify.debug_check``); *plain* is the same
arithmetic written here with bare indexing. The two are timed alternately, median of
``--repeats`` calls each, compile apart; the table gives updates/s and their ratio.
"""

from __future__ import annotations

import argparse
import sys

import jax
import jax.numpy as jnp

from benchmarks.tables import ints, md_row
from mbrl_jax.learners import q_learning_update
from mbrl_jax.models import tabular_sample_model
from mbrl_jax.timing import compile_and_time, device_description, versions
from mbrl_jax.types import Transition

NUM_STATES, NUM_ACTIONS, ALPHA, GAMMA = 54, 4, 0.1, 0.95


def _seen_model(key: jax.Array):
    """A sample model that has seen every pair once, with random outcomes."""
    model = tabular_sample_model(NUM_STATES, NUM_ACTIONS)
    k1, k2 = jax.random.split(key)
    state = model.init(key)
    s, a = jnp.divmod(jnp.arange(NUM_STATES * NUM_ACTIONS), NUM_ACTIONS)
    next_obs = jax.random.randint(k1, s.shape, 0, NUM_STATES)
    reward = jax.random.bernoulli(k2, 0.05, s.shape).astype(jnp.float32)
    seen = Transition(s, a, reward, next_obs, jnp.zeros_like(s, bool))
    state = jax.lax.fori_loop(
        0, s.size, lambda i, st: model.update(st, jax.tree.map(lambda x: x[i], seen), key), state
    )
    return model, state


def _library_step(model, model_state, q, key):
    s, a = jax.random.randint(key, (2,), 0, jnp.array([NUM_STATES, NUM_ACTIONS]))
    return q_learning_update(q, model.sample(model_state, s, a, key), ALPHA, GAMMA)


def _plain_step(model_state, q, key):
    """Eq. 6.8 on the model's last outcome of (s, a), bare indexing, no checks."""
    s, a = jax.random.randint(key, (2,), 0, jnp.array([NUM_STATES, NUM_ACTIONS]))
    r, s2, done = model_state.reward[s, a], model_state.next_obs[s, a], model_state.done[s, a]
    target = r + GAMMA * (1.0 - done) * jnp.max(q[s2])
    return q.at[s, a].add(ALPHA * (target - q[s, a]))


def _planning_loop(steps: int, library: bool):
    def one_run(key):
        model, model_state = _seen_model(key)
        q = jnp.zeros((NUM_STATES, NUM_ACTIONS), jnp.float32)

        def body(i, q):
            step_key = jax.random.fold_in(key, i)
            if library:
                return _library_step(model, model_state, q, step_key)
            return _plain_step(model_state, q, step_key)

        return jax.lax.fori_loop(0, steps, body, q)

    return jax.vmap(one_run)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--runs", type=ints, default=[1, 100])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=3, help="alternations of the two")
    args = parser.parse_args(argv)
    print(f"## Input checks on the planning hot path ({device_description()})\n")
    print(
        f"jax {versions()['jax']}; {args.steps} planning updates per run, "
        f"median of {args.repeats} calls x {args.rounds} alternating rounds\n"
    )
    print(
        md_row(
            "runs",
            "library updates/s",
            "plain updates/s",
            "library / plain",
            "compile s (library, plain)",
        )
    )
    print(md_row(*["---"] * 5))
    for runs in args.runs:
        keys = jax.random.split(jax.random.key(0), runs)
        medians = {True: [], False: []}
        compile_s = {}
        for _ in range(args.rounds):
            for library in (True, False):
                out, timing, _ = compile_and_time(
                    _planning_loop(args.steps, library), keys, repeats=args.repeats
                )
                medians[library].append(timing.run_s)
                compile_s[library] = timing.compile_s
        rate = {k: runs * args.steps / sorted(v)[len(v) // 2] for k, v in medians.items()}
        print(
            md_row(
                runs,
                f"{rate[True] / 1e6:.2f}M",
                f"{rate[False] / 1e6:.2f}M",
                f"{rate[True] / rate[False]:.2f}",
                f"{compile_s[True]:.2f}, {compile_s[False]:.2f}",
            )
        )
        print(f"runs={runs} done", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])

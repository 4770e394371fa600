"""Benchmark: JAX's Threefry lowering on the CPU (a rolled loop) against
:func:`mbrl_jax.threefry.use_unrolled_threefry`, in a step of four draws.

    python -m benchmarks.threefry [--steps 3000] [--rounds 15]

The step splits its key into four and draws a uniform, 64 random bits and 4 normals,
about what a DQN step draws. It runs as a jitted scan of ``--steps`` steps. Both
lowerings are compiled in one process, JAX's first, and called alternately;
the medians over ``--rounds`` calls are printed per step. The two give the same sum
of draws, which is checked. Where this process already lowers Threefry unrolled
(``python -m benchmarks`` after a benchmark that called ``use_unrolled_threefry``),
only the unrolled row is measured, and the output says so.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp

from benchmarks.tables import md_row
from mbrl_jax.threefry import use_unrolled_threefry
from mbrl_jax.timing import device_description, versions


def draws(steps: int):
    def step(key, _):
        key, a, b, c = jax.random.split(key, 4)
        drawn = jax.random.uniform(a) + jax.random.bits(b, (64,))[0] % 7
        return key, drawn + jax.random.normal(c, (4,))[0]

    return jax.jit(lambda key: jax.lax.scan(step, key, None, length=steps)[1].sum())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    key = jax.random.key(0)
    lowered = draws(args.steps).lower(key)
    compiled = {}
    if lowered.as_text().count("stablehlo.while") >= 2:  # the scan's, and the hash's
        compiled["JAX's (rolled)"] = lowered.compile()
    else:  # something in this process called use_unrolled_threefry() already
        print("JAX's rolled lowering not measured: this process lowers Threefry unrolled\n")
    use_unrolled_threefry()
    compiled["unrolled"] = draws(args.steps).lower(key).compile()
    sums = {name: float(fn(key)) for name, fn in compiled.items()}
    if len(set(sums.values())) != 1:
        raise AssertionError(f"the lowerings drew different numbers: {sums}")
    seconds = {name: [] for name in compiled}
    for _ in range(args.rounds):
        for name, fn in compiled.items():
            start = time.perf_counter()
            jnp.asarray(fn(key)).block_until_ready()
            seconds[name].append(time.perf_counter() - start)
    print(f"Device: {device_description()}; versions: {versions()}\n")
    print(md_row("Threefry lowering", "µs per step of 4 draws (median)"))
    print(md_row("---", "---"))
    for name, s in seconds.items():
        print(md_row(name, f"{statistics.median(s) / args.steps * 1e6:.1f}"))


if __name__ == "__main__":
    main()

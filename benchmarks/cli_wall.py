"""Benchmark: the whole-process wall time of ``mbrl-jax run NAME`` (start-up, imports,
compiling, running, plotting and writing included) on a fresh persistent compilation
cache, on the warm cache the fresh run left, and with the cache off.

    python -m benchmarks.cli_wall [--experiment dyna-maze] [--rounds 3] [--set KEY=VALUE ...]

Each round makes an empty cache folder (``MBRL_JAX_CACHE_DIR``), runs the command on
it (fresh), runs it again on the same folder (warm), then once with the cache off.
Times are medians over rounds, with min-max; a warm CSV that differs from the fresh one
is an error. Prints a Markdown table for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.tables import md_row
from mbrl_jax.timing import device_description, versions

#: the cache settings of one round, in the order they run
MODES = ("fresh", "warm", "off")


def timed_run(command: list[str], cache: str, out: Path) -> float:
    """Seconds of one whole ``command --out out`` process with ``MBRL_JAX_CACHE_DIR=cache``;
    RuntimeError (with its stderr) if it fails."""
    env = {**os.environ, "MBRL_JAX_CACHE_DIR": cache}
    start = time.perf_counter()
    done = subprocess.run(
        [*command, "--out", str(out), "--no-progress"], env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
    return seconds


def one_round(command: list[str], folder: Path, experiment: str) -> dict[str, float]:
    """Fresh, warm and cache-off seconds of one round in ``folder``."""
    cache = folder / "cache"
    seconds = {}
    for mode in MODES:
        setting = "off" if mode == "off" else str(cache)
        seconds[mode] = timed_run(command, setting, folder / mode)
    fresh, warm = ((folder / m / f"{experiment}.csv").read_bytes() for m in ("fresh", "warm"))
    if fresh != warm:
        raise RuntimeError(f"the warm run's {experiment}.csv differs from the fresh run's")
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="dyna-maze")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    cli = Path(sys.executable).with_name("mbrl-jax")
    if not cli.exists():
        raise SystemExit(f"no mbrl-jax command beside {sys.executable}: pip install -e . first")
    command = [str(cli), "run", args.experiment]
    for item in args.set:
        command += ["--set", item]
    rounds = []
    for i in range(args.rounds):
        with tempfile.TemporaryDirectory() as folder:
            rounds.append(one_round(command, Path(folder), args.experiment))
        print(f"round {i + 1}: {rounds[-1]}", file=sys.stderr, flush=True)
    print(f"Device: {device_description()}; versions: {versions()}\n")
    print(f"## `{' '.join(['mbrl-jax', *command[1:]])}`, whole process ({args.rounds} rounds)\n")
    print(md_row("cache", "median s", "min-max s"))
    print(md_row("---", "---", "---"))
    for mode in MODES:
        values = [r[mode] for r in rounds]
        spread = f"{min(values):.2f}-{max(values):.2f}"
        print(md_row(mode, f"{statistics.median(values):.2f}", spread))


if __name__ == "__main__":
    main()

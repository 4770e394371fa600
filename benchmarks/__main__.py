"""Run the project's benchmarks and append their tables, as one dated section with
the device and versions, to benchmarks/RESULTS.md (or to ``--out FILE``).

    python -m benchmarks                 # every benchmark at its own default sizes
    python -m benchmarks --quick         # small sizes, a smoke test (about a minute on 2 cores)
    python -m benchmarks --only planning --out /tmp/bench.md

Each benchmark's ``main(argv)`` runs in this process with its stdout (Markdown
tables) captured; its progress lines still go to stderr. The section is appended:
the file's hand-written content is never rewritten.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks import (
    cli_wall,
    dqn_loop,
    dyna_dqn,
    dyna_maze,
    input_checks,
    planning,
    prioritized_sweeping,
    sac_mbpo,
    tabular_planning,
    threefry,
    value_planning,
)
from mbrl_jax.timing import device_description, versions

RESULTS = Path(__file__).with_name("RESULTS.md")

# name -> (main(argv), argv for --quick); the full run passes no arguments.
# dqn_loop and threefry last: they switch the rest of the process to the opt-in unrolled
# Threefry lowering, which nothing else uses; threefry, after dqn_loop, then measures only
# its unrolled row (python -m benchmarks.threefry alone measures both).
BENCHMARKS: dict[str, tuple[Callable[[list[str]], None], list[str]]] = {
    "cli_wall": (cli_wall.main, ["--rounds", "1"]),
    "dyna_maze": (
        dyna_maze.main,
        ["--repeats", "1", "--numpy-runs", "1", "--runs", "10", "--n", "5"],
    ),
    "prioritized_sweeping": (
        prioritized_sweeping.main,
        ["--runs", "2", "--repeats", "1", "--updates", "200", "--sizes", "1"],
    ),
    "planning": (planning.main, ["--quick", "--no-scaling"]),
    "tabular_planning": (tabular_planning.main, ["--quick"]),
    "value_planning": (value_planning.main, ["--quick"]),
    "input_checks": (input_checks.main, ["--steps", "2000", "--repeats", "3", "--rounds", "1"]),
    "dyna_dqn": (dyna_dqn.main, ["--seeds", "1,8", "--n", "0", "--steps", "300", "--repeats", "1"]),
    "sac_mbpo": (sac_mbpo.main, ["--seeds", "1", "--g", "0", "--steps", "150", "--repeats", "1"]),
    "dqn_loop": (
        dqn_loop.main,
        ["--seeds", "1", "--steps", "400", "--rounds", "1", "--curve-steps", "0"],
    ),
    "threefry": (threefry.main, ["--steps", "200", "--rounds", "3"]),
}


def run_benchmark(name: str, quick: bool) -> tuple[str, str]:
    """Run one benchmark; return the command line that reproduces it and its stdout."""
    main, quick_argv = BENCHMARKS[name]
    argv = quick_argv if quick else []
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        main(argv)
    return " ".join(["python -m benchmarks." + name, *argv]), stdout.getvalue()


def demote_headings(text: str, levels: int = 2) -> str:
    """Push Markdown headings ``levels`` deeper, so a benchmark's ``## Table`` nests
    under the section's ``### name`` heading."""
    lines = text.splitlines()
    return "\n".join("#" * levels + line if line.startswith("#") else line for line in lines)


def section(names: list[str], quick: bool) -> str:
    """A dated Markdown section: device, versions, then every benchmark's output."""
    found = versions()
    listed = ", ".join(f"{package} {version}" for package, version in found.items())
    size = "quick sizes (`--quick`)" if quick else "default sizes"
    parts = [
        f"## {time.strftime('%Y-%m-%d %H:%M')} — `python -m benchmarks`, {size}",
        f"Device: {device_description()}; {listed}.",
    ]
    for name in names:
        print(f"benchmark {name}", file=sys.stderr, flush=True)
        command, output = run_benchmark(name, quick)
        parts += [f"### {name} — `{command}`", demote_headings(output.strip())]
    return "\n\n".join(parts) + "\n"


def append_section(text: str, path: Path) -> None:
    """Append ``text`` to ``path`` (created if missing), after a blank line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    before = path.read_text() if path.exists() else ""
    separator = "" if not before else ("\n" if before.endswith("\n") else "\n\n")
    with path.open("a") as f:
        f.write(separator + text)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke test")
    parser.add_argument(
        "--only", default=",".join(BENCHMARKS), help="comma-separated benchmarks to run"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="Markdown file to append to")
    args = parser.parse_args(argv)
    args.only = [name for name in args.only.split(",") if name]
    unknown = [name for name in args.only if name not in BENCHMARKS]
    if unknown or not args.only:
        parser.error(f"--only takes names from {', '.join(BENCHMARKS)}; got {args.only}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    append_section(section(args.only, args.quick), args.out)
    print(f"appended a section to {args.out}")


if __name__ == "__main__":
    main()

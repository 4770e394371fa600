"""Command line: ``mbrl-jax run NAME [--runs N] [--seed S] [--out DIR] [--preset P]``,
``mbrl-jax list``, ``mbrl-jax plot RESULT_JSON``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mbrl-jax", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a reproduced experiment and write its results")
    run.add_argument("name", help="experiment name (see `mbrl-jax list`)")
    run.add_argument("--runs", type=int, default=None, help="independent runs (seeds)")
    run.add_argument("--seed", type=int, default=0, help="first seed; run i uses seed + i")
    run.add_argument("--out", type=Path, default=None, help="output folder (default results/NAME)")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    run.add_argument(
        "--preset", default=None, help="named settings, for experiments that have them (PETS)"
    )
    sub.add_parser("list", help="list the experiments")
    plot = sub.add_parser("plot", help="redraw an experiment's PNG from its result.json")
    plot.add_argument("result", type=Path)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    import experiments

    if args.command == "list":
        for name in experiments.EXPERIMENTS:
            print(f"{name:20s} {experiments.load(name).DESCRIPTION}")
        return 0
    if args.command == "plot":
        from mbrl_jax.results import plot_result

        result = json.loads(args.result.read_text())
        path = args.result.with_name(f"{result['experiment']}.png")
        plot_result(result, path)
        print(f"wrote {path}")
        return 0
    try:
        module = experiments.load(args.name)
        if args.runs is not None and args.runs < 1:
            raise ValueError(f"--runs must be >= 1, got {args.runs}")
        if args.seed < 0:
            raise ValueError(f"--seed must be >= 0, got {args.seed}")
        presets = getattr(module, "PRESETS", {})
        if args.preset is not None and args.preset not in presets:
            allowed = ", ".join(presets) if presets else f"none ({args.name} has no presets)"
            raise ValueError(f"unknown --preset {args.preset!r}; available: {allowed}")
    except ValueError as error:
        print(f"mbrl-jax: error: {error}", file=sys.stderr)
        return 2
    from mbrl_jax.results import write_result

    kwargs = {} if args.runs is None else {"runs": args.runs}
    if args.preset is not None:
        kwargs["preset"] = args.preset
    result = module.run(seed=args.seed, progress=not args.no_progress, **kwargs)
    paths = write_result(result, args.out or Path("results") / args.name)
    print(module.summary(result))
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Command line: ``mbrl-jax run NAME [--runs N] [--seed S] [--out DIR] [--preset P]
[--env ENV] [--profile DIR]``,
``mbrl-jax list``, ``mbrl-jax plot RESULT_JSON``,
``mbrl-jax sweep dyna-maze [--alpha A,...] [--n N,...] [--seeds K] [--chunk-size C]``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mbrl_jax.profiling import add_profile_argument, profile_to


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
    run.add_argument(
        "--env", default=None, help="the task, for experiments that take one (dyna-dqn)"
    )
    add_profile_argument(run)
    _add_sweep_parser(sub)
    sub.add_parser("list", help="list the experiments")
    plot = sub.add_parser("plot", help="redraw an experiment's PNG from its result.json")
    plot.add_argument("result", type=Path)
    return parser


def _add_sweep_parser(sub) -> None:
    sweep = sub.add_parser("sweep", help="a parameter study: hyperparameter grid x seeds")
    sweep.add_argument("name", choices=["dyna-maze"], help="what to sweep (Figure 8.2's Dyna-Q)")
    sweep.add_argument("--alpha", default="0.05,0.1,0.2,0.4", help="step sizes, in (0, 1]")
    sweep.add_argument(
        "--planning-steps", "--n", default="0,5,50", help="planning steps n, integers >= 0"
    )
    sweep.add_argument("--seeds", type=int, default=30, help="runs per setting")
    sweep.add_argument("--seed", type=int, default=0, help="first seed; run i uses seed + i")
    sweep.add_argument("--chunk-size", type=int, default=None, help="most runs per call")
    sweep.add_argument("--out", type=Path, default=None, help="default results/dyna-maze-sweep")
    sweep.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_profile_argument(sweep)


def _numbers(flag: str, text: str, kind: type) -> list:
    """Comma-separated numbers of ``kind``; a clear ValueError otherwise."""
    try:
        return [kind(value) for value in text.split(",") if value.strip()]
    except ValueError:
        raise ValueError(f"{flag} must be comma-separated {kind.__name__}s, got {text!r}") from None


def _sweep(args: argparse.Namespace) -> int:
    from experiments import parameter_study as study
    from mbrl_jax.results import write_result
    from mbrl_jax.sweep import write_csv
    from mbrl_jax.validation import check_count

    try:
        alphas, ns = (
            _numbers("--alpha", args.alpha, float),
            _numbers("--planning-steps", args.planning_steps, int),
        )
        study.check_grid(alphas, ns)
        check_count("--seeds", args.seeds, minimum=1)
        check_count("--seed", args.seed, minimum=0)
        if args.chunk_size is not None:
            check_count("--chunk-size", args.chunk_size, minimum=1)
    except ValueError as error:
        print(f"mbrl-jax: error: {error}", file=sys.stderr)
        return 2
    with profile_to(args.profile):
        result = study.run(
            runs=args.seeds,
            seed=args.seed,
            progress=not args.no_progress,
            alphas=alphas,
            planning_steps=ns,
            chunk_size=args.chunk_size,
        )
    paths = write_result(result, args.out or Path("results") / study.NAME)
    paths["runs"] = paths["csv"].with_name(f"{study.NAME}-runs.csv")
    write_csv(result["per_run"], paths["runs"])
    print(study.summary(result))
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def _own_plot(name: str):
    """The experiment's own ``plot(result, path)`` when it has one (a figure that is
    not only line curves, e.g. policy-snapshot's arrows), else None."""
    import experiments

    if name not in experiments.EXPERIMENTS:
        return None
    return getattr(experiments.load(name), "plot", None)


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
        (_own_plot(result["experiment"]) or plot_result)(result, path)
        print(f"wrote {path}")
        return 0
    if args.command == "sweep":
        return _sweep(args)
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
        tasks = getattr(module, "TASKS", {})
        if args.env is not None and args.env not in tasks:
            allowed = ", ".join(tasks) if tasks else f"none ({args.name} has a fixed task)"
            raise ValueError(f"unknown --env {args.env!r}; available: {allowed}")
    except ValueError as error:
        print(f"mbrl-jax: error: {error}", file=sys.stderr)
        return 2
    from mbrl_jax.results import write_result

    kwargs = {} if args.runs is None else {"runs": args.runs}
    if args.preset is not None:
        kwargs["preset"] = args.preset
    if args.env is not None:
        kwargs["env"] = args.env
    with profile_to(args.profile):
        result = module.run(seed=args.seed, progress=not args.no_progress, **kwargs)
    paths = write_result(
        result, args.out or Path("results") / args.name, plot=getattr(module, "plot", None)
    )
    print(module.summary(result))
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    if args.profile is not None:
        print(f"wrote a jax.profiler trace into {args.profile} (tensorboard --logdir, Perfetto)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

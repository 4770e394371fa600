"""Command line.

- ``mbrl-jax list``: the experiments.
- ``mbrl-jax show NAME [--preset P] [--set field=value ...]``: an experiment's config
  (every field with its type, static or traced, value and doc) and its presets.
- ``mbrl-jax run NAME [--runs N] [--seed S] [--preset P] [--env ENV] [--set field=value ...]
  [--out DIR] [--profile DIR]``: run it and write result.json, NAME.png and NAME.csv.
- ``mbrl-jax sweep NAME --grid field=v1,v2 [--grid ...] [--seeds K] [--seed S] [--set ...]
  [--out DIR]``: a parameter study (static fields grouped, traced ones vmapped); a killed
  sweep run again finishes only its missing groups.
- ``mbrl-jax plot RESULT_JSON``: redraw a result's PNG.
- ``mbrl-jax compare A/result.json B/result.json ... --out DIR``: overlay results.

``run`` and ``sweep`` keep what XLA compiles in JAX's persistent compilation cache, so
running an experiment again compiles nothing: in ``$MBRL_JAX_CACHE_DIR``, by default
``$XDG_CACHE_HOME/mbrl_jax/xla`` (``~/.cache/mbrl_jax/xla``). ``--no-compile-cache``, or
``MBRL_JAX_CACHE_DIR`` set to ``off`` (or ``0``, or empty), switches it off; a folder set
with JAX's own ``JAX_COMPILATION_CACHE_DIR`` is used as it is. Delete the folder to
empty the cache (JAX keys its entries by the program, the jax version and the device,
so a stale entry is never used).

On a CPU they also give JAX one device per core (:func:`mbrl_jax.sweep.use_every_core`;
not where ``XLA_FLAGS`` or ``JAX_NUM_CPU_DEVICES`` set a device count), so that an
experiment's runs, sharded across the devices, keep every core busy.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from types import ModuleType

from mbrl_jax.profiling import add_profile_argument, profile_to


def _parser(help_requested: bool = False) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mbrl-jax", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the experiments")
    show = sub.add_parser("show", help="print an experiment's config: fields, kinds, docs")
    show.add_argument("name", help="experiment name (see `mbrl-jax list`)")
    _add_config_arguments(show)
    _add_run_parser(sub, _experiments_epilog() if help_requested else None)
    _add_sweep_parser(sub)
    plot = sub.add_parser("plot", help="redraw an experiment's PNG from its result.json")
    plot.add_argument("result", type=Path)
    compare = sub.add_parser("compare", help="overlay several results and test their finals")
    compare.add_argument("results", type=Path, nargs="+", help="result.json files")
    compare.add_argument("--out", type=Path, required=True, help="folder for compare.png")
    compare.add_argument("--names", default=None, help="comma-separated names, one per result")
    return parser


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default=None, help="start from a named config")
    parser.add_argument(
        "--set",
        dest="assignments",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a config field (dots for nested fields: planner.horizon=30); repeatable",
    )


def _add_run_parser(sub, epilog: str | None) -> None:
    run = sub.add_parser(
        "run",
        help="run a reproduced experiment and write its results",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("name", help="experiment name (see `mbrl-jax list`)")
    run.add_argument("--runs", type=int, default=None, help="independent runs (--set runs=N)")
    run.add_argument("--seed", type=int, default=None, help="first seed (--set seed=S)")
    run.add_argument("--env", default=None, help="the task, where there is a choice (--set env=)")
    _add_config_arguments(run)
    run.add_argument("--out", type=Path, default=None, help="output folder (default results/NAME)")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _add_cache_argument(run)
    add_profile_argument(run)


def _add_cache_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-compile-cache",
        action="store_true",
        help=f"do not read or write the persistent compilation cache (${CACHE_ENV})",
    )


def _add_sweep_parser(sub) -> None:
    sweep = sub.add_parser("sweep", help="a parameter study: a grid of config fields x seeds")
    sweep.add_argument("name", help="experiment name (see `mbrl-jax list`)")
    sweep.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="FIELD=V1,V2",
        help="values of one config field to sweep; repeatable (the product is run)",
    )
    sweep.add_argument("--alpha", default=None, help="same as --grid alpha=...")
    sweep.add_argument("--planning-steps", "--n", default=None, help="--grid planning_steps=...")
    sweep.add_argument("--seeds", type=int, default=None, help="runs per setting (--set runs=K)")
    sweep.add_argument("--seed", type=int, default=None, help="first seed (--set seed=S)")
    _add_config_arguments(sweep)
    sweep.add_argument("--chunk-size", type=int, default=None, help="most runs per call")
    sweep.add_argument("--out", type=Path, default=None, help="default results/NAME-sweep")
    sweep.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _add_cache_argument(sweep)
    add_profile_argument(sweep)


def _experiments_epilog() -> str:
    """The experiments with their presets and tasks, for ``run --help``."""
    experiments = _experiments()
    lines = ["experiments (mbrl-jax show NAME prints every setting):"]
    for name in experiments.EXPERIMENTS:
        module = experiments.load(name)
        extra = [f"presets: {', '.join(module.PRESETS)}"] if getattr(module, "PRESETS", {}) else []
        tasks = _choices(module.Config, "env")
        if tasks:
            extra.append(f"--env: {', '.join(tasks)}")
        lines.append(f"  {name:22s} {'; '.join(extra)}".rstrip())
    return "\n".join(lines)


def _choices(config_class: type, name: str) -> tuple[str, ...]:
    """The choices of the Literal field ``name`` of ``config_class`` (() if none)."""
    from mbrl_jax.config import choices, settings

    info = settings(config_class()).get(name)
    return () if info is None else choices(info.type)


def _config(module: ModuleType, args: argparse.Namespace, flags: dict) -> object:
    """The experiment's config: its preset (or default), the flags, then each --set."""
    from mbrl_jax.config import override

    presets = getattr(module, "PRESETS", {})
    if args.preset is not None and args.preset not in presets:
        allowed = ", ".join(presets) if presets else f"none ({module.NAME} has no presets)"
        raise ValueError(f"unknown --preset {args.preset!r}; available: {allowed}")
    config = presets[args.preset] if args.preset is not None else module.Config()
    assignments = [f"{field}={value}" for field, value in flags.items() if value is not None]
    if flags.get("env") is not None and not _choices(module.Config, "env"):
        raise ValueError(f"unknown --env {flags['env']!r}; {module.NAME} has a fixed task")
    return override(config, [*assignments, *args.assignments])


def _writable_folder(path: Path, flag: str = "--out") -> Path:
    """``path`` as an existing, writable folder (made if missing); a ValueError naming it
    otherwise, before anything runs."""
    if path.exists() and not path.is_dir():
        raise ValueError(f"{flag} {path} is a file, not a folder; give a folder to write into")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"{flag} {path} cannot be created: {error.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValueError(f"{flag} {path} is not writable")
    return path


def _run(args: argparse.Namespace) -> Callable[[], int]:
    """Check everything ``run`` was given; return the job that runs and writes it."""
    module = _experiments().load(args.name)
    config = _config(module, args, {"runs": args.runs, "seed": args.seed, "env": args.env})
    module.check(config)
    out = _writable_folder(args.out or Path("results") / args.name)

    def job() -> int:
        from mbrl_jax.results import write_result

        with profile_to(args.profile):
            result = module.run(config, progress=not args.no_progress)
        paths = write_result(result, out, plot=getattr(module, "plot", None))
        print(module.summary(result))
        print("wrote " + ", ".join(str(p) for p in paths.values()))
        if args.profile is not None:
            print(f"wrote a jax.profiler trace into {args.profile} (tensorboard, Perfetto)")
        return 0

    return job


def _sweep(args: argparse.Namespace) -> Callable[[], int]:
    """Check the study's experiment, config, grid and folder; return the job."""
    from mbrl_jax.study import check_study, is_sweepable, parse_grid, run_study, write_study
    from mbrl_jax.validation import check_count

    experiments = _experiments()
    module = experiments.load(args.name)
    if not is_sweepable(module):
        sweepable = [n for n in experiments.EXPERIMENTS if is_sweepable(experiments.load(n))]
        raise ValueError(f"{args.name} cannot be swept yet; sweepable: {', '.join(sweepable)}")
    if args.seeds is not None:
        check_count("--seeds", args.seeds, minimum=1)
    config = _config(module, args, {"runs": args.seeds, "seed": args.seed})
    legacy = {"alpha": args.alpha, "planning_steps": args.planning_steps}
    grid = parse_grid(
        config, [*args.grid, *(f"{k}={v}" for k, v in legacy.items() if v is not None)]
    )
    if args.chunk_size is not None:
        check_count("--chunk-size", args.chunk_size, minimum=1)
    check_study(module, config, grid)
    out = _writable_folder(args.out or Path("results") / f"{args.name}-sweep")

    def job() -> int:
        with profile_to(args.profile):
            result, rows = run_study(
                module, config, grid, out, chunk_size=args.chunk_size, progress=not args.no_progress
            )
        paths = write_study(result, rows, out)
        print(_study_summary(result))
        print("wrote " + ", ".join(str(p) for p in paths.values()))
        return 0

    return job


def _study_summary(result: dict) -> str:
    from mbrl_jax.results import timing_line

    lines = [f"{result['x_label']:>14}  " + "  ".join(result["curves"])]
    for i, x in enumerate(next(iter(result["curves"].values()))["x"]):
        cells = []
        for label, c in result["curves"].items():
            y, e = c["y"][i], c["y_err"][i]
            cells.append(f"{'-' if y is None else f'{y:.4g} ({e:.2g})':>{len(label)}}")
        lines.append(f"{x:>14g}  " + "  ".join(cells))
    return "\n".join([*lines, timing_line(result)])


def _show(args: argparse.Namespace) -> Callable[[], int]:
    from mbrl_jax.config import describe

    module = _experiments().load(args.name)
    text = describe(_config(module, args, {}), f"{args.name}: {module.DESCRIPTION}")
    presets = getattr(module, "PRESETS", {})
    if presets:
        text += f"\npresets (--preset): {', '.join(presets)}"
    return partial(_print, text)


def _plot(args: argparse.Namespace) -> Callable[[], int]:
    """Read and check the result (a malformed one is a one-line error); redraw its PNG."""
    from mbrl_jax.results import plot_result, read_result

    experiments = _experiments()
    result = read_result(args.result)
    path = args.result.with_name(f"{result['experiment']}.png")
    own = None
    if result["experiment"] in experiments.EXPERIMENTS:
        own = getattr(experiments.load(result["experiment"]), "plot", None)
    (own or plot_result)(result, path)
    return partial(_print, f"wrote {path}")


def _compare(args: argparse.Namespace) -> Callable[[], int]:
    """Read, check, overlay and test the results (its errors are one line each)."""
    from mbrl_jax.compare import compare

    names = None if args.names is None else [n.strip() for n in args.names.split(",")]
    return partial(_print, compare(args.results, args.out, names=names))


def _list(args: argparse.Namespace) -> Callable[[], int]:
    experiments = _experiments()
    lines = [f"{n:22s} {experiments.load(n).DESCRIPTION}" for n in experiments.EXPERIMENTS]
    return partial(_print, "\n".join(lines))


def _print(text: str) -> int:
    print(text)
    return 0


def _experiments() -> ModuleType:
    """The package of experiments: ``mbrl_jax.experiments`` where installed from a
    wheel, the repository's ``experiments/`` folder in a checkout."""
    try:
        return importlib.import_module("mbrl_jax.experiments")
    except ModuleNotFoundError as error:
        if error.name != "mbrl_jax.experiments":
            raise
        return importlib.import_module("experiments")


CACHE_ENV = "MBRL_JAX_CACHE_DIR"
_OFF = ("", "0", "off", "false", "no")


def compile_cache_dir(environ: os._Environ | dict = os.environ) -> Path | None:
    """The folder of the persistent compilation cache: ``$MBRL_JAX_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/mbrl_jax/xla``, else ``~/.cache/mbrl_jax/xla``; None when
    ``MBRL_JAX_CACHE_DIR`` switches it off (``off``, ``0``, ``false``, ``no`` or empty)."""
    if CACHE_ENV in environ:
        value = environ[CACHE_ENV]
        return None if value.strip().lower() in _OFF else Path(value).expanduser()
    base = environ.get("XDG_CACHE_HOME") or Path("~/.cache").expanduser()
    return Path(base) / "mbrl_jax" / "xla"


def _configure_jax(args: argparse.Namespace) -> None:
    """Before anything touches a device: one CPU device per core and the persistent
    compilation cache (every program, however quick to compile) unless switched off."""
    if args.command not in ("run", "sweep"):
        return
    import jax

    from mbrl_jax.sweep import use_every_core

    use_every_core()
    folder = None if args.no_compile_cache else compile_cache_dir()
    if folder is None:
        jax.config.update("jax_enable_compilation_cache", False)
        return
    if jax.config.jax_compilation_cache_dir is None:
        jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)


_COMMANDS = {
    "list": _list,
    "run": _run,
    "sweep": _sweep,
    "show": _show,
    "plot": _plot,
    "compare": _compare,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, check every input of the command (a clear one-line error and exit
    status 2 for a bad one, before anything runs), then run it."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser(help_requested="-h" in argv or "--help" in argv).parse_args(argv)
    _configure_jax(args)
    try:
        job = _COMMANDS[args.command](args)
    except (ValueError, TypeError) as error:
        print(f"mbrl-jax: error: {error}", file=sys.stderr)
        return 2
    return job()


if __name__ == "__main__":
    sys.exit(main())

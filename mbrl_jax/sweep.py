"""Sweeps: every setting of a hyperparameter grid times every seed of a whole
training run, as vmapped calls sharded across the local devices (DESIGN.md
"Training runs are functions").

``sweep(train, grid, seeds, static=("n",))`` runs ``train(key, **setting)`` for
each setting and seed, where ``key = jax.random.key(seed)``. Hyperparameters
named in ``static`` (those that change shapes or loop bounds, e.g. planning
steps) are passed as Python values: the settings are grouped by them and each
group is traced and compiled once. All other hyperparameters are traced: within
a group, settings and seeds are flattened into one leading *runs* axis and
vmapped, so ``train`` must accept traced scalars for them.

The runs axis is sharded across ``jax.devices()`` (a 1-D mesh named ``"runs"``);
the same code runs on one CPU or eight GPUs. With ``jax.distributed`` initialised,
``jax.devices()`` spans all processes, each process computes the shards of its
own devices, and the results are gathered on every process.

XLA runs a computation of one CPU device on one core, so on a CPU call
:func:`use_every_core` before anything else touches JAX (the ``mbrl-jax`` command
does): the backend then has one device per core and the runs axis keeps every core
busy. :func:`run_seeds` is the one-group case: ``train(key)`` vmapped over seeds,
sharded the same way (what the experiments use for their runs).
"""

from __future__ import annotations

import csv
import inspect
import itertools
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from tqdm import tqdm

from mbrl_jax.timing import Timing, cost_analysis
from mbrl_jax.train import TrainLoop, run_in_lanes
from mbrl_jax.validation import check_count

Grid = Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class SweepResult:
    """What a sweep returns.

    ``metrics`` is ``train``'s output pytree with numpy leaves of shape
    ``(num_settings, num_seeds, *per_run_shape)``; ``axes`` names the two leading
    axes. ``settings[i]`` is the setting of index i along the first axis,
    ``seeds[j]`` the seed along the second. ``timing`` sums the groups' seconds of
    tracing and compiling, of running (results copied to the host), and XLA's
    cost analysis of each group's compiled function.
    """

    settings: list[dict[str, Any]]
    seeds: list[int]
    metrics: Any
    timing: Timing
    runs_per_call: list[int]  # per static group: runs in one compiled call (chunking)
    axes: tuple[str, str] = ("setting", "seed")

    def rows(self) -> list[dict[str, Any]]:
        """One tidy row per (setting, seed): the setting's values, ``seed``, and one
        column per metric leaf; a leaf with a per-run shape gets one column per
        element, ``name[i]`` (``name[i,j]`` for more axes)."""
        named = [(_leaf_name(path), np.asarray(leaf)) for path, leaf in _leaves(self.metrics)]
        out = []
        for i, setting in enumerate(self.settings):
            for j, seed in enumerate(self.seeds):
                row = {**setting, "seed": seed}
                for name, leaf in named:
                    row.update(_columns(name, leaf[i, j]))
                out.append(row)
        return out


def expand_grid(grid: Grid) -> list[dict[str, Any]]:
    """The settings of ``grid``: the Cartesian product of a dict ``name -> values``
    (the last name varying fastest), or a list of settings as given. Raises
    ValueError for an empty grid, an empty list of values, a value given twice,
    a setting given twice, or settings that do not all name the same hyperparameters."""
    if isinstance(grid, Mapping):
        for name, values in grid.items():
            if isinstance(values, str) or not isinstance(values, Sequence) or not values:
                raise ValueError(
                    f"grid[{name!r}] must be a non-empty list of values, got {values!r}"
                )
            duplicate = _first_duplicate(values)
            if duplicate is not None:
                raise ValueError(
                    f"grid[{name!r}] gives the value {duplicate!r} more than once "
                    f"({list(values)!r}); each value must appear once (it would run twice "
                    "and count as independent runs)"
                )
        settings = [
            dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())
        ]
    else:
        settings = [dict(setting) for setting in grid]
    if not settings or not settings[0]:
        raise ValueError(f"the grid is empty: {grid!r}; give at least one hyperparameter and value")
    names = set(settings[0])
    for setting in settings:
        if set(setting) != names:
            raise ValueError(
                f"every setting must name the same hyperparameters {sorted(names)}, got {setting}"
            )
    duplicate = _first_duplicate(settings)
    if duplicate is not None:
        raise ValueError(
            f"the grid gives the setting {duplicate} more than once; each setting must "
            "appear once (it would run twice and count as independent runs)"
        )
    return settings


def _first_duplicate(values: Sequence[Any]) -> Any:
    """The first value equal to an earlier one (None when all differ): by hashing
    when every value is hashable, else by comparing pairs (arrays)."""
    seen: set = set()
    try:
        for value in values:
            key = _hashable(value)
            if key in seen:
                return value
            seen.add(key)
        return None
    except TypeError:
        pass
    for i, value in enumerate(values):
        if any(_equal(value, earlier) for earlier in values[:i]):
            return value
    return None


def _hashable(value: Any) -> Any:
    """``value`` itself, or a dict as a hashable tuple of its items; TypeError for
    anything unhashable (an array)."""
    if isinstance(value, Mapping):
        return tuple(sorted((key, _hashable(v)) for key, v in value.items()))
    hash(value)
    return value


def _equal(a: Any, b: Any) -> bool:
    """``a == b`` for scalars, arrays, lists and dicts of them (False when not comparable)."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    try:
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    except (TypeError, ValueError):
        return False


def check_names(train: Callable, names: Sequence[str], static: Sequence[str]) -> None:
    """Raise ValueError when a name is not a keyword of ``train`` (after its key),
    when ``train`` needs a hyperparameter the grid does not give, or when a
    ``static`` name is not in the grid."""
    params = list(inspect.signature(train).parameters.values())[1:]
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params)
    allowed = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    for name in names:
        if name not in allowed and not takes_any:
            raise ValueError(
                f"unknown hyperparameter {name!r}: train takes {', '.join(allowed) or 'none'}"
            )
    required = [
        p.name
        for p in params
        if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    missing = [name for name in required if name not in names]
    if missing:
        raise ValueError(f"the grid does not give train's hyperparameters {', '.join(missing)}")
    for name in static:
        if name not in names:
            raise ValueError(f"static name {name!r} is not in the grid ({', '.join(names)})")


def sweep(
    train: Callable[..., Any],
    grid: Grid,
    seeds: int | Sequence[int],
    *,
    static: Sequence[str] = (),
    chunk_size: int | None = None,
    memory_budget: int | str | None = "auto",
    progress: bool = False,
) -> SweepResult:
    """Run ``train(jax.random.key(seed), **setting)`` for every setting of ``grid``
    (see :func:`expand_grid`) and every seed (``seeds``: a count, meaning
    ``range(seeds)``, or a list of seeds); the same seeds for every setting.

    ``train`` returns a pytree of arrays (keep only what you need: e.g. the
    metrics of ``make_train(...)(key)``). Settings are grouped by the values of
    the ``static`` names; each group is compiled once, with its traced values
    and seeds vmapped along one runs axis sharded across ``jax.devices()``.

    ``chunk_size`` bounds the runs per compiled call (memory): a group's runs are
    split into chunks run one after another by the same compiled function, with
    results identical to one call. It is rounded down to a multiple of the
    device count (at least one run per device). When the runs of a call do not
    divide evenly across the devices, or the last chunk is short, the runs axis
    is padded with repeats of the group's first runs, whose results are dropped.
    ``progress`` shows a tqdm bar over the runs, per group, with runs/s.

    ``memory_budget`` (bytes per device; ``"auto"``: half of a GPU's memory limit,
    or half of the host's RAM shared by its CPU devices; None: no limit) chunks a
    group whose compiled call would need more: XLA's memory analysis of the call
    run, and the group is recompiled for as many runs as fit. On a CPU a call is
    also cut to what fits in a device's share of the cache (its temporaries, at least
    64 runs per device): out of the cache a vmapped tabular run is much slower. A
    call that fits is compiled once. ``SweepResult.runs_per_call`` tells what was
    chosen.
    """
    settings = expand_grid(grid)
    static = tuple(static)
    check_names(train, list(settings[0]), static)
    seed_list = _seed_list(seeds)
    if chunk_size is not None:
        check_count("chunk_size", chunk_size, minimum=1)
    budget = _memory_budget(memory_budget, jax.devices())
    traced_names = [name for name in settings[0] if name not in static]
    groups = [
        (dict(zip(static, values, strict=True)), indices)
        for values, indices in _groups(settings, static).items()
    ]
    inputs = [
        _run_inputs([settings[i] for i in indices], seed_list, traced_names)
        for _, indices in groups
    ]
    sharding = _runs_sharding(jax.devices())
    outputs: list[tuple[list[int], Any]] = []
    runs_per_call: list[int] = []
    timing = Timing()
    bar = tqdm(total=len(settings) * len(seed_list), unit="run", disable=not progress)
    with bar:
        for (bound, indices), (run_seeds, traced) in zip(groups, inputs, strict=True):
            bar.set_description(" ".join(f"{k}={v}" for k, v in bound.items()) or "runs")
            batch = _batch_size(len(run_seeds), chunk_size, len(sharding.device_set))
            fn = _batched_train(train, bound)
            out, group_timing, batch = _run_group(
                fn, run_seeds, traced, sharding, batch, budget, bar
            )
            outputs.append((indices, out))
            runs_per_call.append(batch)
            timing += group_timing
    metrics = _assemble(outputs, len(settings), len(seed_list))
    return SweepResult(settings, seed_list, metrics, timing, runs_per_call)


def run_seeds(
    train: Callable[[jax.Array], Any] | TrainLoop,
    seeds: Sequence[int],
    *,
    chunk_size: int | None = None,
    memory_budget: int | str | None = "auto",
    lanes: int | None = None,
    progress: bool = False,
) -> tuple[Any, Timing]:
    """``jax.jit(jax.vmap(train))`` over the keys ``jax.random.key(seed)`` of ``seeds``,
    run as :func:`sweep` runs one group: one compile, the runs axis sharded across
    ``jax.devices()``, in chunks (``chunk_size``, ``memory_budget`` as there).

    ``train`` may also be a :class:`~mbrl_jax.train.TrainLoop` (a run measured in
    episodes, :func:`~mbrl_jax.train.make_train_loop`): each device then runs its
    share of the runs through ``lanes`` vmapped lanes (:func:`~mbrl_jax.train.run_in_lanes`:
    a lane that finishes its run starts the next), so that no call waits, masked, for
    its longest run. ``lanes`` defaults to :data:`CPU_LANES` per CPU device and to all
    the runs of a call (no queue) on other devices; a call then takes all the runs
    (``chunk_size`` still bounds it), and ``memory_budget`` is not consulted.

    Returns ``train``'s outputs (a loop's ``result``) as numpy arrays with a leading
    runs axis (in the order of ``seeds``), equal bit for bit to one vmapped call on
    one device, and their :class:`~mbrl_jax.timing.Timing` (compile seconds apart from
    run seconds)."""
    seed_list = _seed_list(list(seeds))
    if chunk_size is not None:
        check_count("chunk_size", chunk_size, minimum=1)
    if lanes is not None:
        check_count("lanes", lanes, minimum=1)
    sharding = _runs_sharding(jax.devices())
    batch = _batch_size(len(seed_list), chunk_size, len(sharding.device_set))
    in_lanes = isinstance(train, TrainLoop)
    if in_lanes:
        budget, fn = None, _lanes_train(train, sharding, lanes)
    else:
        budget, fn = _memory_budget(memory_budget, jax.devices()), _batched_train(train, {})
    run_seeds = np.asarray(seed_list, np.uint32)
    with tqdm(total=len(seed_list), unit="run", disable=not progress) as bar:
        out, timing, _ = _run_group(
            fn, run_seeds, {}, sharding, batch, budget, bar, fit_cache=not in_lanes
        )
    return out, timing


def shard_runs(tree: Any) -> Any:
    """``tree``'s arrays, whose leading axis is the runs, split along it across
    ``jax.devices()`` (the mesh of :func:`run_seeds`), ready for :func:`vmap_runs`;
    returned as they are on one device or when the runs do not divide evenly."""
    devices = jax.devices()
    if not _divides_runs(tree, len(devices)):
        return tree
    return jax.device_put(tree, _runs_sharding(devices))


def vmap_runs(fn: Callable) -> Callable:
    """``jax.vmap(fn)`` over a leading runs axis of every argument, each device of
    ``jax.devices()`` computing its share of the runs on its own (``shard_map``): on the
    CPU, where a computation of one device runs on one core, what keeps every core
    busy in a Python loop of jitted chunks (the neural experiments' runs). One device,
    or runs that do not divide evenly among the devices: plain ``jax.vmap(fn)``. Place
    the first arguments with :func:`shard_runs`; the outputs stay split the same way.
    Each device compiles the program for its share of the runs. Dyna-DQN's DQN runs
    come out bit for bit as on one device (a test, on two devices); with its learned
    model they agree only to rounding, because XLA reduces the model's running
    statistics in another order for 4 runs than for 8 (measured: 1e-5 in ``m2`` after
    400 steps, which training then amplifies)."""
    vmapped = jax.vmap(fn)
    devices = jax.devices()
    spec = PartitionSpec("runs")
    mesh = _runs_sharding(devices).mesh
    split = jax.shard_map(vmapped, mesh=mesh, in_specs=spec, out_specs=spec, check_vma=False)

    def call(*args):
        return (split if _divides_runs(args, len(devices)) else vmapped)(*args)

    return call


def _divides_runs(tree: Any, count: int) -> bool:
    """True when there is more than one device and every array of ``tree`` has a
    leading axis that ``count`` divides."""
    leaves = jax.tree.leaves(tree)
    return count > 1 and all(np.ndim(x) > 0 and np.shape(x)[0] % count == 0 for x in leaves)


#: Lanes per CPU device of a :class:`~mbrl_jax.train.TrainLoop` in :func:`run_seeds`
#: (Dyna-Q n = 50 on the Dyna maze, 1,000 runs on one device: 64 lanes ran fastest
#: of 32-256; benchmarks/RESULTS.md).
CPU_LANES = 64


def _lanes_train(loop: TrainLoop, sharding: NamedSharding, lanes: int | None) -> Callable:
    """``(seeds, traced) -> results``: each device runs its shard of the seeds through
    :func:`~mbrl_jax.train.run_in_lanes` on its own (``shard_map``: no device waits
    for another's runs)."""
    platform = next(iter(sharding.device_set)).platform

    def local(seeds):
        count = lanes or (CPU_LANES if platform == "cpu" else seeds.shape[0])
        return run_in_lanes(loop, _keys(seeds), count)

    def runs(seeds, traced):
        del traced
        spec = PartitionSpec("runs")
        run_local = jax.shard_map(
            local, mesh=sharding.mesh, in_specs=spec, out_specs=spec, check_vma=False
        )
        return run_local(seeds)

    return runs


def use_every_core() -> int:
    """Ask for one CPU device per core (``jax_num_cpu_devices``) where that is safe:
    when neither ``--xla_force_host_platform_device_count`` in ``XLA_FLAGS`` nor
    ``JAX_NUM_CPU_DEVICES`` (``jax_num_cpu_devices``) chose a count already, and JAX has
    not initialised its backends (call it first, before any array is made).

    Only the CPU backend changes: a GPU or TPU stays the default device, and a
    computation that is not sharded still runs on the first device, so its results
    do not change. Returns the number of CPU devices asked for, 0 when nothing was
    changed (one core, a count already chosen, or backends already running)."""
    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return 0
    if jax.config.jax_num_cpu_devices >= 0:
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if not cores or cores < 2:
        return 0
    try:
        jax.config.update("jax_num_cpu_devices", cores)
    except RuntimeError:  # the backends are initialised: the count is fixed for this process
        return 0
    return cores


def seed_keys(seed: int, runs: int) -> tuple[list[int], jax.Array]:
    """The seeds ``seed, seed + 1, ..., seed + runs - 1`` and their keys, one per
    run: run i's key is ``jax.random.key(seed + i)``, the key :func:`sweep` gives
    ``train`` for that seed, so any single run can be repeated alone."""
    first = _check_seed("seed", seed)
    count = check_count("runs", runs, minimum=1)
    if first + count - 1 > _MAX_SEED:
        raise ValueError(
            f"the last seed, seed + runs - 1 = {first} + {count} - 1 = {first + count - 1}, "
            f"must be in [0, 2**32 - 1] (at most {_MAX_SEED}); lower seed or runs"
        )
    seeds = list(range(first, first + count))
    return seeds, _keys(np.asarray(seeds, np.uint32))


_MAX_SEED = 2**32 - 1  # seeds become uint32 keys


def _check_seed(name: str, seed: Any) -> int:
    """``seed`` as an int; ValueError unless it is an integer in [0, 2**32 - 1]."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ValueError(f"{name} must be an integer in [0, 2**32 - 1], got {seed!r}")
    if not 0 <= seed <= _MAX_SEED:
        raise ValueError(f"{name} must be in [0, 2**32 - 1] (at most {_MAX_SEED}), got {seed!r}")
    return int(seed)


def _keys(seeds: jax.Array) -> jax.Array:
    """``jax.random.key(seed)`` for each of the uint32 ``seeds``."""
    return jax.vmap(jax.random.key)(seeds)


def write_csv(rows: Sequence[Mapping[str, Any]], path: str | Path) -> None:
    """Write tidy ``rows`` (e.g. :meth:`SweepResult.rows`) as CSV, one column per key."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)


def _seed_list(seeds: int | Sequence[int]) -> list[int]:
    if isinstance(seeds, Sequence):
        if not seeds:
            raise ValueError("seeds must be a count >= 1 or a non-empty list of seeds, got []")
        checked = [_check_seed("seed", s) for s in seeds]
        duplicate = _first_duplicate(checked)
        if duplicate is not None:
            raise ValueError(
                f"seed {duplicate} is given more than once in seeds={list(seeds)!r}; each seed "
                "must appear once (it would run twice and count as independent runs)"
            )
        return checked
    count = check_count("seeds", seeds, minimum=1)
    if count - 1 > _MAX_SEED:
        raise ValueError(f"seeds must be a count of at most 2**32, got {seeds!r}")
    return list(range(count))


def _runs_sharding(devices: Sequence[jax.Device]) -> NamedSharding:
    """The leading (runs) axis split across ``devices``, a 1-D mesh."""
    return NamedSharding(Mesh(np.asarray(devices), ("runs",)), PartitionSpec("runs"))


def _memory_budget(budget: int | str | None, devices: Sequence[jax.Device]) -> int | None:
    """Bytes one device may use for a compiled call (see :func:`sweep`)."""
    if budget is None:
        return None
    if budget != "auto":
        if isinstance(budget, str):
            raise ValueError(f"memory_budget must be bytes, 'auto' or None, got {budget!r}")
        return check_count("memory_budget", budget, minimum=1)
    local = [d for d in devices if d.process_index == jax.process_index()]
    stats = local[0].memory_stats() if local else None
    if stats and "bytes_limit" in stats:
        return stats["bytes_limit"] // 2
    import os

    host_ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return host_ram // 2 // max(1, len(local))


def _call_bytes(compiled) -> int | None:
    """Bytes of one compiled call by XLA's memory analysis (None if unknown)."""
    stats = compiled.memory_analysis()
    if stats is None:
        return None
    return stats.argument_size_in_bytes + stats.output_size_in_bytes + stats.temp_size_in_bytes


def _batch_size(num_runs: int, chunk_size: int | None, num_devices: int) -> int:
    """Runs per compiled call: all of them, or ``chunk_size`` rounded down to a
    multiple of the device count; then rounded up so every device gets as many."""
    if chunk_size is not None:
        num_runs = min(num_runs, max(num_devices, chunk_size // num_devices * num_devices))
    return math.ceil(num_runs / num_devices) * num_devices


def _groups(settings: list[dict[str, Any]], static: tuple[str, ...]) -> dict[tuple, list[int]]:
    """Indices of the settings by their static values, in order of first appearance."""
    groups: dict[tuple, list[int]] = {}
    for i, setting in enumerate(settings):
        values = tuple(setting[name] for name in static)
        try:
            groups.setdefault(values, []).append(i)
        except TypeError:
            raise ValueError(f"static values must be hashable, got {values!r}") from None
    return groups


def _run_inputs(
    group: list[dict[str, Any]], seeds: list[int], traced_names: list[str]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Seeds and traced values per run, run ``i * num_seeds + j`` being setting i, seed j."""
    run_seeds = np.tile(np.asarray(seeds, np.uint32), len(group))
    traced = {}
    for name in traced_names:
        values = np.asarray([setting[name] for setting in group])
        if values.dtype.kind not in "biuf":
            raise ValueError(
                f"hyperparameter {name!r} has non-numeric values {values.tolist()}; "
                "pass it in static=(...)"
            )
        dtype = jax.dtypes.canonicalize_dtype(values.dtype)
        traced[name] = np.repeat(values.astype(dtype), len(seeds))
    return run_seeds, traced


def _batched_train(train: Callable, static_values: dict[str, Any]) -> Callable:
    """``(seeds, traced) -> outputs`` vmapped over runs, static values bound."""

    def one_run(key, traced):
        return train(key, **static_values, **traced)

    def runs(seeds, traced):
        return jax.vmap(one_run)(_keys(seeds), traced)

    return runs


def _run_group(
    fn: Callable,
    run_seeds: np.ndarray,
    traced: dict[str, np.ndarray],
    sharding: NamedSharding,
    batch: int,
    budget: int | None,
    bar: tqdm,
    *,
    fit_cache: bool = True,
) -> tuple[Any, Timing, int]:
    """``fn`` over all runs in chunks of ``batch`` runs (padded with repeated runs;
    fewer when a call of ``batch`` would exceed ``budget`` bytes per device, or on a
    CPU the cache, see :func:`_fitting_batch`): outputs on the host with the padding
    dropped, their timing, the batch used."""
    num_runs = len(run_seeds)
    start = time.perf_counter()
    compiled = _compile(fn, run_seeds, traced, sharding, batch)
    fitting = _fitting_batch(compiled, batch, sharding, budget) if fit_cache else batch
    if fitting < batch:
        fitting = _even_batch(num_runs, fitting, len(sharding.device_set))
        batch = fitting
        compiled = _compile(fn, run_seeds, traced, sharding, batch)
    compiled_at = time.perf_counter()
    padded = np.arange(math.ceil(num_runs / batch) * batch) % num_runs
    outputs, running = [], None
    for first in range(0, len(padded), batch):
        chunk = _chunk(run_seeds, traced, padded[first : first + batch], sharding)
        # Dispatch the next chunk before copying the last one back, so that a device
        # that finished its shard of the last chunk starts on the next at once.
        running, last = (first, compiled(*chunk)), running
        if last is not None:
            outputs.append(_to_host(last[1]))
            bar.update(min(batch, num_runs - last[0]))
    outputs.append(_to_host(running[1]))
    bar.update(min(batch, num_runs - running[0]))
    run_s = time.perf_counter() - compiled_at
    out = jax.tree.map(lambda *xs: np.concatenate(xs)[:num_runs], *outputs)
    return out, Timing(compiled_at - start, run_s, *cost_analysis(compiled)), batch


def _fitting_batch(compiled, batch: int, sharding: NamedSharding, budget: int | None) -> int:
    """The runs per call to use instead of ``batch``: fewer when XLA's memory analysis
    of ``compiled`` says a call needs more than ``budget`` bytes per device, and on a
    CPU fewer when a device's share (at least :data:`CPU_MIN_RUNS_PER_DEVICE` runs)
    would not fit in its share of the cache (:func:`cpu_cache_budget`): a vmapped
    tabular run touches all of its tables at every step, and out of the cache it
    runs at a fraction of the speed (Dyna-Q at 10,000 runs ran at half the rate of
    1,000). A multiple of the device count."""
    num_devices = len(sharding.device_set)
    stats = compiled.memory_analysis()
    if stats is None or batch <= num_devices:
        return batch
    runs_per_device = batch // num_devices
    needed = _call_bytes(compiled)
    if budget is not None and needed > budget:
        runs_per_device = max(1, int(budget // (needed / runs_per_device)))
    if next(iter(sharding.device_set)).platform == "cpu" and stats.temp_size_in_bytes:
        working_set = stats.temp_size_in_bytes / runs_per_device  # the loops' state per run
        fits = int(cpu_cache_budget(num_devices) // working_set)
        runs_per_device = min(runs_per_device, max(CPU_MIN_RUNS_PER_DEVICE, fits))
    return min(batch, runs_per_device * num_devices)


def _even_batch(num_runs: int, most: int, num_devices: int) -> int:
    """Runs per call for as few calls of at most ``most`` runs as cover ``num_runs``,
    spread evenly over the calls (so that the last one is not mostly padding)."""
    calls = math.ceil(num_runs / most)
    return min(most, math.ceil(math.ceil(num_runs / calls) / num_devices) * num_devices)


#: On a CPU, a call gives each device at least this many runs, cache or not: fewer
#: would leave the vectorised loop too short to pay for its per-step overhead.
CPU_MIN_RUNS_PER_DEVICE = 64


def cpu_cache_budget(num_devices: int) -> int:
    """Bytes of one CPU device's share of the largest cache (the L3 on Linux, from
    sysfs; 8 MiB per device where unknown), divided among ``num_devices``."""
    num_devices = check_count("num_devices", num_devices, minimum=1)
    sizes = []
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            text = (index / "size").read_text().strip()
        except OSError:
            continue
        units = {"K": 2**10, "M": 2**20, "G": 2**30}
        sizes.append(int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text))
    if not sizes:
        return 8 * 2**20
    return max(sizes) // num_devices


def _chunk(run_seeds, traced, rows: np.ndarray, sharding: NamedSharding) -> tuple:
    """The inputs of the runs ``rows`` as global arrays sharded over the runs axis."""
    inputs = (run_seeds[rows], {name: values[rows] for name, values in traced.items()})
    return jax.tree.map(lambda x: _put(x, sharding), inputs)


def _compile(fn: Callable, run_seeds, traced, sharding: NamedSharding, batch: int):
    """``fn`` compiled for calls of ``batch`` runs."""
    rows = np.arange(batch) % len(run_seeds)
    example = _chunk(run_seeds, traced, rows, sharding)
    return jax.jit(fn, out_shardings=sharding).lower(*example).compile()


def _put(x: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """A global array from host data every process holds in full."""
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])


_GATHERS = itertools.count()


def _to_host(tree: Any) -> Any:
    """The full arrays as numpy on this process (gathered across processes if several).

    Before gathering, the processes meet at a barrier of the distributed runtime
    with a 10-minute timeout: the gather's first collective sets up its Gloo
    context with a fixed 30 s timeout, which a process still compiling or
    running on a loaded machine can miss."""
    if jax.process_count() > 1:
        from jax._src import distributed  # the runtime's client: no public barrier API

        distributed.global_state.client.wait_at_barrier(
            f"mbrl_jax_sweep_gather_{next(_GATHERS)}", 600_000
        )
        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.device_get(tree)


def _assemble(outputs: list[tuple[list[int], Any]], num_settings: int, num_seeds: int) -> Any:
    """Per-group outputs (runs flattened setting-major) into leaves of shape
    ``(num_settings, num_seeds, ...)`` in the order of the settings."""

    def place(*leaves):
        first = leaves[0]
        out = np.empty((num_settings, num_seeds, *first.shape[1:]), first.dtype)
        for (indices, _), leaf in zip(outputs, leaves, strict=True):
            out[indices] = leaf.reshape(len(indices), num_seeds, *leaf.shape[1:])
        return out

    return jax.tree.map(place, *(out for _, out in outputs))


def _leaves(tree: Any) -> list[tuple[Any, Any]]:
    return jax.tree_util.tree_flatten_with_path(tree)[0]


def _leaf_name(path: Any) -> str:
    return jax.tree_util.keystr(path, simple=True, separator=".") or "value"


def _columns(name: str, values: np.ndarray) -> dict[str, Any]:
    """``{name: value}`` for a scalar, ``{name[i]: value}`` per element otherwise."""
    if values.ndim == 0:
        return {name: values.item()}
    return {f"{name}[{','.join(map(str, i))}]": values[i].item() for i in np.ndindex(values.shape)}

"""Parameter studies of any experiment: a grid over its config's fields x seeds
(``mbrl-jax sweep NAME --grid field=v1,v2 ... --seeds K``).

Every experiment module has ``NAME``, ``Config`` and ``check(config)`` (a ValueError
for settings it cannot run, raised before anything compiles); it can be swept when it
also defines

- ``train(config, key) -> metrics``: one whole run from ``key``; the traced fields of
  ``config`` may be JAX tracers (so one compiled call vmaps them), and
- ``score(config, metrics) -> {name: per-run values}``: what the study compares, computed
  with NumPy from ``metrics`` with any leading axes (e.g. the mean steps per episode);
- ``SCORE_LABEL``, the y label of the study's plot.

:func:`run_study` groups the grid by its static fields (one compile per group), vmaps
the traced ones with :func:`mbrl_jax.sweep.sweep` (sharded across the devices), and
writes each finished group to ``out/groups/`` so that a killed study started again
runs only the groups it had not finished, giving the same CSV as an uninterrupted one.
A group is keyed by the experiment, the config, the grid, the group's values and the
seeds, not by the code: after changing an experiment's code, delete ``out/groups/``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import typing
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from mbrl_jax.config import (
    ExperimentConfig,
    json_value,
    parse_value,
    replace,
    setting_info,
    settings,
    split_assignment,
    to_dict,
)
from mbrl_jax.results import curve, make_result, write_result
from mbrl_jax.sweep import sweep, write_csv
from mbrl_jax.timing import Timing


def is_sweepable(experiment: ModuleType) -> bool:
    """Whether ``experiment`` has the ``train`` and ``score`` a study needs."""
    return all(hasattr(experiment, name) for name in ("train", "score", "SCORE_LABEL"))


def parse_grid(config: ExperimentConfig, assignments: Iterable[str]) -> dict[str, tuple]:
    """``["name=v1,v2", ...]`` as ``{name: (v1, v2)}``, each value parsed as the field's
    type and type-checked. For a list-valued field each value is a list of one
    (``planning_steps=5,10`` sweeps ``(5,)`` and ``(10,)``). An unknown field, a field
    given twice, or a value given twice is a ValueError."""
    grid: dict[str, tuple] = {}
    for assignment in assignments:
        name, text = split_assignment(assignment)
        kind = setting_info(config, name, f" in --grid {assignment!r}").type
        if name in grid:
            raise ValueError(f"--grid gives {name!r} twice; give all its values in one --grid")
        element = _element_type(kind)
        parts = [part.strip() for part in text.split(",")]
        if not text or not all(parts):
            raise ValueError(f"--grid {name} needs comma-separated values, got {text!r}")
        values = tuple(parse_value(name, element or kind, part) for part in parts)
        if element is not None:
            values = tuple((value,) for value in values)
        duplicates = sorted({str(v) for v in values if values.count(v) > 1})
        if duplicates:
            raise ValueError(f"--grid {name} repeats {', '.join(duplicates)}: give each value once")
        for value in values:
            replace(config, {name: value})  # type-checked as the config would be
        grid[name] = values
    if not grid:
        raise ValueError("give at least one --grid field=v1,v2")
    return grid


def run_study(
    experiment: ModuleType,
    config: ExperimentConfig,
    grid: Mapping[str, Sequence[Any]],
    out: str | Path,
    *,
    chunk_size: int | None = None,
    progress: bool = False,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run ``experiment`` for every setting of ``grid`` (field -> values; the product)
    and the seeds ``config.seed .. config.seed + config.runs - 1``, the same seeds for
    every setting. Returns the study's result.json dict and its tidy rows, one per
    (setting, seed) with the experiment's scores. Finished groups are kept in
    ``out/groups/`` and reused when the same study is run again."""
    if not is_sweepable(experiment):
        raise ValueError(f"experiment {experiment.NAME!r} cannot be swept: it has no train/score")
    static = [name for name in grid if not settings(config)[name].traced]
    grouped = [dict(zip(static, values, strict=True)) for values in _product(grid, static)]
    check_study(experiment, config, grid)
    seeds = list(range(config.seed, config.seed + config.runs))
    folder = Path(out) / "groups"
    folder.mkdir(parents=True, exist_ok=True)
    rows, timing = [], Timing()
    for group in grouped:
        group_rows, group_timing = _group(
            experiment, config, grid, group, seeds, folder, chunk_size, progress
        )
        rows += group_rows
        timing += group_timing
    rows = _grid_order(rows, grid)
    return _result(experiment, config, grid, seeds, rows, timing), rows


def _element_type(kind: Any) -> Any:
    """The element type of a ``tuple[T, ...]`` field, else None."""
    return typing.get_args(kind)[0] if typing.get_origin(kind) is tuple else None


def _product(grid: Mapping[str, Sequence[Any]], names: Sequence[str]) -> list[tuple]:
    return list(itertools.product(*(grid[name] for name in names)))


def check_study(experiment: ModuleType, config: ExperimentConfig, grid: Mapping) -> None:
    """Every setting of the grid through the experiment's own ``check`` (a ValueError for
    one it cannot run), before anything runs."""
    for values in _product(grid, list(grid)):
        experiment.check(replace(config, dict(zip(grid, values, strict=True))))


def _group(experiment, config, grid, group, seeds, folder, chunk_size, progress):
    """One static group's rows and timing: read from ``folder`` when this study finished
    it before, else run (one compile) and written there."""
    fingerprint = {
        "experiment": experiment.NAME,
        "config": to_dict(config),
        "grid": {name: json_value(values) for name, values in grid.items()},
        "group": {name: json_value(value) for name, value in group.items()},
        "seeds": seeds,
    }
    digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:16]
    path = folder / f"group-{digest}.json"
    if path.exists():
        try:
            saved = json.loads(path.read_text())
            return saved["rows"], Timing(**saved["timing"])
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(
                f"{path}: a damaged group of this study ({type(error).__name__}: {error}); "
                "delete the file to run its group again"
            ) from None
    traced = {name: list(values) for name, values in grid.items() if name not in group}
    base = replace(config, group)

    def train(key, **setting):
        return experiment.train(replace(base, setting), key)

    study_grid = {**{name: [value] for name, value in group.items()}, **traced}
    result = sweep(
        train, study_grid, seeds, static=list(group), chunk_size=chunk_size, progress=progress
    )
    scores = experiment.score(base, result.metrics)
    rows = [
        {name: json_value(setting[name]) for name in grid}
        | {"seed": seed}
        | {name: _number(values[i, j]) for name, values in scores.items()}
        for i, setting in enumerate(result.settings)
        for j, seed in enumerate(result.seeds)
    ]
    timing = dataclasses.asdict(result.timing)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"fingerprint": fingerprint, "rows": rows, "timing": timing}))
    os.replace(tmp, path)  # a kill mid-write leaves no half group behind
    return rows, Timing(**timing)


def _grid_order(rows: list[dict], grid: Mapping[str, Sequence[Any]]) -> list[dict]:
    """``rows`` sorted as the grid's product (the last field fastest), then by seed."""
    position = {name: [json_value(v) for v in values] for name, values in grid.items()}
    return sorted(rows, key=lambda row: ([position[n].index(row[n]) for n in grid], row["seed"]))


def _result(experiment, config, grid, seeds, rows, timing) -> dict[str, Any]:
    """The study's result.json: one curve per score and setting of the other fields,
    the mean over seeds against the first grid field."""
    x_name, *others = list(grid)
    xs = [_axis_value(v) for v in grid[x_name]]
    scores = list(dict.fromkeys(k for r in rows for k in r if k not in grid and k != "seed"))
    curves = {}
    for rest in _product(grid, others):
        fixed = {n: json_value(v) for n, v in zip(others, rest, strict=True)}
        suffix = ", ".join(f"{n}={_show(v)}" for n, v in fixed.items())
        chosen = {
            (json.dumps(r[x_name]), r["seed"]): r
            for r in rows
            if all(r[n] == v for n, v in fixed.items())
        }
        for score in scores:
            per_run = [
                [chosen[json.dumps(json_value(x)), seed].get(score, _MISSING) for x in grid[x_name]]
                for seed in seeds
            ]
            if any(_MISSING in runs for runs in per_run):
                continue  # this score is not measured in every setting of the x field
            values = np.array([[_nan(v) for v in runs] for runs in per_run])
            curves[f"{score}, {suffix}" if suffix else score] = curve(xs, values)
    log_x = all(x > 0 for x in xs) and max(xs) >= 10 * min(xs)
    return make_result(
        f"{experiment.NAME}-sweep",
        config=config,
        seeds=seeds,
        timing=timing,
        x_label=x_name,
        y_label=experiment.SCORE_LABEL,
        curves=curves,
        grid={name: json_value(values) for name, values in grid.items()},
        plot_style={"log_x": log_x, "title": f"Parameter study: {experiment.NAME}"},
    )


def write_study(result: dict[str, Any], rows: list[dict[str, Any]], out: str | Path) -> dict:
    """Write the study's result.json, PNG and curve CSV (:func:`write_result`) and its
    tidy per-run CSV ``NAME-runs.csv`` into ``out``; return the paths."""
    paths = write_result(result, out)
    paths["runs"] = Path(out) / f"{result['experiment']}-runs.csv"
    write_csv(
        [{k: _show(v) if isinstance(v, list) else v for k, v in r.items()} for r in rows],
        paths["runs"],
    )
    return paths


_MISSING = "missing"


def _axis_value(value: Any) -> float:
    """A grid value as a number on the plot's x axis (a list of one: its element)."""
    if isinstance(value, tuple) and len(value) == 1:
        value = value[0]
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"the first --grid field must be numeric to plot, got {value!r}") from None


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(_show, value))
    return str(value)


def _number(value: Any) -> float | None:
    value = float(value)
    return None if np.isnan(value) else value


def _nan(value: float | None) -> float:
    return np.nan if value is None else value

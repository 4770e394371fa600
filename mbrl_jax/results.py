"""The output contract of every experiment (DESIGN.md "What an experiment writes"):
``result.json``, ``NAME.png`` drawn from result.json alone, and ``NAME.csv``; the
curve statistics that go into them and the text tables printed from them. (The
timing they record comes from :mod:`mbrl_jax.timing`.)
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mbrl_jax.config import ExperimentConfig, to_dict
from mbrl_jax.timing import Timing, device_description, versions


def curve(x: Sequence, runs: np.ndarray) -> dict[str, list[float]]:
    """A curve from per-run values ``runs`` of shape (num_runs, len(x)): the mean
    over runs and its standard error (NaN entries, unfinished runs, are left out)."""
    runs = np.asarray(runs, dtype=np.float64)
    count = np.sum(~np.isnan(runs), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nanmean(runs, axis=0) if runs.size else np.zeros(len(x))
        std = np.nanstd(runs, axis=0, ddof=1) if runs.shape[0] > 1 else np.zeros(len(x))
        err = np.where(count > 1, std / np.sqrt(np.maximum(count, 1)), 0.0)
    return {"x": [float(v) for v in x], "y": _floats(mean), "y_err": _floats(err)}


def steps_to_target(x: Sequence, returns: np.ndarray, target: float) -> list[float | None]:
    """Per run (rows of ``returns``, one column per x), the first x whose return reaches
    ``target``, or None for a run that never does."""
    reached = np.asarray(returns) >= target
    return [float(x[np.argmax(row)]) if row.any() else None for row in reached]


def speedups(
    reached: dict[str, list[float | None]], run_lengths: dict[str, int], baseline: str
) -> dict[str, float]:
    """For each label, ``baseline``'s mean steps to the target over the label's (from
    :func:`steps_to_target`); a run that never reaches it counts at its run length, so a
    baseline that never gets there gives a lower bound. Empty without the baseline."""
    if baseline not in reached:
        return {}

    def mean_steps(label: str) -> float:
        return float(np.mean([run_lengths[label] if v is None else v for v in reached[label]]))

    return {label: mean_steps(baseline) / mean_steps(label) for label in reached}


def _floats(values: np.ndarray) -> list[float | None]:
    """JSON-safe floats: NaN (no finished run) becomes null."""
    return [None if np.isnan(v) else float(v) for v in values]


def make_result(
    experiment: str,
    *,
    config: ExperimentConfig,
    seeds: Sequence[int],
    timing: Timing,
    x_label: str,
    y_label: str,
    curves: dict[str, dict[str, list]],
    **extra: Any,
) -> dict[str, Any]:
    """A result.json dict holding the experiment's whole ``config``; ``timing`` is the
    sum over the experiment's compiled groups."""
    return {
        "experiment": experiment,
        "config": to_dict(config),
        "seeds": [int(s) for s in seeds],
        "device": device_description(),
        "versions": versions(),
        "timing": timing.as_dict(),
        "x_label": x_label,
        "y_label": y_label,
        "curves": curves,
        **extra,
    }


def write_csv(result: dict[str, Any], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["label", "x", "y", "y_err"])
        for label, c in result["curves"].items():
            for x, y, e in zip(c["x"], c["y"], c["y_err"], strict=True):
                writer.writerow([label, x, "" if y is None else y, "" if e is None else e])


def plot_result(result: dict[str, Any], path: Path, style: dict[str, Any] | None = None) -> None:
    """Draw ``result`` (a parsed result.json) as line plots with standard-error bands.

    ``style`` keys (all optional): ``x_min`` (first x drawn), ``y_lim``, ``log_x``,
    ``log_y``, ``title``, and ``panels``: a list of ``{"title": ..., "labels": [...]}``
    drawing those curves side by side, one panel each (as the book's Figure 8.8); a
    panel may set its own ``x_label``, ``y_label``, ``log_x`` and ``log_y``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    style = style or result.get("plot_style", {})
    panels = style.get("panels") or [{"labels": list(result["curves"])}]
    fig, axes = plt.subplots(1, len(panels), figsize=(6.4 * len(panels), 4.4), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        draw_panel(ax, result, panel, style)
    fig.suptitle(style.get("title", result["experiment"]))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def draw_panel(
    ax, result: dict[str, Any], panel: dict[str, Any], style: dict[str, Any] | None = None
) -> None:
    """Draw the curves ``panel["labels"]`` of ``result`` on the matplotlib axes ``ax``,
    with the keys of :func:`plot_result`'s ``style`` and ``panel`` (for an
    experiment's own ``plot``, which may put curve panels beside other drawings)."""
    style = style or {}
    for label in panel["labels"]:
        _plot_curve(ax, label, result["curves"][label], style.get("x_min", -np.inf))
    if panel.get("log_x", style.get("log_x")):
        ax.set_xscale("log")
    if panel.get("log_y", style.get("log_y")):
        ax.set_yscale("log")
    if "y_lim" in style:
        ax.set_ylim(*style["y_lim"])
    ax.set_xlabel(panel.get("x_label", result.get("x_label", "")))
    ax.set_ylabel(panel.get("y_label", result.get("y_label", "")))
    ax.set_title(panel.get("title", ""))
    ax.legend()
    ax.grid(alpha=0.3)


def _plot_curve(ax, label: str, c: dict[str, list], x_min: float) -> None:
    x = np.asarray(c["x"], float)
    y = np.asarray([np.nan if v is None else v for v in c["y"]], float)
    err = np.asarray([0.0 if v is None else v for v in c["y_err"]], float)
    keep = x >= x_min
    ax.plot(x[keep], y[keep], label=label, marker="o" if keep.sum() <= 12 else None)
    ax.fill_between(x[keep], (y - err)[keep], (y + err)[keep], alpha=0.25)


def write_result(
    result: dict[str, Any],
    out_dir: str | Path,
    plot: Callable[[dict[str, Any], Path], None] | None = None,
) -> dict[str, Path]:
    """Write result.json, NAME.png and NAME.csv into ``out_dir``; return their paths.

    The PNG is drawn from the written result.json by ``plot(result, path)``, an
    experiment's own figure, or by :func:`plot_result` when ``plot`` is None."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = result["experiment"]
    paths = {"json": out / "result.json", "png": out / f"{name}.png", "csv": out / f"{name}.csv"}
    paths["json"].write_text(json.dumps(result, indent=1) + "\n")
    write_csv(result, paths["csv"])
    (plot or plot_result)(json.loads(paths["json"].read_text()), paths["png"])
    return paths


def read_result(path: str | Path) -> dict[str, Any]:
    """Read and check a result.json (DESIGN.md "What an experiment writes").

    Raises ValueError, one line naming ``path`` and what is wrong, for a missing,
    unreadable or non-JSON file, and for a result without a string ``"experiment"``
    or without ``"curves"`` as ``{label: {"x": [...], "y": [...], "y_err": [...]}}``
    (lists of one length; numbers, ``y`` and ``y_err`` may be null), with
    ``"seeds"`` not a list of integers, or with a ``"plot_style"`` whose panels name
    curves it does not have."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError) as e:
        raise ValueError(f"{path}: no such file") from e
    except IsADirectoryError as e:
        raise ValueError(f"{path}: is a folder, not a result.json file") from e
    except OSError as e:
        raise ValueError(f"{path}: cannot read the file ({e.strerror or e})") from e
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a text file (not UTF-8), not a result.json") from e
    try:
        result = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{path}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}"
        ) from e
    problem = _result_problem(result)
    if problem:
        raise ValueError(f"{path}: {problem}")
    return result


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    names = {dict: "an object", list: "an array", str: "a string", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _result_problem(result: Any) -> str | None:
    """What makes ``result`` (parsed JSON) not a result, or None."""
    if not isinstance(result, dict):
        return f"expected a JSON object (a result), got {_json_type(result)}"
    for key in ("experiment", "curves"):
        if key not in result:
            return f'not a result: no "{key}" key'
    for key in ("experiment", "x_label", "y_label"):
        if key in result and not isinstance(result[key], str):
            return f'"{key}" must be a string, got {_json_type(result[key])}'
    seeds = result.get("seeds", [])
    if not isinstance(seeds, list) or not all(_is_int(s) for s in seeds):
        return '"seeds" must be a list of integers'
    curves = result["curves"]
    if not isinstance(curves, dict) or not curves:
        return '"curves" must be a non-empty object {label: {"x": [], "y": [], "y_err": []}}'
    for label, c in curves.items():
        problem = _curve_problem(c)
        if problem:
            return f"curve {label!r}: {problem}"
    return _style_problem(result.get("plot_style", {}), curves)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _curve_problem(c: Any) -> str | None:
    if not isinstance(c, dict):
        return f'expected an object with "x", "y" and "y_err", got {_json_type(c)}'
    for key in ("x", "y", "y_err"):
        if key not in c:
            return f'no "{key}" list'
        if not isinstance(c[key], list):
            return f'"{key}" must be a list, got {_json_type(c[key])}'
        for i, v in enumerate(c[key]):
            if not (_is_number(v) or (v is None and key != "x")):
                return f'"{key}"[{i}] must be a number, got {_json_type(v)}'
    if not len(c["x"]) == len(c["y"]) == len(c["y_err"]):
        lengths = ", ".join(f'"{k}" {len(c[k])}' for k in ("x", "y", "y_err"))
        return f'"x", "y" and "y_err" must have one length, got {lengths}'
    return None


def _style_problem(style: Any, curves: dict[str, Any]) -> str | None:
    if not isinstance(style, dict):
        return f'"plot_style" must be an object, got {_json_type(style)}'
    panels = style.get("panels")
    if panels is None:
        return None
    if not isinstance(panels, list) or not all(
        isinstance(p, dict) and isinstance(p.get("labels"), list) for p in panels
    ):
        return '"plot_style" "panels" must be a list of {"labels": [...]} objects'
    for p in panels:
        for label in p["labels"]:
            if not isinstance(label, str) or label not in curves:
                return f'"plot_style" panel {p.get("title", "")!r} names no curve: {label!r}'
    return None


def format_table(result: dict, xs: list[float], x_name: str) -> str:
    """Mean (standard error) of every curve at the chosen x values, as text."""
    header = f"{x_name:>10} " + " ".join(f"{label:>16}" for label in result["curves"])
    lines = [header]
    for x in xs:
        cells = []
        for c in result["curves"].values():
            i = c["x"].index(float(x))
            y, e = c["y"][i], c["y_err"][i]
            cells.append(f"{'-' if y is None else f'{y:.1f} ({e:.1f})':>16}")
        lines.append(f"{x:>10} " + " ".join(cells))
    lines.append(timing_line(result))
    return "\n".join(lines)


def timing_line(result: dict[str, Any]) -> str:
    """One line of an experiment's summary: compile and run seconds, the device, and
    XLA's cost estimate (loop bodies counted once, see :class:`mbrl_jax.timing.Timing`)."""
    t = result["timing"]
    text = f"compile {t['compile_s']:.2f} s, run {t['run_s']:.2f} s on {result['device']}"
    if t.get("flops") is not None and t.get("bytes_accessed") is not None:
        text += (
            f"; XLA cost {t['flops'] / 1e9:.3g} GFLOP, {t['bytes_accessed'] / 1e9:.3g} GB "
            "accessed (loop bodies counted once)"
        )
    return text

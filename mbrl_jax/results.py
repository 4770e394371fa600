"""The output contract of every experiment (DESIGN.md "What an experiment writes"):
``result.json``, ``NAME.png`` drawn from result.json alone, and ``NAME.csv``.
Also the timing helpers that split compile time from run time and read XLA's
cost analysis of what was compiled.
"""

from __future__ import annotations

import csv
import json
import math
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass, replace
from pathlib import Path
from typing import Any

import jax
import numpy as np


def device_description() -> str:
    """The device the default backend runs on, e.g. ``cpu: cpu (2 cores)``."""
    import os

    device = jax.devices()[0]
    text = f"{device.platform}: {device.device_kind}"
    if device.platform == "cpu":
        text += f" ({os.cpu_count()} cores, {platform.machine()})"
    return text


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for package in ("jax", "jaxlib", "mbrl_jax", "flax", "optax", "gymnax", "chex"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            continue
    return out


@dataclass(frozen=True)
class Timing:
    """Seconds spent compiling and running compiled functions, and XLA's cost
    analysis of them; ``a + b`` sums two (e.g. the groups of one experiment).

    ``flops`` and ``bytes_accessed`` are XLA's static estimate for one call of each
    compiled function, summed over the functions, not multiplied by how often each
    was called. XLA counts the body of a loop (``lax.scan``, ``fori_loop``,
    ``while_loop``) once, not once per trip, so for loop-heavy functions (a whole
    training run in one scan) they are the cost of the code outside the loops plus
    one iteration of each loop: a measure of the work per step, not a total. NaN
    (null in result.json) when the backend gives no cost analysis.
    """

    compile_s: float = 0.0
    run_s: float = 0.0
    flops: float = 0.0
    bytes_accessed: float = 0.0

    def __add__(self, other: Timing) -> Timing:
        return Timing(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    def as_dict(self) -> dict[str, float | None]:
        """result.json's ``timing``: seconds rounded to 0.1 ms, costs as floats or null."""
        return {
            "compile_s": round(self.compile_s, 4),
            "run_s": round(self.run_s, 4),
            "flops": None if math.isnan(self.flops) else self.flops,
            "bytes_accessed": None if math.isnan(self.bytes_accessed) else self.bytes_accessed,
        }


_COST_KEYS = ("flops", "bytes accessed")


def cost_analysis(compiled: jax.stages.Compiled) -> tuple[float, float]:
    """``(flops, bytes accessed)`` from XLA's cost analysis of ``compiled`` (see
    :class:`Timing` for what they count); NaN where the backend reports none. Some
    jax versions return one dict, others a list of dicts (one per module): summed."""
    analysis = compiled.cost_analysis()
    parts = analysis if isinstance(analysis, list | tuple) else [analysis]
    parts = [p for p in parts if p]
    if not parts:
        return math.nan, math.nan
    return tuple(sum(float(p.get(key, math.nan)) for p in parts) for key in _COST_KEYS)


def compile_timed(fn: Callable, *args) -> tuple[jax.stages.Compiled, Timing]:
    """``jax.jit(fn)`` compiled for ``args``, and a :class:`Timing` holding its
    compile seconds and cost analysis (``run_s`` 0)."""
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - start
    flops, bytes_accessed = cost_analysis(compiled)
    return compiled, Timing(compile_s, 0.0, flops, bytes_accessed)


def run_timed(compiled: Callable, *args) -> tuple[Any, float]:
    """``compiled(*args)`` blocked until ready, and the seconds it took."""
    start = time.perf_counter()
    outputs = jax.block_until_ready(compiled(*args))
    return outputs, time.perf_counter() - start


def compile_and_run(fn: Callable, *args) -> tuple[Any, Timing]:
    """``jax.jit(fn)(*args)`` with the seconds spent compiling and running reported
    apart, and XLA's cost analysis of the compiled function: ``(outputs, timing)``."""
    compiled, timing = compile_timed(fn, *args)
    outputs, run_s = run_timed(compiled, *args)
    return outputs, replace(timing, run_s=run_s)


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


def _floats(values: np.ndarray) -> list[float | None]:
    """JSON-safe floats: NaN (no finished run) becomes null."""
    return [None if np.isnan(v) else float(v) for v in values]


def make_result(
    experiment: str,
    *,
    params: dict[str, Any],
    seeds: Sequence[int],
    timing: Timing,
    x_label: str,
    y_label: str,
    curves: dict[str, dict[str, list]],
    **extra: Any,
) -> dict[str, Any]:
    """A result.json dict; ``timing`` is the sum over the experiment's compiled groups."""
    return {
        "experiment": experiment,
        "params": params,
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
    panel may set its own ``y_label`` and ``log_y``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    style = style or result.get("plot_style", {})
    panels = style.get("panels") or [{"labels": list(result["curves"])}]
    fig, axes = plt.subplots(1, len(panels), figsize=(6.4 * len(panels), 4.4), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        for label in panel["labels"]:
            _plot_curve(ax, label, result["curves"][label], style.get("x_min", -np.inf))
        if style.get("log_x"):
            ax.set_xscale("log")
        if panel.get("log_y", style.get("log_y")):
            ax.set_yscale("log")
        if "y_lim" in style:
            ax.set_ylim(*style["y_lim"])
        ax.set_xlabel(result["x_label"])
        ax.set_ylabel(panel.get("y_label", result["y_label"]))
        ax.set_title(panel.get("title", ""))
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(style.get("title", result["experiment"]))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_curve(ax, label: str, c: dict[str, list], x_min: float) -> None:
    x = np.asarray(c["x"], float)
    y = np.asarray([np.nan if v is None else v for v in c["y"]], float)
    err = np.asarray([0.0 if v is None else v for v in c["y_err"]], float)
    keep = x >= x_min
    ax.plot(x[keep], y[keep], label=label, marker="o" if keep.sum() <= 12 else None)
    ax.fill_between(x[keep], (y - err)[keep], (y + err)[keep], alpha=0.25)


def write_result(result: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Write result.json, NAME.png and NAME.csv into ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = result["experiment"]
    paths = {"json": out / "result.json", "png": out / f"{name}.png", "csv": out / f"{name}.csv"}
    paths["json"].write_text(json.dumps(result, indent=1) + "\n")
    write_csv(result, paths["csv"])
    plot_result(json.loads(paths["json"].read_text()), paths["png"])
    return paths


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
    XLA's cost estimate (loop bodies counted once, see :class:`Timing`)."""
    t = result["timing"]
    text = f"compile {t['compile_s']:.2f} s, run {t['run_s']:.2f} s on {result['device']}"
    if t.get("flops") is not None and t.get("bytes_accessed") is not None:
        text += (
            f"; XLA cost {t['flops'] / 1e9:.3g} GFLOP, {t['bytes_accessed'] / 1e9:.3g} GB "
            "accessed (loop bodies counted once)"
        )
    return text

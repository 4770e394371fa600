"""Several results side by side (``mbrl-jax compare A/result.json B/result.json --out DIR``):
their curves overlaid in one figure, and each curve's final value with its difference
from the first result's and Welch's t-test for it."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from mbrl_jax.results import draw_panel, read_result

LINESTYLES = ("-", "--", ":", "-.")  # one per result; a curve label keeps its colour
SHOWN_CHANGES = 6  # settings that differ, listed in the table's notes


class _Final(NamedTuple):
    """A curve's last point with a finite mean; ``runs`` is None when unknown."""

    x: float
    mean: float
    err: float
    runs: int | None


class _Welch(NamedTuple):
    """``diff`` = mean of b - mean of a; t, df and p are None when undefined."""

    diff: float
    t: float | None
    df: float | None
    p: float | None


def compare(
    paths: Sequence[str | Path], out: str | Path, *, names: Sequence[str] | None = None
) -> str:
    """Compare the results at ``paths`` (result.json files): write ``out/compare.png``
    (all their curves, standard-error bands, legend ``"NAME: label"``: a colour per
    label, a line style per result), ``out/compare.csv`` (columns result, label, x, y,
    y_err) and ``out/compare.txt``, the table returned.

    The table gives each curve's final value (its last x with a finite mean) as mean
    ± standard error with the number of runs (the result's seeds) and, for every
    result after the first, its difference from the first result's curve of the same
    label and Welch's t-test of it from the two means, standard errors and run counts:
    t = d / sqrt(se_a² + se_b²), df = (se_a² + se_b²)² / (se_a⁴/(n_a-1) + se_b⁴/(n_b-1))
    (Welch-Satterthwaite), p two-sided. The test assumes independent runs; results run
    with the same seeds are paired and the table says how many seeds they share.

    ``names`` default to each result's folder name (more of the path where two are
    alike). Raises ValueError (one line) for fewer than 2 results, an unreadable or
    malformed result, results of different experiments whose axes differ, a result
    with no curve label in common with the first, or an ``out`` that is a file."""
    paths = [Path(p) for p in paths]
    if len(paths) < 2:
        raise ValueError(f"compare needs at least 2 results, got {len(paths)}")
    names = _names(paths, names)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: is a file, not an output folder")
    results = [read_result(p) for p in paths]
    _check_comparable(results, paths)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"{out}: cannot create the output folder ({e.strerror or e})") from e
    _plot(results, names, out / "compare.png")
    _write_csv(results, names, out / "compare.csv")
    table = _table(results, names)
    (out / "compare.txt").write_text(table + "\n", encoding="utf-8")
    return table


def _names(paths: list[Path], names: Sequence[str] | None) -> list[str]:
    if names is not None:
        names = list(names)
        if len(names) != len(paths):
            raise ValueError(f"names: got {len(names)} for {len(paths)} results")
        if not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
            raise ValueError(f"names must be distinct non-empty strings, got {names}")
        return names
    parts = [p.resolve().parent.parts[1:] or ("/",) for p in paths]
    for depth in range(1, max(map(len, parts)) + 1):
        names = ["/".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    names = [p[-1] for p in parts]  # the same folder more than once: number the repeats
    return [
        n if not names[:i].count(n) else f"{n}#{names[:i].count(n) + 1}"
        for i, n in enumerate(names)
    ]


def _check_comparable(results: list[dict[str, Any]], paths: list[Path]) -> None:
    first = results[0]
    for path, result in zip(paths[1:], results[1:], strict=True):
        axes = [(r.get("x_label"), r.get("y_label")) for r in (first, result)]
        if result["experiment"] != first["experiment"] and axes[0] != axes[1]:
            a, b = (
                f"{r['experiment']!r}, {y!r} against {x!r}"
                for r, (x, y) in zip((first, result), axes, strict=True)
            )
            raise ValueError(
                f"cannot compare {paths[0]} ({a}) with {path} ({b}): "
                "different experiments with different axes"
            )
        if not set(result["curves"]) & set(first["curves"]):
            raise ValueError(
                f"{path} has no curve label in common with {paths[0]}: "
                f"{_listed(result['curves'])} vs {_listed(first['curves'])}"
            )


def _listed(labels: Any) -> str:
    return ", ".join(map(repr, labels))


def _labels(results: list[dict[str, Any]]) -> list[str]:
    """Every curve label, the first result's first, in order of appearance."""
    return list(dict.fromkeys(label for r in results for label in r["curves"]))


def _panels(results: list[dict[str, Any]], names: list[str]) -> list[dict[str, Any]]:
    """The first result's panels (one panel when it has none) holding every result's
    curves as ``"NAME: label"``, with per-curve ``colors`` (indices into the colour
    cycle, one per label) and ``linestyles`` (one per result)."""
    first = results[0].get("plot_style", {}).get("panels") or [
        {"labels": list(results[0]["curves"])}
    ]
    where = [  # the panel of each curve label in each result's own figure
        {
            lb: i
            for i, p in enumerate(r.get("plot_style", {}).get("panels") or [])
            for lb in p["labels"]
        }
        for r in results
    ]
    members: list[list[tuple[str, int]]] = [[] for _ in first]
    for label in _labels(results):
        for k, result in enumerate(results):
            if label in result["curves"]:
                i = where[0].get(label, where[k].get(label, 0))
                members[i if i < len(first) else 0].append((label, k))
    panels = []
    for panel, curves in zip(first, members, strict=True):
        colour = {lb: i for i, lb in enumerate(dict.fromkeys(lb for lb, _ in curves))}
        panels.append(
            {
                **panel,
                "labels": [f"{names[k]}: {lb}" for lb, k in curves],
                "colors": [colour[lb] for lb, _ in curves],
                "linestyles": [LINESTYLES[k % len(LINESTYLES)] for _, k in curves],
            }
        )
    return [p for p in panels if p["labels"]]


def _plot(results: list[dict[str, Any]], names: list[str], path: Path) -> None:
    """All curves with :func:`mbrl_jax.results.draw_panel`, in the first result's
    panels and style (less its title and y limits: the others may lie outside them)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import cycler

    first = results[0]
    style = {
        k: v
        for k, v in first.get("plot_style", {}).items()
        if k not in ("title", "panels", "y_lim")
    }
    merged = {
        "x_label": first.get("x_label", ""),
        "y_label": first.get("y_label", ""),
        "curves": {
            f"{n}: {lb}": c
            for n, r in zip(names, results, strict=True)
            for lb, c in r["curves"].items()
        },
    }
    panels = _panels(results, names)
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, axes = plt.subplots(1, len(panels), figsize=(6.4 * len(panels), 4.4), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        colors = [palette[i % len(palette)] for i in panel["colors"]]
        ax.set_prop_cycle(cycler(color=colors, linestyle=panel["linestyles"]))
        draw_panel(ax, merged, panel, style)
    experiments = " vs ".join(dict.fromkeys(r["experiment"] for r in results))
    fig.suptitle(f"{experiments}: {' vs '.join(names)}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _write_csv(results: list[dict[str, Any]], names: list[str], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["result", "label", "x", "y", "y_err"])
        for name, result in zip(names, results, strict=True):
            for label, c in result["curves"].items():
                for x, y, e in zip(c["x"], c["y"], c["y_err"], strict=True):
                    writer.writerow(
                        [name, label, x, "" if y is None else y, "" if e is None else e]
                    )


def _final(result: dict[str, Any], label: str) -> _Final | None:
    """The curve's last point with a finite mean, None when it has none."""
    c = result["curves"][label]
    for x, y, e in reversed(list(zip(c["x"], c["y"], c["y_err"], strict=True))):
        if y is not None and math.isfinite(y):
            runs = len(result["seeds"]) if "seeds" in result else None
            return _Final(float(x), float(y), math.nan if e is None else float(e), runs)
    return None


def _welch(a: _Final, b: _Final) -> _Welch:
    """Welch's t-test of mean b - mean a from the means, standard errors and runs."""
    from scipy import stats

    diff = b.mean - a.mean
    va, vb = a.err**2, b.err**2
    if a.runs is None or b.runs is None or min(a.runs, b.runs) < 2:
        return _Welch(diff, None, None, None)
    if not math.isfinite(va + vb) or va + vb == 0:
        return _Welch(diff, None, None, None)
    t = diff / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (a.runs - 1) + vb**2 / (b.runs - 1))
    return _Welch(diff, t, df, float(2 * stats.t.sf(abs(t), df)))


def _row(
    name: str, label: str, final: _Final | None, base: _Final | None, first: bool
) -> list[str]:
    if final is None:
        return [name, label, "-", "no finite value", "-", "", "", "", ""]
    err = "?" if math.isnan(final.err) else f"{final.err:.3g}"
    runs = "-" if final.runs is None else str(final.runs)
    cells = [name, label, f"{final.x:g}", f"{final.mean:.4g} ± {err}", runs]
    if first or base is None:
        return cells + [""] * 4
    w = _welch(base, final)
    mark = "*" if final.x != base.x else ""  # compared at a different x
    return cells + [f"{w.diff:+.4g}{mark}", _num(w.t, "+.3f"), _num(w.df, ".1f"), _num(w.p, ".3g")]


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _settings_line(
    name: str, result: dict[str, Any], first_name: str, first: dict[str, Any]
) -> str:
    """How ``result``'s settings and seeds differ from the first result's."""
    a, b = (
        {"experiment": r["experiment"], **_flat(r.get("config", r.get("params", {})))}
        for r in (first, result)
    )
    changed = [
        f"{k} {a.get(k, '-')} -> {b.get(k, '-')}"
        for k in dict.fromkeys([*a, *b])
        if a.get(k) != b.get(k)
    ]
    if len(changed) > SHOWN_CHANGES:
        changed = [*changed[:SHOWN_CHANGES], f"and {len(changed) - SHOWN_CHANGES} more"]
    shared = len(set(first.get("seeds", [])) & set(result.get("seeds", [])))
    return (
        f"{name} vs {first_name}: {', '.join(changed) or 'same settings'}; {shared} seeds in common"
    )


def _flat(settings: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(settings, dict):
        return {prefix.rstrip("."): settings} if prefix else {}
    flat = {}
    for k, v in settings.items():
        flat.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return flat


def _table(results: list[dict[str, Any]], names: list[str]) -> str:
    head = ["result", "label", "x", "final (mean ± s.e.)", "runs", f"diff vs {names[0]}"]
    head += ["t", "df", "p"]
    rows = [head]
    for label in _labels(results):
        base = _final(results[0], label) if label in results[0]["curves"] else None
        for k, result in enumerate(results):
            if label in result["curves"]:
                rows.append(_row(names[k], label, _final(result, label), base, k == 0))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = [
        "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in rows
    ]
    notes = [
        "final: mean ± standard error at the curve's last x with a finite mean",
        f"t, df, p: Welch's t-test of the difference from {names[0]}, two-sided"
        f" (* compared at a different x than {names[0]}'s)",
        *(
            _settings_line(n, r, names[0], results[0])
            for n, r in zip(names[1:], results[1:], strict=True)
        ),
    ]
    return "\n".join(lines + notes)

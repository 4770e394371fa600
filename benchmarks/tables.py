"""Markdown tables and comma-separated integer options, shared by the benchmarks."""

from __future__ import annotations

from collections.abc import Callable, Sequence


def md_row(*cells) -> str:
    """One row of a Markdown table."""
    return "| " + " | ".join(str(c) for c in cells) + " |"


def ints(text: str) -> list[int]:
    """``"1,16,256"`` -> ``[1, 16, 256]``."""
    return [int(v) for v in text.split(",") if v]


def print_seed_scaling(
    group_name: str,
    header: Sequence[str],
    groups: Sequence[int],
    seed_counts: Sequence[int],
    measure: Callable[[int, int], dict],
    cells: Callable[[dict], Sequence[str]],
) -> None:
    """Print a Markdown table with one row per group (``group_name``: n, G) and seed
    count: the group, the seeds, ``cells(measure(group, seeds))`` (named by ``header``)
    and the env steps/s per seed over the group's first seed count's (``measure`` gives
    ``env_steps_per_s``)."""
    print(md_row(group_name, "seeds", *header, "per seed x first seeds"))
    print(md_row(*["---"] * (len(header) + 3)))
    for group in groups:
        base = None
        for seeds in seed_counts:
            r = measure(group, seeds)
            per_seed = r["env_steps_per_s"] / seeds
            base = base or per_seed
            print(md_row(group, seeds, *cells(r), f"{per_seed / base:.2f}"), flush=True)

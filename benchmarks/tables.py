"""Markdown table rows and comma-separated integer options, shared by the benchmarks."""

from __future__ import annotations


def md_row(*cells) -> str:
    """One row of a Markdown table."""
    return "| " + " | ".join(str(c) for c in cells) + " |"


def ints(text: str) -> list[int]:
    """``"1,16,256"`` -> ``[1, 16, 256]``."""
    return [int(v) for v in text.split(",") if v]

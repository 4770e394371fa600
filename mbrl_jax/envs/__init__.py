"""Environments: the book's mazes (gymnax-compatible), plus any gymnax environment by name."""

from __future__ import annotations

from typing import Any

from mbrl_jax.envs.maze import (
    MAZES,
    Maze,
    MazeParams,
    MazeState,
    blocking_maze,
    dyna_maze,
    parse_layout,
    scale_layout,
    shortcut_maze,
)

__all__ = [
    "MAZES",
    "Maze",
    "MazeParams",
    "MazeState",
    "blocking_maze",
    "dyna_maze",
    "make",
    "parse_layout",
    "scale_layout",
    "shortcut_maze",
]


def make(name: str, **kwargs: Any):
    """``(env, env_params)`` for a maze of this package or a gymnax environment id.

    Unknown names raise a ValueError listing what is available.
    """
    if name in MAZES:
        env = MAZES[name](**kwargs)
        return env, env.default_params
    import gymnax

    if name in gymnax.registered_envs:
        return gymnax.make(name, **kwargs)
    raise ValueError(
        f"unknown environment {name!r}; available: {sorted(MAZES)} and the gymnax "
        f"environments {sorted(gymnax.registered_envs)}"
    )

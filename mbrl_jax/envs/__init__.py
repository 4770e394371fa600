"""Environments: the book's mazes, the racetrack, random MDPs and a continuous-force
cart-pole (gymnax-compatible), plus any gymnax environment by name and, with the optional
brax extra, brax's MuJoCo-class tasks ("brax/<name>")."""

from __future__ import annotations

from typing import Any

from mbrl_jax.envs.brax_env import (
    BraxEnv,
    BraxEnvParams,
    BraxEnvState,
    brax_env_names,
    halfcheetah_reward,
    inverted_pendulum_reward,
    inverted_pendulum_termination,
)
from mbrl_jax.envs.control import (
    CartPoleParams,
    CartPoleState,
    ContinuousCartPole,
    acrobot_termination,
    cartpole_reward,
    cartpole_termination,
    continuous_mountain_car_reward,
    continuous_mountain_car_termination,
    mountain_car_termination,
    pendulum_reward,
)
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
from mbrl_jax.envs.racetrack import (
    RACETRACK_LEFT,
    Racetrack,
    RacetrackParams,
    RacetrackState,
    parse_track,
    racetrack_distribution,
)
from mbrl_jax.envs.random_mdp import (
    EVALUATION_ITERATIONS,
    RandomMDP,
    RandomMDPParams,
    evaluation_iterations,
    greedy_policy,
    greedy_policy_value,
    policy_value,
    policy_value_to_tolerance,
    random_mdp_params,
    transition_distribution,
)

#: environments of this package that are not mazes, by name
CONTROL = {"ContinuousCartPole": ContinuousCartPole}

__all__ = [
    "BraxEnv",
    "BraxEnvParams",
    "BraxEnvState",
    "CONTROL",
    "EVALUATION_ITERATIONS",
    "CartPoleParams",
    "CartPoleState",
    "ContinuousCartPole",
    "MAZES",
    "Maze",
    "MazeParams",
    "MazeState",
    "RACETRACK_LEFT",
    "Racetrack",
    "RacetrackParams",
    "RacetrackState",
    "RandomMDP",
    "RandomMDPParams",
    "acrobot_termination",
    "blocking_maze",
    "brax_env_names",
    "cartpole_reward",
    "cartpole_termination",
    "continuous_mountain_car_reward",
    "continuous_mountain_car_termination",
    "dyna_maze",
    "evaluation_iterations",
    "greedy_policy",
    "greedy_policy_value",
    "halfcheetah_reward",
    "inverted_pendulum_reward",
    "inverted_pendulum_termination",
    "make",
    "mountain_car_termination",
    "parse_layout",
    "parse_track",
    "pendulum_reward",
    "policy_value",
    "policy_value_to_tolerance",
    "racetrack_distribution",
    "random_mdp_params",
    "scale_layout",
    "shortcut_maze",
    "transition_distribution",
]


def make(name: str, **kwargs: Any):
    """``(env, env_params)`` for a maze of this package, a gymnax environment id or
    ``"brax/<name>"``, a brax environment (:class:`BraxEnv`, keywords passed to it).

    Unknown names raise a ValueError listing what is available.
    """
    if name in MAZES:
        env = MAZES[name](**kwargs)
        return env, env.default_params
    if name in CONTROL:
        env = CONTROL[name](**kwargs)
        return env, env.default_params
    if name.startswith("brax/"):  # brax/<name>: a brax environment (the optional extra)
        env = BraxEnv(name.removeprefix("brax/"), **kwargs)
        return env, env.default_params
    import gymnax

    if name in gymnax.registered_envs:
        return gymnax.make(name, **kwargs)
    raise ValueError(
        f"unknown environment {name!r}; available: {sorted(MAZES) + sorted(CONTROL)} and "
        f"the gymnax environments {sorted(gymnax.registered_envs)}, or 'brax/<name>'"
    )

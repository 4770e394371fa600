"""Brax environments behind gymnax's interface, an optional extra (``pip install -e '.[brax]'``).

- :class:`BraxEnv` wraps ``brax.envs.get_environment(name, backend=...)`` (brax 0.14.2; the
  ``positional`` backend by default) as a gymnax 1.0.1 ``Environment``: ``reset(key,
  params)`` is brax's ``reset(key)``, ``step(key, state, action, params)`` is brax's
  ``step(state, action)`` (brax's physics use no key) and returns ``obs, state, reward,
  terminated, truncated, info``: ``terminated`` is brax's ``done``, ``truncated`` the time limit
  ``params.max_steps_in_episode`` (1000, as brax's ``EpisodeWrapper``), and after either the
  environment resets itself as gymnax environments do, with the observation the step reached in
  ``info["final_observation"]``. ``mbrl_jax.envs.make("brax/<name>")`` builds one.
- Known task functions, ``fn(obs, action, next_obs)`` over a batch, for a model's
  ``reward_fn`` / ``termination_fn``: :func:`inverted_pendulum_reward`,
  :func:`inverted_pendulum_termination` and :func:`halfcheetah_reward` (which needs the
  cheetah's x position in the observation, see its docstring). HalfCheetah never terminates
  (``termination_fn=None``).

brax is imported only when a :class:`BraxEnv` is built, so ``mbrl_jax`` imports without it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

# the physics backends of brax 0.14.2's PipelineEnv
_BACKENDS = ("generalized", "positional", "spring", "mjx")

# brax's HalfCheetah constants (brax/envs/half_cheetah.py, defaults): dt = timestep x n_frames
# (0.01 x 5 on generalized/mjx, 0.003125 x 16 on positional/spring), the reward's weights.
_HALFCHEETAH_DT = 0.05
_HALFCHEETAH_FORWARD_WEIGHT = 1.0
_HALFCHEETAH_CTRL_COST_WEIGHT = 0.1
_INVERTED_PENDULUM_ANGLE_LIMIT = 0.2  # radians


@struct.dataclass
class BraxEnvState(environment.EnvState):
    """brax's own ``State`` (physics state, obs, reward, done, metrics, info) and the step count."""

    brax_state: Any
    time: jax.Array


@struct.dataclass
class BraxEnvParams(environment.EnvParams):
    max_steps_in_episode: int = 1000


def _brax_envs():
    """The ``brax.envs`` module, or an ImportError saying how to install the extra."""
    try:
        from brax import envs
    except ImportError as error:
        raise ImportError(
            "brax environments need brax, an optional extra of mbrl_jax: "
            "pip install -e '.[brax]' (installs brax==0.14.2)"
        ) from error
    return envs


def brax_env_names() -> list[str]:
    """The names of brax's registered environments (brax must be installed)."""
    return sorted(_brax_envs()._envs)


def _brax_step(env, brax_state: Any, action: jax.Array) -> Any:
    """brax's ``step`` with every leaf of the new state cast to its dtype before the step:
    brax gives some leaves as Python floats (InvertedPendulum's reward 1.0), which the
    auto-reset's select between the stepped and the reset state would reject."""
    dtypes = jax.tree.map(jnp.result_type, brax_state)  # before: some steps update dicts in place
    return jax.tree.map(jnp.asarray, env.step(brax_state, action), dtypes)


class BraxEnv(environment.Environment[BraxEnvState, BraxEnvParams]):
    """A brax environment as a gymnax ``Environment`` (see the module docstring).

    Args:
      env_name: a brax environment name (:func:`brax_env_names`), e.g. ``"inverted_pendulum"``,
        ``"halfcheetah"``; an unknown name is a ValueError listing the available ones.
      backend: the physics backend: ``positional`` (the default), ``generalized``, ``spring``
        or ``mjx``.
      env_kwargs: keyword arguments of the brax environment's constructor, e.g.
        ``{"exclude_current_positions_from_observation": False}`` for HalfCheetah.

    The action space is brax's convention, a Box ``[-1, 1]^action_size`` (brax's own agents
    squash to it; InvertedPendulum rescales it to its force range, the others pass it to the
    actuators, which clip to their control range). The observation space is an unbounded Box.
    As in every gymnax environment, each step also computes a reset (for the auto-reset's
    select): 10-15% of the step time of InvertedPendulum and HalfCheetah vmapped over 64 on a CPU.
    """

    def __init__(
        self,
        env_name: str,
        *,
        backend: str = "positional",
        env_kwargs: Mapping[str, Any] | None = None,
    ):
        envs = _brax_envs()
        names = sorted(envs._envs)
        if env_name not in names:
            raise ValueError(f"unknown brax environment {env_name!r}; available: {names}")
        if backend not in _BACKENDS:
            raise ValueError(f"unknown brax backend {backend!r}; available: {list(_BACKENDS)}")
        self.env_name = env_name
        self.backend = backend
        self._env = envs.get_environment(env_name, backend=backend, **dict(env_kwargs or {}))

    @property
    def brax_env(self):
        """The wrapped brax environment (``brax.envs.Env``)."""
        return self._env

    @property
    def default_params(self) -> BraxEnvParams:
        return BraxEnvParams()

    def step_env(self, key, state: BraxEnvState, action, params: BraxEnvParams):
        del key  # brax's dynamics are deterministic
        action = jnp.reshape(jnp.asarray(action, jnp.float32), (self.num_actions,))
        brax_state = _brax_step(self._env, state.brax_state, action)
        state = BraxEnvState(brax_state=brax_state, time=state.time + 1)
        return brax_state.obs, state, brax_state.reward, self.is_terminated(state, params), {}

    def reset_env(self, key, params: BraxEnvParams):
        brax_state = self._env.reset(key)
        brax_state = brax_state.replace(
            reward=jnp.asarray(brax_state.reward, jnp.float32),
            done=jnp.asarray(brax_state.done, jnp.float32),
        )
        return brax_state.obs, BraxEnvState(brax_state=brax_state, time=jnp.zeros((), jnp.int32))

    def get_obs(self, state: BraxEnvState, params=None, key=None) -> jax.Array:
        return state.brax_state.obs

    def is_terminated(self, state: BraxEnvState, params: BraxEnvParams) -> jax.Array:
        return state.brax_state.done != 0

    @property
    def name(self) -> str:
        return f"brax/{self.env_name}"

    @property
    def num_actions(self) -> int:
        return int(self._env.action_size)

    @functools.cached_property
    def _obs_shape(self) -> tuple[int, ...]:
        # brax's observation_size runs a reset; the shape of a traced one costs no physics
        return tuple(jax.eval_shape(self._env.reset, jax.random.key(0)).obs.shape)

    def action_space(self, params: BraxEnvParams | None = None) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (self.num_actions,), jnp.float32)

    def observation_space(self, params: BraxEnvParams | None = None) -> spaces.Box:
        return spaces.Box(-jnp.inf, jnp.inf, self._obs_shape, jnp.float32)


def inverted_pendulum_reward(obs: Any, action: Any, next_obs: jax.Array) -> jax.Array:
    """brax InvertedPendulum's reward: 1 for every step taken, the terminal one included."""
    del obs, action
    return jnp.ones(next_obs.shape[:-1], jnp.float32)


def inverted_pendulum_termination(obs: Any, action: Any, next_obs: jax.Array) -> jax.Array:
    """brax InvertedPendulum's termination from the next observation ``[x, theta, x_dot,
    theta_dot]``: the pole leans more than 0.2 rad, |theta| > 0.2."""
    del obs, action
    return jnp.abs(next_obs[..., 1]) > _INVERTED_PENDULUM_ANGLE_LIMIT


def halfcheetah_reward(obs: jax.Array, action: jax.Array, next_obs: jax.Array) -> jax.Array:
    """brax HalfCheetah's reward, ``(x' - x) / dt - 0.1 |a|^2`` with dt = 0.05 (brax's
    defaults: forward weight 1, control cost 0.1, on every backend), the unclipped action.

    The forward term is the torso's change of x position over the step, and brax's default
    observation (17 values) leaves the x position out: from it the reward cannot be computed
    (the x velocity it holds is the one at the step's end, not the step's mean; on random
    actions they differ by about as much as the reward itself). So this function needs the
    18-value observation of ``BraxEnv("halfcheetah", env_kwargs={
    "exclude_current_positions_from_observation": False})``, whose first value is x; with the
    default observation learn the reward instead (``reward_fn=None``). HalfCheetah never
    terminates: ``termination_fn=None``.
    """
    if obs.shape[-1] != 18 or next_obs.shape[-1] != 18:
        raise ValueError(
            f"halfcheetah_reward needs the 18-value observation with the x position first, got "
            f"{obs.shape[-1]} values: build the environment with env_kwargs="
            "{'exclude_current_positions_from_observation': False}, or learn the reward "
            "(reward_fn=None), which brax's default 17-value observation does not determine"
        )
    forward = _HALFCHEETAH_FORWARD_WEIGHT * (next_obs[..., 0] - obs[..., 0]) / _HALFCHEETAH_DT
    return forward - _HALFCHEETAH_CTRL_COST_WEIGHT * jnp.sum(jnp.square(action), axis=-1)

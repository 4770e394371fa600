"""Continuous-control tasks for decision-time planning and PETS.

- :class:`ContinuousCartPole`: the classic cart-pole (the gym/gymnax CartPole
  physics, Euler steps of 0.02 s) driven by a continuous force: an action in
  [-1, 1] scaled to +-10 N. Reward 1 per step; the episode terminates when the
  pole leans more than 12 degrees or the cart leaves the track (|x| > 2.4), and
  is truncated after 200 steps. The first check PETS implementations run.
- Known task functions, ``fn(obs, action, next_obs)`` over a batch, that a
  planner may use instead of a learned reward or termination (as the PETS paper
  and mbrl-lib do): :func:`cartpole_reward`, :func:`cartpole_termination`,
  :func:`pendulum_reward` (gymnax ``Pendulum-v1``'s reward from its observation).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces


@struct.dataclass
class CartPoleState(environment.EnvState):
    x: jax.Array
    x_dot: jax.Array
    theta: jax.Array
    theta_dot: jax.Array
    time: jax.Array


@struct.dataclass
class CartPoleParams(environment.EnvParams):
    gravity: float = 9.8
    masscart: float = 1.0
    masspole: float = 0.1
    length: float = 0.5  # half the pole's length
    force_mag: float = 10.0
    tau: float = 0.02
    theta_threshold_radians: float = 12 * 2 * jnp.pi / 360
    x_threshold: float = 2.4
    max_steps_in_episode: int = 200


def _out_of_bounds(x, theta, params: CartPoleParams) -> jax.Array:
    return (jnp.abs(x) > params.x_threshold) | (jnp.abs(theta) > params.theta_threshold_radians)


class ContinuousCartPole(environment.Environment[CartPoleState, CartPoleParams]):
    """Cart-pole with a continuous force (see the module docstring). Observation
    ``[x, x_dot, theta, theta_dot]``; action shape (1,) in [-1, 1], clipped."""

    @property
    def default_params(self) -> CartPoleParams:
        return CartPoleParams()

    def step_env(self, key, state: CartPoleState, action, params: CartPoleParams):
        del key
        force = params.force_mag * jnp.clip(jnp.reshape(action, ()), -1.0, 1.0)
        total_mass = params.masscart + params.masspole
        polemass_length = params.masspole * params.length
        cos, sin = jnp.cos(state.theta), jnp.sin(state.theta)
        temp = (force + polemass_length * state.theta_dot**2 * sin) / total_mass
        theta_acc = (params.gravity * sin - cos * temp) / (
            params.length * (4.0 / 3.0 - params.masspole * cos**2 / total_mass)
        )
        x_acc = temp - polemass_length * theta_acc * cos / total_mass
        state = CartPoleState(
            x=state.x + params.tau * state.x_dot,
            x_dot=state.x_dot + params.tau * x_acc,
            theta=state.theta + params.tau * state.theta_dot,
            theta_dot=state.theta_dot + params.tau * theta_acc,
            time=state.time + 1,
        )
        terminated = self.is_terminated(state, params)
        return self.get_obs(state), state, jnp.ones((), jnp.float32), terminated, {}

    def reset_env(self, key, params: CartPoleParams):
        x, x_dot, theta, theta_dot = jax.random.uniform(key, (4,), minval=-0.05, maxval=0.05)
        # Keywords: ``time`` is the first field of gymnax's EnvState base class.
        state = CartPoleState(
            time=jnp.zeros((), jnp.int32), x=x, x_dot=x_dot, theta=theta, theta_dot=theta_dot
        )
        return self.get_obs(state), state

    def get_obs(self, state: CartPoleState, params=None, key=None) -> jax.Array:
        return jnp.stack([state.x, state.x_dot, state.theta, state.theta_dot])

    def is_terminated(self, state: CartPoleState, params: CartPoleParams) -> jax.Array:
        return _out_of_bounds(state.x, state.theta, params)

    @property
    def name(self) -> str:
        return "ContinuousCartPole"

    @property
    def num_actions(self) -> int:
        return 1

    def action_space(self, params: CartPoleParams | None = None) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (1,), jnp.float32)

    def observation_space(self, params: CartPoleParams) -> spaces.Box:
        high = jnp.array(
            [params.x_threshold * 2, jnp.inf, params.theta_threshold_radians * 2, jnp.inf],
            jnp.float32,
        )
        return spaces.Box(-high, high, (4,), jnp.float32)


def cartpole_termination(obs: Any, action: Any, next_obs: jax.Array) -> jax.Array:
    """The cart-pole's termination from the next observation: |x| > 2.4 or
    |theta| > 12 degrees (batched over leading axes)."""
    del obs, action
    return _out_of_bounds(next_obs[..., 0], next_obs[..., 2], CartPoleParams())


def cartpole_reward(obs: Any, action: Any, next_obs: jax.Array) -> jax.Array:
    """The cart-pole's reward: 1 for every step taken (termination ends the sum)."""
    del obs, action
    return jnp.ones(next_obs.shape[:-1], jnp.float32)


def pendulum_reward(obs: jax.Array, action: jax.Array, next_obs: Any) -> jax.Array:
    """gymnax ``Pendulum-v1``'s reward from the observation ``[cos th, sin th, th_dot]``
    before the step: -(th^2 + 0.1 th_dot^2 + 0.001 u^2), th normalized to [-pi, pi)
    (atan2 of the observation) and u the torque clipped to [-2, 2]."""
    del next_obs
    theta = jnp.arctan2(obs[..., 1], obs[..., 0])
    torque = jnp.clip(action[..., 0], -2.0, 2.0)
    return -(theta**2 + 0.1 * obs[..., 2] ** 2 + 0.001 * torque**2)


def acrobot_termination(obs: Any, action: Any, next_obs: jax.Array) -> jax.Array:
    """gymnax ``Acrobot-v1``'s termination from the next observation
    ``[cos a1, sin a1, cos a2, sin a2, da1, da2]``: the tip is above the bar,
    -cos(a1) - cos(a1 + a2) > 1, with cos(a1 + a2) = cos a1 cos a2 - sin a1 sin a2."""
    del obs, action
    cos1, sin1, cos2, sin2 = (next_obs[..., i] for i in range(4))
    return -cos1 - (cos1 * cos2 - sin1 * sin2) > 1.0


def mountain_car_termination(obs: Any, action: Any, next_obs: jax.Array) -> jax.Array:
    """gymnax ``MountainCar-v0``'s termination from the next observation
    ``[position, velocity]``: position >= 0.5 and velocity >= 0."""
    del obs, action
    return (next_obs[..., 0] >= 0.5) & (next_obs[..., 1] >= 0.0)


def continuous_mountain_car_termination(obs: Any, action: Any, next_obs: jax.Array) -> jax.Array:
    """gymnax ``MountainCarContinuous-v0``'s termination from the next observation
    ``[position, velocity]``: position >= 0.45 (its goal_position) and velocity >= 0."""
    del obs, action
    return (next_obs[..., 0] >= 0.45) & (next_obs[..., 1] >= 0.0)


def continuous_mountain_car_reward(obs: Any, action: jax.Array, next_obs: jax.Array) -> jax.Array:
    """gymnax ``MountainCarContinuous-v0``'s reward:
    -0.1 |a|^2 + 100 [position' >= 0.45 and velocity' >= 0]."""
    goal = continuous_mountain_car_termination(obs, action, next_obs)
    return -0.1 * jnp.sum(action**2, axis=-1) + 100.0 * goal

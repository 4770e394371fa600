"""Training runs are functions: ``make_train(env, agent, config) -> train(key)``.

The whole run is one flat loop over time steps (episodes are counted, not
nested), so ``jax.jit(jax.vmap(train))(keys)`` runs many seeds in one call.
Runs measured in episodes use a ``lax.while_loop`` that stops when every run of
the batch has finished; a run that has finished idles, masked, until the others
end. Runs measured in time steps use a ``lax.scan``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from mbrl_jax.types import Agent, PRNGKey, Transition, select_action
from mbrl_jax.validation import check_count


@dataclass(frozen=True)
class TrainConfig:
    """How long a run is: exactly ``num_steps`` time steps, or ``num_episodes``
    episodes (at most ``max_steps`` time steps, after which unfinished episodes
    are reported as missing: length -1)."""

    num_steps: int | None = None
    num_episodes: int | None = None
    max_steps: int = 1_000_000

    def __post_init__(self):
        if (self.num_steps is None) == (self.num_episodes is None):
            raise ValueError(
                "TrainConfig needs exactly one of num_steps or num_episodes, got "
                f"num_steps={self.num_steps!r}, num_episodes={self.num_episodes!r}"
            )
        if self.num_steps is not None:
            check_count("num_steps", self.num_steps, minimum=1)
        if self.num_episodes is not None:
            check_count("num_episodes", self.num_episodes, minimum=1)
        check_count("max_steps", self.max_steps, minimum=1)


class EpisodeMetrics(NamedTuple):
    episode_length: jax.Array  # (num_episodes,) int32, time steps per episode; -1 if unfinished
    episode_return: jax.Array  # (num_episodes,) float32, undiscounted return; nan if unfinished
    total_steps: jax.Array  # () int32, time steps this run took


class StepMetrics(NamedTuple):
    cumulative_reward: jax.Array  # (num_steps,) float32, reward summed up to and including step t
    episodes: jax.Array  # (num_steps,) int32, episodes finished up to and including step t


class _Carry(NamedTuple):
    agent_state: Any
    env_state: Any
    obs: Any
    key: PRNGKey


def _make_env_step(env, env_params, agent: Agent):
    """One real time step: act, step the environment, update the agent."""

    def env_step(carry: _Carry):
        key, k_act, k_env, k_update = jax.random.split(carry.key, 4)
        action, agent_state = select_action(agent, carry.agent_state, carry.obs, k_act)
        obs, env_state, reward, terminated, truncated, info = env.step(
            k_env, carry.env_state, action, env_params
        )
        transition = Transition(
            carry.obs, action, reward, info["final_observation"], jnp.asarray(terminated)
        )
        agent_state = agent.update(agent_state, transition, k_update)
        episode_over = jnp.logical_or(terminated, truncated)
        return _Carry(agent_state, env_state, obs, key), reward, episode_over

    return env_step


def make_train(env, agent: Agent, config: TrainConfig, env_params=None):
    """``train(key) -> (agent_state, metrics)`` for ``agent`` on a gymnax ``env``.

    Metrics are :class:`EpisodeMetrics` (steps and return per episode) when the
    run is measured in episodes, :class:`StepMetrics` (cumulative reward per time
    step) when it is measured in time steps.
    """
    if env_params is None:
        env_params = env.default_params
    env_step = _make_env_step(env, env_params, agent)

    def start(key: PRNGKey) -> _Carry:
        k_agent, k_env, k_loop = jax.random.split(key, 3)
        obs, env_state = env.reset(k_env, env_params)
        return _Carry(agent.init(k_agent), env_state, obs, k_loop)

    def train_steps(key: PRNGKey):
        def body(state, _):
            carry, total_reward, episodes = state
            carry, reward, episode_over = env_step(carry)
            total_reward = total_reward + reward
            episodes = episodes + episode_over.astype(jnp.int32)
            return (carry, total_reward, episodes), (total_reward, episodes)

        init = (start(key), jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32))
        (carry, _, _), (cumulative, episodes) = jax.lax.scan(
            body, init, None, length=config.num_steps
        )
        return carry.agent_state, StepMetrics(cumulative, episodes)

    def train_episodes(key: PRNGKey):
        num_episodes = config.num_episodes

        def cond(state):
            _, t, episode, *_ = state
            return (episode < num_episodes) & (t < config.max_steps)

        def body(state):
            carry, t, episode, length, ret, lengths, returns = state
            carry, reward, episode_over = env_step(carry)
            length, ret = length + 1, ret + reward
            # A masked select over the small metrics arrays: cheaper than a scatter under vmap.
            write = episode_over & (jnp.arange(num_episodes) == episode)
            lengths = jnp.where(write, length, lengths)
            returns = jnp.where(write, ret, returns)
            episode = episode + episode_over.astype(jnp.int32)
            length = jnp.where(episode_over, 0, length)
            ret = jnp.where(episode_over, 0.0, ret)
            return carry, t + 1, episode, length, ret, lengths, returns

        zero_i, zero_f = jnp.zeros((), jnp.int32), jnp.zeros((), jnp.float32)
        init = (
            start(key),
            zero_i,
            zero_i,
            zero_i,
            zero_f,
            jnp.full((num_episodes,), -1, jnp.int32),
            jnp.full((num_episodes,), jnp.nan, jnp.float32),
        )
        carry, t, _, _, _, lengths, returns = jax.lax.while_loop(cond, body, init)
        return carry.agent_state, EpisodeMetrics(lengths, returns, t)

    return train_steps if config.num_steps is not None else train_episodes

"""A plain single-function DQN in JAX, written from scratch: the baseline that
``benchmarks.dqn_loop`` measures ``mbrl_jax``'s DQN in ``make_train`` against (as
``numpy_dyna.py`` is for the tabular loop). It imports nothing from ``mbrl_jax``.

It is the way one writes DQN in a single file (purejaxrl's style): one ``lax.scan``
over environment steps; each step acts epsilon-greedily, steps the gymnax
environment (which resets itself), writes the transition into replay arrays, and,
once ``learning_starts`` transitions are stored, takes one Adam step on a uniform
minibatch (``lax.cond``); the target network is copied every ``target_period``
gradient steps (``lax.cond``). The algorithm is the library's ``dqn`` defaults:
double DQN, Huber loss, gradients clipped to global norm 10, epsilon falling
linearly from 1 to ``epsilon_end`` over ``epsilon_steps`` steps.

``train(key) -> (cumulative_reward, episodes)``, each of shape (num_steps,): the
reward summed up to step t and the episodes finished up to step t, the same as
``mbrl_jax.train.StepMetrics`` with ``log_every=1``.
"""

from __future__ import annotations

from typing import NamedTuple

import flax.linen as nn
import gymnax
import jax
import jax.numpy as jnp
import optax


class PlainDQN(NamedTuple):
    hidden: tuple[int, ...] = (120, 84)
    learning_rate: float = 1e-3
    gamma: float = 0.99
    batch_size: int = 64
    capacity: int = 50_000
    learning_starts: int = 1000
    target_period: int = 100
    epsilon_end: float = 0.05
    epsilon_steps: int = 5000
    max_grad_norm: float = 10.0


class Carry(NamedTuple):
    params: dict
    target: dict
    opt_state: tuple
    replay: tuple  # obs, action, reward, next_obs, done; each with leading axis capacity
    updates: jax.Array
    obs: jax.Array
    env_state: object
    key: jax.Array
    total: jax.Array
    episodes: jax.Array


class MLP(nn.Module):
    hidden: tuple[int, ...]
    num_actions: int

    @nn.compact
    def __call__(self, x):
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(self.num_actions)(x)


def make_plain_dqn(settings: PlainDQN, num_steps: int, env_name: str = "CartPole-v1"):
    env, env_params = gymnax.make(env_name)
    num_actions = env.action_space(env_params).n
    obs_size = env.observation_space(env_params).shape[0]
    network = MLP(settings.hidden, num_actions)
    optimizer = optax.chain(
        optax.clip_by_global_norm(settings.max_grad_norm), optax.adam(settings.learning_rate)
    )

    def loss_fn(params, target_params, obs, action, reward, next_obs, done):
        q = network.apply(params, obs)
        q_taken = jnp.take_along_axis(q, action[:, None], axis=1)[:, 0]
        best = jnp.argmax(network.apply(params, next_obs), axis=1)
        q_next = jnp.take_along_axis(network.apply(target_params, next_obs), best[:, None], 1)
        y = reward + settings.gamma * (1.0 - done) * q_next[:, 0]
        return jnp.mean(optax.huber_loss(jax.lax.stop_gradient(y) - q_taken))

    def train(key):
        key, k_init, k_reset = jax.random.split(key, 3)
        params = network.init(k_init, jnp.zeros((obs_size,)))
        obs, env_state = env.reset(k_reset, env_params)
        capacity = settings.capacity
        replay = (
            jnp.zeros((capacity, obs_size)),
            jnp.zeros((capacity,), jnp.int32),
            jnp.zeros((capacity,)),
            jnp.zeros((capacity, obs_size)),
            jnp.zeros((capacity,)),
        )
        zero = jnp.zeros((), jnp.int32)
        carry = Carry(
            params, params, optimizer.init(params), replay, zero, obs, env_state, key,
            jnp.zeros(()), zero,
        )  # fmt: skip

        def step(carry: Carry, t):
            params, target, opt_state, replay, updates, obs, env_state, key = carry[:8]
            key, k_eps, k_random, k_env, k_sample = jax.random.split(key, 5)
            fraction = jnp.minimum(t / settings.epsilon_steps, 1.0)
            epsilon = 1.0 + fraction * (settings.epsilon_end - 1.0)
            greedy = jnp.argmax(network.apply(params, obs))
            random_action = jax.random.randint(k_random, (), 0, num_actions)
            action = jnp.where(jax.random.uniform(k_eps) < epsilon, random_action, greedy)
            next_obs, env_state, reward, terminated, truncated, info = env.step(
                k_env, env_state, action, env_params
            )
            slot = t % capacity
            item = (obs, action, reward, info["final_observation"], terminated.astype(float))
            replay = tuple(r.at[slot].set(x) for r, x in zip(replay, item, strict=True))

            def learn(params, target, opt_state, updates):
                index = jax.random.randint(
                    k_sample, (settings.batch_size,), 0, jnp.minimum(t + 1, capacity)
                )
                batch = tuple(r[index] for r in replay)
                grads = jax.grad(loss_fn)(params, target, *batch)
                change, opt_state = optimizer.update(grads, opt_state, params)
                params = optax.apply_updates(params, change)
                updates = updates + 1
                target = jax.lax.cond(
                    updates % settings.target_period == 0, lambda: params, lambda: target
                )
                return params, target, opt_state, updates

            params, target, opt_state, updates = jax.lax.cond(
                t + 1 >= settings.learning_starts,
                learn,
                lambda *state: state,
                params,
                target,
                opt_state,
                updates,
            )
            done = jnp.logical_or(terminated, truncated)
            total = carry.total + reward
            episodes = carry.episodes + done.astype(jnp.int32)
            carry = Carry(
                params, target, opt_state, replay, updates, next_obs, env_state, key, total,
                episodes,
            )  # fmt: skip
            return carry, (total, episodes)

        _, (total, episodes) = jax.lax.scan(step, carry, jnp.arange(num_steps))
        return total, episodes

    return train

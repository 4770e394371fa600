"""Learned neural dynamics models: a deterministic MLP and a probabilistic ensemble (PETS).

Chua et al. 2018, "Deep reinforcement learning in a handful of trials using
probabilistic dynamics models" (PETS). :func:`neural_model` builds the model from
its pieces, one module each:

- :mod:`~mbrl_jax.models.network`: the member network and its losses;
- :mod:`~mbrl_jax.models.normalization`: inputs, targets and their running statistics;
- :mod:`~mbrl_jax.models.training`: ``fit`` to early stopping and online training;
- :mod:`~mbrl_jax.models.propagation`: one-step prediction of particles
  (expectation, TS1, TSinf) for planners.

This module holds the model's state and the functions over it that
:class:`NeuralModel` returns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp

from mbrl_jax.hyperparameters import traced
from mbrl_jax.models.network import MemberNetwork
from mbrl_jax.models.normalization import (
    Normalizer,
    RunningStats,
    _check_obs,
    _encode_inputs,
    _encode_targets,
    _Encoding,
    _identity_normalizer,
    _normalizer_from_stats,
    _stats_add,
    _stats_init,
)
from mbrl_jax.models.propagation import (
    Outcome,
    TaskFn,
    _disagreement,
    _predict,
    _Predictor,
    check_propagation,
)
from mbrl_jax.models.training import (
    TrainInfo,
    _check_flags,
    _fit,
    _initial_info,
    _online_training,
    _Trainer,
    _trainer,
)
from mbrl_jax.replay import ReplayBuffer, buffer_add_batch, buffer_init
from mbrl_jax.types import Model, PRNGKey, StepFn, Transition, check_index
from mbrl_jax.validation import check_count, discrete_actions, is_discrete, raise_on_nan


class NeuralModelState(NamedTuple):
    params: Any  # member parameters, stacked on a leading axis of size E
    opt_state: Any
    normalizer: Normalizer  # used for prediction and training; set from the stats when training
    input_stats: RunningStats
    target_stats: RunningStats
    data: ReplayBuffer  # real transitions
    info: TrainInfo
    total_steps: jax.Array  # () int32 gradient steps taken over the model's life


def check_training(state_or_info: NeuralModelState | TrainInfo, where: str = "model") -> None:
    """Raise FloatingPointError (outside jit) if training met a NaN or inf loss.

    Accepts a model state or its TrainInfo, with any leading batch axes (seeds).
    """
    info = state_or_info.info if isinstance(state_or_info, NeuralModelState) else state_or_info
    raise_on_nan(info.nan_step, f"{where} training failed: the loss", "gradient step")


class NeuralModel(NamedTuple):
    """A learned model: the ``Model(init, update, sample)`` triple plus ``fit`` (train
    on the buffer to early stopping), ``predict`` and ``step_fn`` (rollouts), and
    ``add_batch`` (store a whole batch of real transitions at once) and
    ``disagreement(state, obs, action)`` (the members' spread on a batch, (N,), see
    :mod:`~mbrl_jax.models.disagreement`).

    ``update`` stores the real transition (and takes ``train_steps_per_update``
    minibatch steps); ``sample(state, obs, action, key)`` returns a simulated
    Transition from a uniformly drawn member for one (obs, action) or a batch.
    ``network`` is one member's network (its ``hidden`` widths, ``probabilistic``)
    and ``ensemble_size`` the number of members E.
    """

    init: Callable[[PRNGKey], NeuralModelState]
    update: Callable[[NeuralModelState, Transition, PRNGKey], NeuralModelState]
    sample: Callable[[NeuralModelState, Any, Any, PRNGKey], Transition]
    fit: Callable[[NeuralModelState, PRNGKey], NeuralModelState]
    predict: Callable[..., Outcome]
    step_fn: Callable[[NeuralModelState, str], StepFn]
    network: MemberNetwork
    ensemble_size: int
    add_batch: Callable[..., NeuralModelState]
    disagreement: Callable[[NeuralModelState, Any, Any], jax.Array]

    @property
    def model(self) -> Model:
        return Model(self.init, self.update, self.sample)


def _encoding(obs_size: int, action_space: Any, learn_reward: bool) -> _Encoding:
    obs_size = check_count("obs_size", obs_size, minimum=1)
    if is_discrete(action_space):
        return _Encoding(obs_size, discrete_actions(action_space, "neural_model"), (), learn_reward)
    if not hasattr(action_space, "shape"):
        raise ValueError(f"action_space must be a gymnax Box or Discrete, got {action_space!r}")
    encoding = _Encoding(obs_size, None, tuple(action_space.shape), learn_reward)
    if encoding.action_size < 1:
        raise ValueError(f"the action space has no dimensions: shape {encoding.action_shape}")
    return encoding


def _check_hidden(hidden: Any) -> tuple[int, ...]:
    if (
        not isinstance(hidden, Sequence)
        or not hidden
        or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in hidden)
    ):
        raise ValueError(f"hidden must list positive layer widths, got {hidden!r}")
    return tuple(hidden)  # hashable, whatever was passed


def _init_state(trainer: _Trainer, key: PRNGKey) -> NeuralModelState:
    encoding = trainer.encoding
    params = jax.vmap(trainer.network.init, in_axes=(0, None))(
        jax.random.split(key, trainer.members), jnp.zeros((encoding.in_size,))
    )
    action_dtype = jnp.int32 if encoding.num_actions is not None else jnp.float32
    example = Transition(
        jnp.zeros((encoding.obs_size,)),
        jnp.zeros(encoding.action_shape, action_dtype),
        jnp.zeros(()),
        jnp.zeros((encoding.obs_size,)),
        jnp.zeros((), bool),
    )
    return NeuralModelState(
        params,
        trainer.optimizer.init(params),
        _identity_normalizer(encoding),
        _stats_init(encoding.in_size),
        _stats_init(encoding.targets),
        buffer_init(example, trainer.capacity),
        _initial_info(trainer.members),
        jnp.zeros((), jnp.int32),
    )


def _add_batch(
    encoding: _Encoding, state: NeuralModelState, transitions: Transition, valid: Any
) -> NeuralModelState:
    _check_obs(encoding, transitions.obs, batched=True)
    if encoding.num_actions is not None:  # before the cast to the buffer's int32
        check_index("neural_model", "action", transitions.action, encoding.num_actions)
    batch = transitions.obs.shape[0]
    valid = jnp.ones((batch,), bool) if valid is None else jnp.asarray(valid, bool)
    transitions = Transition(
        jnp.asarray(transitions.obs, jnp.float32),
        jnp.asarray(transitions.action, state.data.data.action.dtype),
        jnp.asarray(transitions.reward, jnp.float32),
        jnp.asarray(transitions.next_obs, jnp.float32),
        jnp.asarray(transitions.done, bool),
    )
    data = buffer_add_batch(state.data, transitions, valid)  # ValueError for mismatched items
    chex.assert_shape(transitions.next_obs, (batch, encoding.obs_size))
    chex.assert_shape([transitions.reward, transitions.done, valid], (batch,))
    inputs = _encode_inputs(encoding, transitions.obs, transitions.action)
    return state._replace(
        data=data,
        input_stats=_stats_add(state.input_stats, inputs, valid),
        target_stats=_stats_add(state.target_stats, _encode_targets(encoding, transitions), valid),
    )


def _fit_state(trainer: _Trainer, state: NeuralModelState, key: PRNGKey) -> NeuralModelState:
    chex.assert_shape(state.data.data.obs, (trainer.capacity, trainer.encoding.obs_size))
    normalizer = _normalizer_from_stats(state.input_stats, state.target_stats)
    params, opt_state, info = _fit(
        trainer, state.params, state.opt_state, state.data, normalizer, state.total_steps,
        state.info.nan_step, key,
    )  # fmt: skip
    chex.assert_shape(info.validation_error, (trainer.members,))
    return state._replace(
        params=params,
        opt_state=opt_state,
        normalizer=normalizer,
        info=info,
        total_steps=state.total_steps + info.steps,
    )


def _train_online(trainer: _Trainer, state: NeuralModelState, key: PRNGKey) -> NeuralModelState:
    normalizer = _normalizer_from_stats(state.input_stats, state.target_stats)
    params, opt_state, nan_step = _online_training(
        trainer, state.params, state.opt_state, state.data, normalizer, state.total_steps,
        state.info.nan_step, key,
    )  # fmt: skip
    return state._replace(
        params=params,
        opt_state=opt_state,
        normalizer=normalizer,
        info=state.info._replace(nan_step=nan_step),
        total_steps=state.total_steps + trainer.train_steps_per_update,
    )


def _update(
    trainer: _Trainer, state: NeuralModelState, transition: Transition, key: PRNGKey
) -> NeuralModelState:
    _check_obs(trainer.encoding, transition.obs, batched=False)
    one = jax.tree.map(lambda x: jnp.asarray(x)[None], transition)
    state = _add_batch(trainer.encoding, state, one, None)
    return state if trainer.train_steps_per_update == 0 else _train_online(trainer, state, key)


def _checked_predict(
    predictor: _Predictor, state: NeuralModelState, obs, action, key: PRNGKey, propagation: str
) -> Outcome:
    _check_obs(predictor.encoding, obs, batched=True)
    next_obs, reward, done = _predict(
        predictor, state.params, state.normalizer, obs, action, key, propagation
    )
    chex.assert_shape(next_obs, obs.shape)
    chex.assert_shape([reward, done], obs.shape[:1])
    return next_obs, reward, done


def _elite_state(
    predictor: _Predictor, state: NeuralModelState, elites: int
) -> tuple[_Predictor, NeuralModelState]:
    """The predictor and state restricted to the ``elites`` members of lowest validation
    error in the last fit (MBPO's elites; all members: unchanged)."""
    if elites == predictor.members:
        return predictor, state
    best = jnp.argsort(state.info.validation_error)[:elites]
    params = jax.tree.map(lambda p: p[best], state.params)
    return predictor._replace(members=elites), state._replace(params=params)


def _sample(
    predictor: _Predictor, state: NeuralModelState, obs, action, key, elites: int
) -> Transition:
    predictor, state = _elite_state(predictor, state, elites)
    single = jnp.ndim(obs) == 1
    batch_obs = jnp.asarray(obs)[None] if single else obs
    batch_action = jnp.asarray(action)[None] if single else jnp.asarray(action)
    next_obs, reward, done = _checked_predict(predictor, state, batch_obs, batch_action, key, "ts1")
    if single:
        next_obs, reward, done = next_obs[0], reward[0], done[0]
    chex.assert_shape(next_obs, jnp.shape(obs))
    return Transition(obs, action, reward, next_obs, done)


@traced("learning_rate", "weight_decay", "logvar_bound_weight")
def neural_model(
    obs_size: int,
    action_space: Any,
    *,
    ensemble_size: int = 5,
    hidden: Sequence[int] = (200, 200, 200),
    probabilistic: bool = True,
    learn_termination: bool = False,
    capacity: int = 10_000,
    learning_rate: float = 1e-3,
    weight_decay: float = 5e-5,
    batch_size: int = 64,
    max_epochs: int = 50,
    patience: int = 5,
    validation_fraction: float = 0.1,
    bootstrap: bool = True,
    train_steps_per_update: int = 0,
    logvar_bound_weight: float = 0.01,
    elites: int | None = None,
    reward_fn: TaskFn | None = None,
    termination_fn: TaskFn | None = None,
) -> NeuralModel:
    """A learned dynamics model of vector observations of size ``obs_size``.

    ``action_space`` is a gymnax ``Box`` (continuous actions of its shape) or
    ``Discrete`` (integer actions in [0, n), one-hot encoded as inputs; another dtype
    is a TypeError, a concrete action out of range a ValueError, and inside jit, where
    it cannot raise, such an action is encoded as NaN: predictions from it are NaN and
    training on it reports a NaN loss through :func:`check_training`). The model learns the
    state change, the reward unless ``reward_fn(obs, action, next_obs)`` is given, and
    the termination if ``learn_termination`` and no ``termination_fn`` is given (else
    transitions never terminate). Defaults are PETS's network (5 members, three hidden
    layers of 200, swish) with CPU-sized training; ``ensemble_size=1,
    probabilistic=False`` is a plain deterministic MLP. ``capacity`` transitions are
    kept in the model's replay buffer; ``fit`` stops after ``patience`` epochs without
    a 1% validation improvement; ``update`` takes ``train_steps_per_update`` minibatch
    steps (online training). ``sample`` (Dyna's simulated transitions) draws each from
    one of the ``elites`` members of lowest validation error in the last ``fit`` (MBPO:
    7 members, 5 elites; None: every member); ``predict`` and ``step_fn`` use every
    member. ``learning_rate``, ``weight_decay`` and ``logvar_bound_weight`` may be traced.
    """
    encoding = _encoding(obs_size, action_space, learn_reward=reward_fn is None)
    _check_flags(probabilistic=probabilistic, learn_termination=learn_termination)
    learned_termination = learn_termination and termination_fn is None
    network = MemberNetwork(
        _check_hidden(hidden), encoding.targets, probabilistic, learned_termination
    )
    trainer = _trainer(
        network, encoding, members=ensemble_size, capacity=capacity, learning_rate=learning_rate,
        weight_decay=weight_decay, batch_size=batch_size, max_epochs=max_epochs,
        patience=patience, validation_fraction=validation_fraction, bootstrap=bootstrap,
        train_steps_per_update=train_steps_per_update, logvar_bound_weight=logvar_bound_weight,
    )  # fmt: skip
    predictor = _Predictor(network, trainer.members, encoding, reward_fn, termination_fn)
    elites = trainer.members if elites is None else check_count("elites", elites, minimum=1)
    if elites > trainer.members:
        raise ValueError(f"elites ({elites}) must not exceed ensemble_size ({trainer.members})")

    def init(key: PRNGKey) -> NeuralModelState:
        return _init_state(trainer, key)

    def add_batch(state: NeuralModelState, transitions: Transition, valid: Any = None):
        """Store real transitions (leading axis B, ``valid`` (B,) masks steps out) and
        update the normalization statistics; no training steps."""
        return _add_batch(encoding, state, transitions, valid)

    def update(state: NeuralModelState, transition: Transition, key: PRNGKey):
        """Store a real transition (and take online minibatch steps if configured)."""
        return _update(trainer, state, transition, key)

    def fit(state: NeuralModelState, key: PRNGKey) -> NeuralModelState:
        """Train on the buffer to early stopping (:mod:`~mbrl_jax.models.training`);
        check ``info`` with :func:`check_training` outside jit."""
        return _fit_state(trainer, state, key)

    def predict(state: NeuralModelState, obs, action, key: PRNGKey, propagation: str):
        """(obs (N, D), action (N, ...)) -> (next_obs, reward, done) under "expectation",
        "ts1" or "tsinf" (:mod:`~mbrl_jax.models.propagation`)."""
        return _checked_predict(predictor, state, obs, action, key, propagation)

    def step_fn(state: NeuralModelState, propagation: str = "tsinf") -> StepFn:
        """The model as a batched StepFn for planners: with "tsinf" and candidate-major
        rows (row c P + p is particle p of candidate c), P a multiple of E, particle p
        keeps member p mod E over the whole horizon."""
        check_propagation(propagation)
        return lambda obs, action, key: predict(state, obs, action, key, propagation)

    def disagreement(state: NeuralModelState, obs, action) -> jax.Array:
        """(obs (N, D), action (N, ...)) -> (N,): the standard deviation over members of
        the normalized mean state change, averaged over the D dimensions."""
        _check_obs(encoding, obs, batched=True)
        spread = _disagreement(predictor, state.params, state.normalizer, obs, action)
        chex.assert_shape(spread, obs.shape[:1])
        return spread

    def sample(state: NeuralModelState, obs, action, key: PRNGKey) -> Transition:
        """A simulated transition from a uniformly drawn elite member (TS1), one pair or
        a batch."""
        return _sample(predictor, state, obs, action, key, elites)

    return NeuralModel(
        init, update, sample, fit, predict, step_fn, network, trainer.members, add_batch,
        disagreement,
    )  # fmt: skip

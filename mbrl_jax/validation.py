"""Checks of user input that give a clear error naming the value and what is allowed.

Hyperparameters may be traced JAX values (when a sweep vmaps over them); those
cannot be checked at trace time and are skipped here, the sweep checks its grid.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import jax
import numpy as np


def _concrete(value: Any) -> float | None:
    """The value as a Python float, or None when it is traced or not a real number
    (a str, a bool, a complex number or an array of more than one entry)."""
    if isinstance(value, jax.core.Tracer) or isinstance(value, str | bytes | bool | np.bool_):
        return None
    if isinstance(value, numbers.Real):  # int, float, Fraction, NumPy scalars
        return float(value)
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        return None
    if array.dtype.kind not in "iuf" or array.size != 1:
        return None
    return float(array.reshape(()))


def _what(value: Any) -> str:
    """The value and its type for an error message: ``'0.1' (a str)``."""
    kind = type(value).__name__
    article = "an" if kind[:1].lower() in "aeiou" else "a"
    return f"{value!r} ({article} {kind})"


def check_in_range(name: str, value: Any, low: float, high: float) -> None:
    """Raise ValueError unless ``value`` is a real number (not a str or bool) with
    ``low <= value <= high`` (skipped for traced values)."""
    number = _concrete(value)
    if number is None:
        if isinstance(value, jax.core.Tracer):
            return
        raise ValueError(f"{name} must be a number in [{low}, {high}], got {_what(value)}")
    if math.isnan(number) or not low <= number <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value!r}")


def check_positive(name: str, value: Any) -> None:
    """Raise ValueError unless ``value`` is a real number with ``0 < value < inf``
    (skipped for traced values)."""
    check_in_range(name, value, 0.0, math.inf)
    number = _concrete(value)
    if number is not None and not 0.0 < number < math.inf:
        raise ValueError(f"{name} must be positive and finite, got {value!r}")


def check_below_one(name: str, value: Any) -> None:
    """Raise ValueError unless ``value`` is a real number with ``0 <= value < 1``
    (skipped for traced values)."""
    number = _concrete(value)
    if number is None:  # traced (passes), or not a number (raises)
        check_in_range(name, value, 0.0, 1.0)
    elif not 0.0 <= number < 1.0:  # NaN included
        raise ValueError(f"{name} must be in [0.0, 1.0), got {value!r}")


def check_up_to_one(name: str, value: Any) -> None:
    """Raise ValueError unless ``value`` is a real number with ``0 < value <= 1`` (a step
    size toward a target, 1 a copy; skipped for traced values)."""
    number = _concrete(value)
    if number is None:  # traced (passes), or not a number (raises)
        check_in_range(name, value, 0.0, 1.0)
    elif not 0.0 < number <= 1.0:  # NaN included
        raise ValueError(f"{name} must be in (0.0, 1.0], got {value!r}")


def check_nonnegative(name: str, value: Any) -> None:
    """Raise ValueError unless ``value`` is a real number ``>= 0`` (skipped for traced
    values)."""
    check_in_range(name, value, 0.0, math.inf)


def check_bool(name: str, value: Any) -> bool:
    """Return ``value``; raise ValueError unless it is a Python bool (a flag that
    selects code, so never traced)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be a bool, got {value!r}")
    return value


def check_count(name: str, value: Any, minimum: int = 0) -> int:
    """Return ``value`` as an int; raise ValueError unless it is an integer >= minimum."""
    if isinstance(value, bool) or not isinstance(value, int | jax.numpy.integer):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def raise_on_nan(first_bad_step: Any, what: str, step_name: str) -> None:
    """Raise FloatingPointError (outside jit) naming the step and the runs where
    ``first_bad_step`` (an int array, any leading run axes, -1 where all was finite)
    records a NaN or inf ``what``."""
    steps = np.ravel(np.asarray(first_bad_step))
    runs = np.flatnonzero(steps >= 0)
    if runs.size:
        raise FloatingPointError(
            f"{what} became NaN or inf at {step_name} {int(steps[runs[0]])} in run(s) "
            f"{runs.tolist()}; lower the learning rate or check the data for non-finite values"
        )


def is_discrete(action_space: Any) -> bool:
    """True for a gymnax ``Discrete`` space (it has ``n``), False for a ``Box``."""
    return getattr(action_space, "n", None) is not None


def discrete_actions(action_space: Any, who: str) -> int:
    """The number of actions of a gymnax ``Discrete`` space; ValueError naming ``who``
    (the part that needs it) for anything else."""
    if not is_discrete(action_space):
        raise ValueError(
            f"{who} needs a Discrete action space (integer actions), got {action_space!r}"
        )
    return check_count("action_space.n", int(action_space.n), minimum=1)


def continuous_action_shape(action_space: Any, who: str) -> tuple[int, ...]:
    """The action shape of a gymnax ``Box`` space; ValueError naming ``who`` for a
    ``Discrete`` space or anything without bounds."""
    if is_discrete(action_space) or not hasattr(action_space, "low"):
        raise ValueError(
            f"{who} needs a Box action space (continuous actions), got {action_space!r}"
        )
    return tuple(action_space.shape)

"""An experiment's settings as one typed config: defaults, a one-line doc per field,
and each field static or traced.

A config is a frozen dataclass deriving from :class:`ExperimentConfig`, every field
declared with :func:`setting`::

    @dataclass(frozen=True)
    class Config(ExperimentConfig):
        planning_steps: int = setting(10, "planning updates per real step (n)")
        alpha: float = setting(1.0, "step size", traced=True)

- **static** fields set shapes, loop bounds or code paths (``planning_steps``,
  ``num_episodes``, ``runs``): runs that differ in one are compiled separately, so a
  sweep groups them;
- **traced** fields enter the computation only as numbers (a step size, epsilon, a
  discount): a sweep vmaps them inside one compiled call (the traced hyperparameters of
  :mod:`mbrl_jax.hyperparameters`).

A field may itself be a config (nested settings, named with dots: ``planner.horizon``).
Field values are type-checked when a config is made (``alpha='0.1'`` or
``runs=True`` is a TypeError naming the field); a traced field also accepts a JAX
tracer, so an experiment's ``train(config, key)`` can be vmapped over it. Text from the
command line (``--set alpha=0.2``) goes through :func:`override`, which parses each
value as its field's type.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Iterable, Mapping
from functools import partial
from typing import Any, Literal

import jax

_DOC = "doc"
_TRACED = "traced"


def setting(default: Any, doc: str, *, traced: bool = False) -> Any:
    """A config field with its ``default``, a one-line ``doc`` and whether it may be
    traced (vmapped by a sweep) or is static (one compile per value)."""
    if isinstance(default, list | dict | set):
        raise TypeError(f"a setting's default must be immutable (a tuple), got {default!r}")
    return dataclasses.field(default=default, metadata={_DOC: doc, _TRACED: traced})


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """Base of every experiment's config: the values are type-checked on creation."""

    def __post_init__(self) -> None:
        hints = _hints(type(self))
        for field in dataclasses.fields(self):
            _check_type(field.name, getattr(self, field.name), hints[field.name], field)
        _check_seeds(getattr(self, "seed", 0), getattr(self, "runs", 1))


_LAST_SEED = 2**32 - 1  # seeds are uint32 (jax.random.key)


def _check_seeds(seed: int, runs: int) -> None:
    """Raise ValueError unless ``runs >= 1`` and the seeds ``seed .. seed + runs - 1``
    are in [0, 2**32 - 1]."""
    if runs < 1:
        raise ValueError(f"runs must be an integer >= 1, got {runs!r}")
    if not 0 <= seed <= _LAST_SEED - (runs - 1):
        raise ValueError(
            f"seeds must be in [0, 2**32 - 1]; seed={seed!r} with runs={runs!r} gives seeds "
            f"{seed}..{seed + runs - 1}"
        )


class SettingInfo(typing.NamedTuple):
    """One (possibly nested, dotted) field of a config, as :func:`settings` lists it."""

    name: str
    type: Any
    value: Any
    doc: str
    traced: bool

    @property
    def kind(self) -> str:
        return "traced" if self.traced else "static"


def settings(config: ExperimentConfig) -> dict[str, SettingInfo]:
    """Every leaf field of ``config`` by dotted name (nested configs expanded)."""
    out: dict[str, SettingInfo] = {}
    hints = _hints(type(config))
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if isinstance(value, ExperimentConfig):
            for name, info in settings(value).items():
                out[f"{field.name}.{name}"] = info._replace(name=f"{field.name}.{name}")
        else:
            doc, traced = field.metadata.get(_DOC, ""), field.metadata.get(_TRACED, False)
            out[field.name] = SettingInfo(field.name, hints[field.name], value, doc, traced)
    return out


def traced_names(config: ExperimentConfig) -> list[str]:
    """The dotted names of the traced fields of ``config``."""
    return [name for name, info in settings(config).items() if info.traced]


def describe(config: ExperimentConfig, title: str = "") -> str:
    """A table of ``config``'s fields: name, type, static/traced, value, doc."""
    rows = [
        (info.name, _type_label(info.type), info.kind, format_value(info.value), info.doc)
        for info in settings(config).values()
    ]
    header = ("field", "type", "kind", "value", "doc")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    lines = [title] if title else []
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[4]]))
    for info in settings(config).values():
        if choices(info.type):
            lines.append(f"{info.name} choices: {', '.join(map(str, choices(info.type)))}")
    return "\n".join(lines)


def to_dict(config: ExperimentConfig) -> dict[str, Any]:
    """``config`` as JSON-ready values (nested configs as dicts, tuples as lists)."""
    return {
        field.name: json_value(getattr(config, field.name)) for field in dataclasses.fields(config)
    }


def replace(config: ExperimentConfig, values: Mapping[str, Any]) -> ExperimentConfig:
    """``config`` with the fields ``values`` (dotted name -> value) replaced; the new
    values are type-checked. An unknown name is a ValueError listing the valid ones."""
    for name in values:
        setting_info(config, name)
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for name, value in values.items():
        head, _, rest = name.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            top[head] = value
    for head, inner in nested.items():
        top[head] = replace(getattr(config, head), inner)
    return dataclasses.replace(config, **top)


def override(config: ExperimentConfig, assignments: Iterable[str]) -> ExperimentConfig:
    """``config`` with each ``"name=value"`` of ``assignments`` applied, the text parsed
    as the field's type (see :func:`parse_value`); the last assignment to a name wins."""
    values: dict[str, Any] = {}
    for assignment in assignments:
        name, value = split_assignment(assignment)
        info = setting_info(config, name, f" in {assignment!r}")
        values[name] = parse_value(name, info.type, value)
    return replace(config, values)


def setting_info(config: ExperimentConfig, name: str, where: str = "") -> SettingInfo:
    """The field ``name`` (dotted) of ``config``; an unknown name is a ValueError that
    lists the valid ones (``where`` says where the name was given)."""
    known = settings(config)
    if name not in known:
        raise ValueError(
            f"unknown setting {name!r}{where}; valid settings of "
            f"{type(config).__qualname__}: {', '.join(known)}"
        )
    return known[name]


def split_assignment(assignment: str) -> tuple[str, str]:
    """``"name=value"`` as ``(name, value)``; a ValueError for anything else."""
    name, sep, value = assignment.partition("=")
    if not sep or not name.strip():
        raise ValueError(f"a setting must be written name=value, got {assignment!r}")
    return name.strip(), value.strip()


def parse_value(name: str, kind: Any, text: str) -> Any:
    """``text`` as a value of type ``kind``: bool, int, float, str, a Literal, a
    ``tuple[T, ...]`` written ``a,b,c`` (a tuple of tuples ``a,b;c,d``), or ``T | None``
    written ``none``."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (types.UnionType, typing.Union):
        if text.lower() == "none" and type(None) in args:
            return None
        (inner,) = [arg for arg in args if arg is not type(None)]
        return parse_value(name, inner, text)
    if origin is tuple:
        nested = typing.get_origin(args[0]) is tuple
        parts = [part.strip() for part in text.split(";" if nested else ",")]
        if not text or not all(parts):
            raise ValueError(f"{name} must be a comma-separated list, got {text!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(parse_value(name, args[0], part) for part in parts)
        if len(parts) != len(args):
            raise ValueError(f"{name} must be {len(args)} comma-separated values, got {text!r}")
        return tuple(map(partial(parse_value, name), args, parts))
    if origin is Literal:
        if text not in args:
            raise ValueError(f"{name} must be one of {', '.join(map(str, args))}, got {text!r}")
        return text
    try:
        return _PARSERS[kind](text)
    except (KeyError, ValueError):
        raise ValueError(f"{name} must be {_type_name(kind)}, got {text!r}") from None


_BOOLS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def _parse_bool(text: str) -> bool:
    if text.lower() not in _BOOLS:
        raise ValueError(text)
    return _BOOLS[text.lower()]


_PARSERS = {bool: _parse_bool, int: int, float: float, str: str}


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _check_type(name: str, value: Any, kind: Any, field: dataclasses.Field) -> None:
    """Raise TypeError unless ``value`` is of the annotated type ``kind`` (a JAX tracer
    is allowed for a traced field)."""
    if field.metadata.get(_TRACED) and isinstance(value, jax.core.Tracer):
        return
    if not _is_instance(value, kind):
        raise TypeError(
            f"setting {name} must be {_type_name(kind)}, got {value!r} ({type(value).__name__})"
        )


def _is_instance(value: Any, kind: Any) -> bool:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (types.UnionType, typing.Union):
        return any(_is_instance(value, arg) for arg in args)
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_is_instance(v, args[0]) for v in value)
        return len(value) == len(args) and all(map(_is_instance, value, args))
    if origin is Literal:
        return value in args
    if kind is type(None):
        return value is None
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _type_name(kind: Any) -> str:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_name(arg) for arg in args)
    if origin is tuple:
        return f"{_type_label(kind)} (a,b,c on the command line)"
    if origin is Literal:
        return "one of " + ", ".join(map(str, args))
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    return names.get(kind, "none" if kind is type(None) else getattr(kind, "__name__", str(kind)))


def _type_label(kind: Any) -> str:
    """``kind`` as Python writes it (``int``, ``tuple[int, ...]``), a Literal as
    ``choice`` (its values are listed under the table)."""
    if typing.get_origin(kind) is Literal:
        return "choice"
    if typing.get_origin(kind) is tuple:
        inner = ", ".join("..." if a is Ellipsis else _type_label(a) for a in typing.get_args(kind))
        return f"tuple[{inner}]"
    return kind.__name__ if isinstance(kind, type) else str(kind).replace("typing.", "")


def choices(kind: Any) -> tuple:
    """The values a Literal field type (or a tuple of Literals) allows; () otherwise."""
    if typing.get_origin(kind) is tuple:
        return choices(typing.get_args(kind)[0])
    return typing.get_args(kind) if typing.get_origin(kind) is Literal else ()


def format_value(value: Any) -> str:
    """``value`` as text that :func:`parse_value` reads back (as ``describe`` shows it)."""
    if isinstance(value, tuple):
        nested = any(isinstance(v, tuple) for v in value)
        return (";" if nested else ",").join(format_value(v) for v in value)
    return "none" if value is None else str(value)


def json_value(value: Any) -> Any:
    """A setting's value as JSON holds it: a nested config as a dict, a tuple as a list."""
    if isinstance(value, ExperimentConfig):
        return to_dict(value)
    if isinstance(value, tuple):
        return [json_value(v) for v in value]
    return value


__all__ = [
    "ExperimentConfig",
    "SettingInfo",
    "choices",
    "describe",
    "format_value",
    "json_value",
    "override",
    "parse_value",
    "replace",
    "setting",
    "setting_info",
    "settings",
    "split_assignment",
    "to_dict",
    "traced_names",
]

"""Checkpoint and resume long runs: a Python loop over jitted chunks.

:func:`run_with_checkpoints` runs ``start(key)`` and then ``run_chunk(carry,
chunk_steps)`` until ``total_steps`` time steps are done (the pieces of
:func:`mbrl_jax.train.make_train_chunks`, or any functions of the same shape).
After each chunk it saves, with orbax-checkpoint, the step count, the whole carry
and the metrics so far. Started again on the same directory it restores the
latest checkpoint and goes on from there, so a run killed in the middle ends
bit-identical to an uninterrupted run with the same key.

A checkpoint never gets silently ignored: one written by a different run (other
key, total or chunk size, carry or metrics of other shapes, another user fingerprint)
raises a ValueError naming what differs, and one that cannot be read back intact
(truncated, garbage, a failed checksum) raises :class:`CheckpointError` naming
its path.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from tqdm import tqdm

from mbrl_jax.types import PRNGKey
from mbrl_jax.validation import check_count

Carry = Any
Metrics = Any

_FORMAT = 1  # version of what a checkpoint holds; bump when that changes
_KEEP = 2  # the latest checkpoint and the one before it, should the latest be damaged
_MAX_LISTED = 10  # differences named in a mismatch error
_ADVICE = "Delete it to resume from the checkpoint before it (if any), or use another directory."


class CheckpointError(RuntimeError):
    """A checkpoint directory holds something that cannot be read back intact."""


def run_with_checkpoints(
    start: Callable[[PRNGKey], Carry],
    run_chunk: Callable[[Carry, int], tuple[Carry, Metrics]],
    key: PRNGKey,
    *,
    total_steps: int,
    chunk_steps: int,
    directory: str | Path,
    fingerprint: Any = None,
    time_axis: int = 0,
    progress: bool = True,
    callback: Callable[[int, Metrics], None] | None = None,
) -> tuple[Carry, Metrics]:
    """Run ``total_steps`` time steps in chunks of ``chunk_steps``, checkpointing
    into ``directory`` after each chunk and resuming from its latest checkpoint.

    Args:
      start: ``start(key) -> carry``, the loop state before the first step.
      run_chunk: ``run_chunk(carry, num_steps) -> (carry, metrics)``; ``num_steps``
        is a static Python int (``chunk_steps``, or what is left for the last chunk).
        Both functions are jitted here.
      key: the run's PRNG key (same key, same result, interrupted or not).
      total_steps, chunk_steps: the run's length and the time steps per chunk
        (a save takes about 0.1 s for a small state on a CPU: make chunks longer).
      directory: where checkpoints go; one directory per run.
      fingerprint: anything JSON-serializable that identifies the run's setup
        (hyperparameters, environment name); a checkpoint made with another one
        is refused.
      time_axis: the axis along which chunks' metrics are concatenated (1 when
        ``run_chunk`` is vmapped over seeds).
      progress: show a progress bar over time steps, with steps/s.
      callback: ``callback(step, metrics)`` after each chunk is saved, with the
        time steps done so far and that chunk's metrics (NumPy arrays).

    Returns:
      ``(carry, metrics)``: the final carry and all chunks' metrics concatenated
      along ``time_axis`` (NumPy arrays, kept on the host).

    Raises:
      ValueError: ``directory`` is a file, lies under one or cannot be written
        (checked first, before anything runs), or its checkpoint belongs to a
        different run.
      CheckpointError: the directory's checkpoint cannot be read back intact.
    """
    total_steps = check_count("total_steps", total_steps, minimum=1)
    chunk_steps = check_count("chunk_steps", chunk_steps, minimum=1)
    directory = _checked_directory(directory)
    start_fn = jax.jit(start)
    chunk_fn = jax.jit(run_chunk, static_argnums=1)
    fresh = start_fn(key)
    chunk_shapes = jax.eval_shape(lambda carry: run_chunk(carry, chunk_steps)[1], fresh)
    expected = _jsonable(
        {
            "total_steps": total_steps,
            "chunk_steps": chunk_steps,
            "time_axis": time_axis,
            "key": _key_digest(key),
            "carry": _describe(fresh),
            "chunk_metrics": _describe(chunk_shapes),
            "user": fingerprint,
        }
    )
    options = ocp.CheckpointManagerOptions(max_to_keep=_KEEP, enable_async_checkpointing=False)
    with ocp.CheckpointManager(directory, options=options) as manager:
        step, carry, metrics = _resume(manager, directory, fresh, chunk_shapes, expected)
        with tqdm(total=total_steps, initial=step, unit="step", disable=not progress) as bar:
            while step < total_steps:
                num_steps = min(chunk_steps, total_steps - step)
                carry, chunk = chunk_fn(carry, num_steps)
                chunk = jax.device_get(chunk)
                metrics = chunk if metrics is None else _concatenate(metrics, chunk, time_axis)
                step += num_steps
                _save(manager, step, carry, metrics, expected)
                bar.update(num_steps)
                if callback is not None:
                    callback(step, chunk)
    return carry, metrics


def _checked_directory(directory: str | Path) -> Path:
    """``directory`` as an absolute path, created if missing; ValueError naming it
    when it is a file, lies under a file, or cannot be written (checked before any
    training, which would otherwise be lost at the first save)."""
    path = Path(directory).absolute()
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        where = "is a file" if existing == path else f"lies under the file {existing}"
        raise ValueError(
            f"the checkpoint directory {path} {where}, not a directory; give the path of a "
            "directory (created if missing)"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise ValueError(
            f"the checkpoint directory {path} cannot be written ({err.strerror or err}); "
            "give a directory you can write to"
        ) from None
    return path


def _describe(tree: Any) -> dict[str, str]:
    """``{leaf path: "dtype[shape]"}`` of a pytree of arrays or ShapeDtypeStructs."""
    return {
        jax.tree_util.keystr(path): f"{leaf.dtype}{list(leaf.shape)}"
        for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]
    }


def _key_digest(key: PRNGKey) -> str:
    """A short hash of the run's key (or batch of keys): resuming with another key is refused."""
    data = jax.random.key_data(key) if _is_key(key) else key
    return hashlib.sha256(np.asarray(data).tobytes()).hexdigest()[:16]


def _jsonable(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists), so that a saved
    fingerprint and a fresh one compare equal exactly when they are the same."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as err:
        raise ValueError(f"fingerprint must be JSON-serializable, got {value!r}: {err}") from err


def _concatenate(metrics: Metrics, chunk: Metrics, axis: int) -> Metrics:
    """The metrics so far followed by one more chunk's, along the time ``axis``."""
    return jax.tree.map(lambda a, b: np.concatenate([a, b], axis=axis), metrics, chunk)


def _is_key(leaf: Any) -> bool:
    """Whether ``leaf`` is an array of typed PRNG keys (``jax.random.key``)."""
    return jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def _to_saved(tree: Any) -> dict[str, jax.Array]:
    """The leaves of ``tree`` that get written, by position: typed PRNG keys as
    their raw key data (``jax.random.key_data``); zero-size leaves are left out
    (orbax cannot write them, and their shape and dtype say all about them)."""
    return {
        str(i): jax.random.key_data(leaf) if _is_key(leaf) else leaf
        for i, leaf in enumerate(jax.tree.leaves(tree))
        if leaf.size
    }


def _from_saved(saved: dict[str, jax.Array], like: Any) -> Any:
    """Inverse of :func:`_to_saved`: ``like`` (a pytree of arrays) gives the
    structure, the zero-size leaves and the implementation of PRNG keys."""
    leaves, treedef = jax.tree.flatten(like)

    def leaf(i: int, template: Any) -> Any:
        if not template.size:
            return template
        if _is_key(template):
            impl = jax.random.key_impl(template)
            return jax.random.wrap_key_data(saved[str(i)], impl=impl)
        return saved[str(i)]

    return treedef.unflatten([leaf(i, template) for i, template in enumerate(leaves)])


def _restore_target(like: Any) -> dict[str, Any]:
    """What orbax restores :func:`_to_saved` of ``like`` into: the same shapes,
    dtypes and shardings (NumPy leaves of ``like`` come back as NumPy arrays)."""

    def target(leaf: Any) -> Any:
        if isinstance(leaf, np.ndarray):
            return leaf
        return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=leaf.sharding)

    return {name: target(leaf) for name, leaf in _to_saved(like).items()}


def _checksum(saved: dict[str, dict[str, Any]]) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of every saved leaf."""
    digest = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_flatten_with_path(saved)[0]:
        array = np.asarray(jax.device_get(leaf))
        digest.update(f"{jax.tree_util.keystr(path)}{array.dtype}{array.shape}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _save(manager, step: int, carry: Carry, metrics: Metrics, expected: dict) -> None:
    """Write checkpoint ``step``: the carry, the metrics so far and what identifies
    the run, with a checksum of the arrays."""
    saved = {"carry": _to_saved(carry), "metrics": _to_saved(metrics)}
    meta = {
        "format": _FORMAT,
        "step": step,
        "fingerprint": expected,
        "metrics_shapes": [list(leaf.shape) for leaf in jax.tree.leaves(metrics)],
        "checksum": _checksum(saved),
    }
    args = ocp.args.Composite(state=ocp.args.StandardSave(saved), meta=ocp.args.JsonSave(meta))
    manager.save(step, args=args)


def _resume(manager, directory: Path, fresh: Carry, chunk_shapes: Metrics, expected: dict):
    """``(step, carry, metrics)`` from the latest checkpoint in ``directory``, or
    ``(0, fresh, None)`` when it holds none."""
    step = manager.latest_step()
    if step is None:
        _check_no_strays(directory)
        return 0, fresh, None
    path = directory / str(step)
    meta = _read(path, lambda: manager.restore(step, args=_restore_args(meta=None))["meta"])
    _check_meta(meta, step, path)
    differences = _differences(meta["fingerprint"], expected)
    if differences:
        listed = differences[:_MAX_LISTED]
        if len(differences) > _MAX_LISTED:
            listed.append(f"... and {len(differences) - _MAX_LISTED} more")
        raise ValueError(
            f"the checkpoint {path} was made by a different run:\n  "
            + "\n  ".join(listed)
            + "\nUse another directory for this run, or delete that one to start over."
        )
    chunk_leaves, metrics_def = jax.tree.flatten(chunk_shapes)
    metrics_like = metrics_def.unflatten(
        [
            np.empty(shape, leaf.dtype)
            for shape, leaf in zip(meta["metrics_shapes"], chunk_leaves, strict=True)
        ]
    )
    target = {"carry": _restore_target(fresh), "metrics": _restore_target(metrics_like)}
    saved = _read(path, lambda: manager.restore(step, args=_restore_args(state=target))["state"])
    if _checksum(saved) != meta["checksum"]:
        raise CheckpointError(
            f"the checkpoint {path} is damaged: its arrays do not match their checksum. " + _ADVICE
        )
    return step, _from_saved(saved["carry"], fresh), _from_saved(saved["metrics"], metrics_like)


def _restore_args(**items: Any) -> ocp.args.Composite:
    """Composite restore args: ``meta=None`` reads the JSON meta, ``state=target`` the arrays."""
    return ocp.args.Composite(
        **{
            name: ocp.args.JsonRestore() if target is None else ocp.args.StandardRestore(target)
            for name, target in items.items()
        }
    )


class _DrainingLoop(asyncio.SelectorEventLoop):
    """An event loop that, closed with tasks still pending, first lets them finish.

    orbax runs each restore in a fresh event loop and closes it when the restore
    returns. When tensorstore fails on a damaged file, the first error ends the
    restore while the reads of the other arrays are still in flight; closing the
    loop under them makes each one print an "Event loop is closed" traceback when
    tensorstore completes it, and their errors are logged as "Task exception was
    never retrieved". This loop waits for its tasks (collecting their errors)
    before it closes, and drops what tensorstore hands a closed loop."""

    def close(self) -> None:
        while not self.is_closed() and not self.is_running() and asyncio.all_tasks(self):
            pending = asyncio.all_tasks(self)
            self.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        super().close()

    def call_soon_threadsafe(self, callback, *args, context=None):
        """As asyncio's, but a closed loop drops the callback: a read of tensorstore
        that nobody awaits any more (its task was cancelled) completing late."""
        try:
            return super().call_soon_threadsafe(callback, *args, context=context)
        except RuntimeError:
            if self.is_closed():
                return None
            raise


class _DrainingPolicy(asyncio.DefaultEventLoopPolicy):
    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        return _DrainingLoop()


@contextlib.contextmanager
def _draining_event_loops():
    """New event loops (orbax's) are :class:`_DrainingLoop` within the block."""
    previous = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(_DrainingPolicy())
    try:
        yield
    finally:
        asyncio.set_event_loop_policy(previous)


def _read(path: Path, restore: Callable[[], Any]) -> Any:
    """``restore()``, with any failure reported as a :class:`CheckpointError` naming ``path``."""
    try:
        with _draining_event_loops():
            return restore()
    except Exception as err:  # orbax and tensorstore raise many kinds of error on bad files
        raise CheckpointError(
            f"cannot read the checkpoint {path} ({type(err).__name__}: {_shorten(str(err))}). "
            + _ADVICE
        ) from err


def _shorten(message: str, limit: int = 300) -> str:
    """The first ``limit`` characters of ``message`` (tensorstore's errors quote whole specs)."""
    return message if len(message) <= limit else message[:limit] + "..."


def _check_meta(meta: Any, step: int, path: Path) -> None:
    """Raise :class:`CheckpointError` unless ``meta`` is what :func:`_save` writes."""
    keys = {"format", "step", "fingerprint", "metrics_shapes", "checksum"}
    if not isinstance(meta, dict) or set(meta) != keys:
        raise CheckpointError(f"the checkpoint {path} has malformed metadata. " + _ADVICE)
    if meta["format"] != _FORMAT or meta["step"] != step:
        raise CheckpointError(
            f"the checkpoint {path} has format {meta['format']!r} and step {meta['step']!r}, "
            f"expected format {_FORMAT} and step {step}. " + _ADVICE
        )


def _check_no_strays(directory: Path) -> None:
    """Raise :class:`CheckpointError` when ``directory`` holds no checkpoint but other
    files (orbax's unfinished temporary folders aside): rather than start over
    silently beside something that may be a damaged checkpoint."""
    if not directory.exists():
        return
    strays = sorted(p.name for p in directory.iterdir() if ".orbax-checkpoint-tmp" not in p.name)
    if strays:
        raise CheckpointError(
            f"{directory} holds no readable checkpoint but other files ({', '.join(strays)}); "
            "give each run an empty directory of its own, or delete that one to start over."
        )


def _differences(saved: Any, expected: Any, name: str = "") -> list[str]:
    """Lines ``name: checkpoint has X, this run has Y`` for every entry of two nested
    JSON dicts that differ."""
    if isinstance(saved, dict) and isinstance(expected, dict):
        return [
            line
            for key in sorted(set(saved) | set(expected))
            for line in _differences(
                saved.get(key, "nothing"), expected.get(key, "nothing"), f"{name} {key}".strip()
            )
        ]
    return [] if saved == expected else [f"{name}: checkpoint has {saved}, this run has {expected}"]

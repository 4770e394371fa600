"""``--profile DIR``: a jax.profiler trace of the work a CLI command runs.

``jax.profiler.trace(DIR)`` needs nothing beyond jax to write a trace. It writes
``DIR/plugins/profile/<date_time>/<host>.xplane.pb`` (the XSpace protobuf that
TensorBoard's profile plugin, ``tensorboard-plugin-profile`` / ``xprof``, reads:
``tensorboard --logdir DIR``) and ``<host>.trace.json.gz`` (the same timeline in
Chrome trace-event JSON, which https://ui.perfetto.dev or chrome://tracing open
directly). On the CPU the trace holds an event for every XLA operation of every
loop iteration: Figure 8.2 with 2 runs gave a 360 MB trace and ran 20x slower
(fewer Python or host events do not shrink it), so profile short runs. Commands
share the option through :func:`add_profile_argument` and
wrap their work in :func:`profile_to`::

    with profile_to(args.profile):
        result = module.run(...)
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TRACE_PATTERNS = ("*.xplane.pb", "*.trace.json.gz")


def add_profile_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--profile DIR`` (default None: no trace) to a sub-command's parser."""
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="write a jax.profiler trace of the run into DIR (TensorBoard / Perfetto)",
    )


@contextmanager
def profile_to(log_dir: str | Path | None) -> Iterator[Path | None]:
    """Trace everything run inside the block into ``log_dir`` with
    ``jax.profiler.trace``; do nothing when ``log_dir`` is None. Yields the folder.
    (jax is imported here, so that parsing a command line does not import it.)"""
    import jax

    if log_dir is None:
        yield None
        return
    log_dir = Path(log_dir)
    with jax.profiler.trace(log_dir):
        yield log_dir


def trace_files(log_dir: str | Path) -> list[Path]:
    """The trace files under ``log_dir`` (every traced run's), sorted by path."""
    root = Path(log_dir)
    return sorted(path for pattern in TRACE_PATTERNS for path in root.rglob(pattern))

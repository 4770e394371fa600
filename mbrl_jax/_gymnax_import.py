"""gymnax, imported without the plotting libraries it loads only to render.

gymnax 1.0.1's ``gymnax/__init__`` imports every environment module, and five of them
import plotting libraries at module level for their ``render`` methods: pong imports
seaborn (which imports scipy.stats and pandas); catch, rooms, point_robot and meta_maze
import ``matplotlib.pyplot``. On a 2-core CPU that is about 2 s of a 4.5 s start-up,
paid by every command, though no environment we use renders.

Importing this module (``mbrl_jax/__init__`` does it first) puts a finder on
``sys.meta_path`` that waits for the first ``import gymnax`` and runs it with each of
:data:`RENDER_ONLY_MODULES` stood in for by a :class:`_ImportedOnFirstUse`; afterwards
the stand-ins leave ``sys.modules`` again, so anyone else's ``import seaborn`` gets the
real module, and gymnax's own modules import the real one on their first use of it.
gymnax is not imported here: it makes an array at import (frozen_lake), which starts
JAX's backends, and :func:`mbrl_jax.sweep.use_every_core` must run before that.
"""

import contextlib
import importlib.abc
import importlib.util
import sys
import types
from collections.abc import Iterator

RENDER_ONLY_MODULES = ("seaborn", "matplotlib.pyplot")


class _ImportedOnFirstUse(types.ModuleType):
    """A module's stand-in: the first attribute read imports the real module."""

    def __getattr__(self, name: str):
        if sys.modules.get(self.__name__) is self:  # still inside gymnax's import
            raise AttributeError(name)
        return getattr(importlib.import_module(self.__name__), name)


@contextlib.contextmanager
def _render_only_modules_deferred() -> Iterator[None]:
    deferred = [name for name in RENDER_ONLY_MODULES if name not in sys.modules]
    for name in deferred:
        sys.modules[name] = _ImportedOnFirstUse(name)
    try:
        yield
    finally:
        for name in deferred:
            if isinstance(sys.modules.get(name), _ImportedOnFirstUse):
                del sys.modules[name]


class _DeferringLoader(importlib.abc.Loader):
    """gymnax's own loader, executing the package with the render modules deferred."""

    def __init__(self, loader: importlib.abc.Loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        with _render_only_modules_deferred():
            self._loader.exec_module(module)

    def __getattr__(self, name: str):  # get_source, get_resource_reader, ...
        return getattr(self._loader, name)


class _GymnaxFinder(importlib.abc.MetaPathFinder):
    """Finds gymnax once, through the other finders, and wraps its loader."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "gymnax":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _DeferringLoader(spec.loader)
        return spec


if "gymnax" not in sys.modules and not any(isinstance(f, _GymnaxFinder) for f in sys.meta_path):
    sys.meta_path.insert(0, _GymnaxFinder())

"""The public/private line: what each package publishes in ``__all__`` is what the rest
of the code imports from it, and nothing imports another package's ``_private`` names.

A *package* is a top-level unit of the library: a subpackage (``mbrl_jax.models``,
``.learners``, ``.search``, ``.planners``, ``.envs``) or a top-level module
(``mbrl_jax.dyna``, ``.train``, ...). Modules inside one subpackage may share private
helpers; code outside it (other packages, experiments, benchmarks) imports from the
subpackage itself and only names in its ``__all__``. Tests may reach in.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SUBPACKAGES = sorted(p.parent.name for p in (ROOT / "mbrl_jax").glob("*/__init__.py"))
CHECKED = [
    p
    for folder in ("mbrl_jax", "experiments", "benchmarks")
    for p in sorted((ROOT / folder).rglob("*.py"))
]


def unit_of_module(module: str) -> str | None:
    """``mbrl_jax.models.neural`` -> ``mbrl_jax.models``; ``mbrl_jax.dyna`` -> itself."""
    parts = module.split(".")
    if parts[0] != "mbrl_jax" or len(parts) == 1:
        return "mbrl_jax" if parts == ["mbrl_jax"] else None
    return ".".join(parts[:2])


def unit_of_file(path: Path) -> str:
    relative = path.relative_to(ROOT).with_suffix("")
    parts = [p for p in relative.parts if p != "__init__"]
    return unit_of_module(".".join(parts)) or parts[0]


def imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(module, names, line) of every ``from mbrl_jax... import names`` in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] == "mbrl_jax":
                found.append((node.module, [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("mbrl_jax."):
                    found.append((alias.name, [], node.lineno))
    return found


def public_names(unit: str) -> set[str]:
    module = importlib.import_module(unit)
    names = getattr(module, "__all__", None)
    if names is None:
        return {n for n in vars(module) if not n.startswith("_")}
    return set(names)


def cross_package_violations(path: Path) -> list[str]:
    here = unit_of_file(path)
    problems = []
    for module, names, line in imports(path):
        there = unit_of_module(module)
        if there is None or there == here or there == "mbrl_jax":
            continue
        where = f"{path.relative_to(ROOT)}:{line}"
        if module != there and there.split(".")[1] in SUBPACKAGES:
            problems.append(f"{where} imports from {module}; import from {there}")
        private = [n for n in names if n.startswith("_")]
        unpublished = sorted(set(names) - public_names(there) - set(private))
        if private:
            problems.append(f"{where} imports private {private} from {module}")
        if unpublished:
            problems.append(f"{where} imports {unpublished}, not in {there}.__all__")
    return problems


def test_no_package_imports_another_packages_private_names():
    problems = [p for path in CHECKED for p in cross_package_violations(path)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("unit", ["mbrl_jax", *(f"mbrl_jax.{p}" for p in SUBPACKAGES)])
def test_all_lists_public_names_that_exist(unit):
    module = importlib.import_module(unit)
    for name in module.__all__:
        assert not name.startswith("_"), f"{unit}.__all__ lists private {name}"
        assert hasattr(module, name), f"{unit}.__all__ lists {name}, which it lacks"


def test_the_checker_catches_a_private_import():
    bad = ROOT / "experiments" / "_surface_probe.py"
    bad.write_text("from mbrl_jax.models.neural import _nothing\nfrom mbrl_jax.dyna import _x\n")
    try:
        problems = cross_package_violations(bad)
    finally:
        bad.unlink()
    assert any("import from mbrl_jax.models" in p for p in problems)
    assert any("private ['_x']" in p for p in problems)

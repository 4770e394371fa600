"""Packaging beyond pyproject.toml: the repository's ``experiments/`` folder is installed
as ``mbrl_jax.experiments`` (no generic top-level ``experiments`` package in
site-packages); ``benchmarks/`` stays in the repository only."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["mbrl_jax", "mbrl_jax.*"]), "mbrl_jax.experiments"],
    package_dir={"mbrl_jax.experiments": "experiments"},
)

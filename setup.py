"""What pyproject.toml cannot say alone: the top-level presets/ folder installs as the package data
of `tfbench.presets`, beside the tfbench packages found as usual (the rest is in pyproject.toml)."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["tfbench*"]), "tfbench.presets"],
    package_dir={"tfbench.presets": "presets"},
)

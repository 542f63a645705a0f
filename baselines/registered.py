"""Importing this module registers every built-in method: eqbench's `eqbench.method_modules` entry point
(pyproject.toml) names it, so the contract (eqbench/method.py) never imports the implementations itself,
while `import baselines` stays cheap for the torch-free catalog."""

from . import load_all

load_all()

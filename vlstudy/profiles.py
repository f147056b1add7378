"""The study's notebooks and its parameter profiles (``params/<name>.yaml``).

A profile is data: ``common`` settings for every notebook, ``notebooks.<name>`` for one.
``$VAR`` in its strings comes from the environment (the paper profile's data folders).
"""
from __future__ import annotations

import os
from pathlib import Path

import yaml

from .paths import notebooks_dir, params_dir


def notebook_paths() -> dict[str, Path]:
    """Study notebooks by name: ``01_world_tour.ipynb`` is ``world_tour``."""
    out = {}
    for path in sorted(notebooks_dir().glob("[0-9][0-9]_*.ipynb")):
        out[path.stem.split("_", 1)[1]] = path
    return out


def load_profile(profile: str) -> dict:
    path = params_dir() / f"{profile}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in params_dir().glob("*.yaml"))
        raise ValueError(f"unknown profile {profile!r}: no {path}; known profiles: {known}")
    data = yaml.safe_load(path.read_text()) or {}
    unknown = set(data) - {"common", "notebooks"}
    if unknown:
        raise ValueError(f"{path}: unknown top-level key(s) {sorted(unknown)}; "
                         "expected 'common' and 'notebooks'")
    return _expand_env(data, str(path))


def _expand_env(value, where: str):
    """``$VAR`` / ``${VAR}`` in a profile's strings from the environment (the paper profile's
    data and BERT folders); an unset variable is an error naming it."""
    if isinstance(value, dict):
        return {k: _expand_env(v, f"{where}: {k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, where) for v in value]
    if isinstance(value, str) and "$" in value:
        expanded = os.path.expandvars(value)
        if "$" in expanded:
            raise ValueError(f"{where}: {value!r} names an environment variable that is not set")
        return expanded
    return value

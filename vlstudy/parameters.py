"""A notebook's parameters: one resolution, whether papermill or JupyterLab runs it.

Every parameter gets its value from the first of:

1. a value given explicitly: by papermill, or by the command line's executor settings;
   a given value that equals the cell's default counts as not given;
2. the profile (``params/<profile>.yaml``): its section for the notebook, then ``common:``;
3. the notebook's parameters cell.

So a notebook opened in JupyterLab and run top to bottom (its ``profile`` cell default is
``small``) computes exactly what ``vlstudy study --profile small --only NAME`` does. A
training setting has its default in one place, ``study.Recipe``: the cells declare the ones
a reader may want to turn as ``None`` ("the recipe's"); a profile's ``common:`` may carry any
Recipe setting, and a notebook that does not declare it gets it in its ``recipe`` dict. A key
that is neither a Recipe setting nor the notebook's parameter is an error.
"""
from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

from .inputs import check_types
from .profiles import load_profile, notebook_paths


def declared(path: Path) -> dict:
    """The notebook's parameters cell, as papermill reads it: name → {default, type, ...}."""
    import papermill as pm
    return pm.inspect_notebook(str(path))


def cell_defaults(cell: dict) -> dict:
    """The parameters cell's defaults as values (they are literals)."""
    return {name: ast.literal_eval(p["default"]) for name, p in cell.items()}


def resolve(profile: str, name: str, path: Path, given: dict | None = None,
            recipe: dict | None = None, cell: dict | None = None) -> dict:
    """The parameters notebook ``name`` (at ``path``) runs with under ``profile``: ``given``
    (papermill's or the kernel's values), over the profile, over the cell's defaults;
    ``recipe``: Recipe settings (the command line's executor) merged into ``recipe``; ``cell``:
    the parameters cell, when the caller has read it already."""
    from .study import Recipe
    cell = cell or declared(path)
    defaults = cell_defaults(cell)
    where = f"profile {profile!r}, notebook {name!r}"
    data = load_profile(profile)
    recipe_fields = {f.name for f in dataclasses.fields(Recipe)}
    params, extra = dict(defaults), {}
    for key, value in (data.get("common") or {}).items():
        if key in cell:
            params[key] = value
        elif key in recipe_fields:
            extra[key] = value            # a training setting this notebook does not declare
        else:
            raise ValueError(f"{where}: common key {key!r} is neither one of the notebook's parameters "
                             f"(it declares {sorted(cell)}) nor a Recipe setting")
    section = (data.get("notebooks") or {}).get(name) or {}
    unknown = sorted(set(section) - set(cell))
    if unknown:
        raise ValueError(f"profile {profile!r} gives notebook {name!r} parameter(s) {unknown} that "
                         f"its parameters cell does not declare (it declares {sorted(cell)})")
    params.update(section)
    params["profile"] = profile
    explicit = {k: v for k, v in (given or {}).items() if k in cell and v != defaults[k]}
    params.update(explicit)
    if "recipe" in cell:
        merged = {**extra, **(params.get("recipe") or {}), **(recipe or {})}
        params["recipe"] = merged or None
    check_types(params, cell, where)
    return params


def use_profile(name: str, namespace: dict) -> dict:
    """For the notebook's first code cell: its parameters resolved under the profile its
    ``profile`` parameter names, written back into ``namespace`` (the notebook's globals).
    Says which values the profile replaced: an edit to the parameters cell that is saved is
    the cell's default, and a profile that sets the same key wins over it."""
    path = notebook_paths()[name]
    cell = declared(path)
    before = {k: namespace[k] for k in cell if k in namespace}
    params = resolve(namespace["profile"], name, path, before, cell=cell)
    replaced = sorted(k for k, v in params.items() if k in before and before[k] != v and k != "recipe")
    if replaced:
        print(f"profile {namespace['profile']!r} sets {', '.join(replaced)} "
              f"(params/{namespace['profile']}.yaml; assign a value below this cell to try another)")
    namespace.update(params)
    return params

"""The study's own inputs, checked before any work starts.

A profile's or notebook's parameter of the wrong type, a model, pretraining set or task
that the data root does not have, a BERT folder or checkpoint that is not there: each is a
one-line error naming the parameter and what was expected, raised by ``vlstudy study``
before the first notebook runs (``check_types``, ``check_what_parameters_name``) and by
``Study`` when it makes a run's spec (``check_spec_inputs``), so a hand-run notebook stops
at its first grid, not in a worker after other runs have trained.
"""
from __future__ import annotations

import ast
from pathlib import Path

from . import stages, tasks
from .models import ARCHITECTURES
from .roots import open_data, opened
from .sources import GENERATED, NO_PRETRAINING, RANDOM_INIT, RELEASED

ARCHS = tuple(ARCHITECTURES)
# Notebook parameters that name things, by what they name
NAMES = {"arch": ("archs", "size_archs", "beyond_archs", "arch", "checkpoint_arch", "variance_arch"),
         "pretraining set": ("pretraining_sets", "compare_sets", "reference_sets", "checkpoint_set", "far_set"),
         "task": ("tasks", "low_resource", "variance_tasks", "other_tasks", "task", "drift_task"),
         "dataset": ("flickr_images",)}
# Parameters whose notebook declares one type but documents another as well
ALSO = {"finetune_steps": (int,)}                          # {task: updates} or one number
_TYPES = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,), "list": (list,),
          "dict": (dict,)}


def _declared_types(name: str, declared: dict) -> tuple | None:
    """The types a parameter may take: its annotation's, or its default's (None: any)."""
    type_name = declared["inferred_type_name"].split("[")[0]
    if type_name in _TYPES:
        return _TYPES[type_name] + ALSO.get(name, ())
    try:
        default = ast.literal_eval(declared["default"])
    except (ValueError, SyntaxError):
        return None
    if default is None:
        return None
    return _TYPES.get(type(default).__name__, (type(default),)) + ALSO.get(name, ())


def check_types(params: dict, declared: dict, where: str) -> None:
    """Every parameter of the type its notebook declares (None stands for the default)."""
    for name, value in params.items():
        types = _declared_types(name, declared[name]) if name in declared else None
        if value is None or types is None:
            continue
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            expected = " or ".join(t.__name__ for t in types)
            raise ValueError(f"{where}: parameter {name!r} should be {expected}, got "
                             f"{type(value).__name__} {value!r}")


def check_field_types(obj, where: str) -> None:
    """A dataclass's fields of their annotated types (``"int | dict"``, ``"str | None"``; an
    int is a float, a bool is not an int). Annotations naming other types are not checked."""
    import dataclasses
    for field in dataclasses.fields(obj):
        names = [n.strip() for n in str(field.type).split("|")]
        if not all(n in _TYPES or n == "None" for n in names):
            continue
        value = getattr(obj, field.name)
        if value is None and "None" in names:
            continue
        types = tuple(t for n in names if n in _TYPES for t in _TYPES[n])
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise ValueError(f"{where}: {field.name} should be {' or '.join(names)}, got "
                             f"{type(value).__name__} {value!r}")


def known_names(world: str, world_seed: int | None = None) -> dict[str, set]:
    """What a data root lets a study name: its architectures, its pretraining sets (with
    direct training, random init and the generated sets) and its tasks."""
    root = open_data(world, world_seed)
    pretraining = {d for d in root.datasets if tasks.is_pretraining(root.info(d))}
    return {"arch": set(ARCHS), "pretraining set": pretraining | set(GENERATED) | {NO_PRETRAINING, RANDOM_INIT},
            "task": set(root.datasets) - pretraining, "dataset": set(root.datasets)}


def check_names(params: dict, world: str, world_seed: int | None, where: str) -> None:
    """Every model, pretraining set and task a notebook's parameters name exists in its data;
    a released checkpoint ("mmf:<file>") must be a file that exists."""
    known = None
    named = [(kind, key, params.get(key)) for kind, keys in NAMES.items() for key in keys]
    for k, entry in enumerate(params.get("primary") or []):     # the primaries name cells too
        if isinstance(entry, dict):
            named += [("arch", f"primary[{k}].arch", entry.get("arch")), ("task", f"primary[{k}].task", entry.get("task")),
                      ("pretraining set", f"primary[{k}].a", entry.get("a")),
                      ("pretraining set", f"primary[{k}].b", entry.get("b"))]
    for kind, key, value in named:
        for name in [value] if isinstance(value, str) else value or []:
            if kind == "pretraining set" and isinstance(name, str) and name.startswith(RELEASED):
                check_start_from(name[len(RELEASED):], f"{where}: {key}")
                continue
            known = known or known_names(world, world_seed)
            if name not in known[kind]:
                raise ValueError(f"{where}: parameter {key!r} names {kind} {name!r}, which {world!r} does "
                                 f"not have; known: {sorted(known[kind])}")


def check_start_from(path, where: str) -> None:
    if not Path(path).exists():
        raise FileNotFoundError(f"{where}: {path} does not exist (a BERT folder or MMF checkpoint to start from)")


def check_what_parameters_name(params: dict, world: str, world_seed: int | None, where: str, cwd: Path) -> None:
    """What a notebook's parameters point to exists: the BERT folder, and the models,
    pretraining sets and tasks in its data root (``world`` at ``world_seed``, the Recipe's;
    opened, and a world preset built on first use, as the notebook would). Relative paths
    are read from ``cwd``, the folder the notebook runs in."""
    import contextlib
    with contextlib.chdir(cwd):
        recipe = params.get("recipe") or {}
        if recipe.get("bert_dir"):
            check_start_from(recipe["bert_dir"], f"{where}: recipe.bert_dir")
        check_names(params, world, world_seed, where)


def check_spec_inputs(spec) -> None:
    """A run's spec names a known model and a dataset its data root has, of the kind its stage
    trains on; the folder or file it starts from exists."""
    kind = stages.get(spec.stage).dataset_kind        # pretraining and finetuning read the world
    if kind is not None and spec.arch not in ARCHS:
        raise ValueError(f"unknown model {spec.arch!r}; known: {list(ARCHS)}")
    if spec.start_from is not None:
        check_start_from(spec.start_from, f"run {spec.stage} {spec.arch} {spec.dataset}")
    if kind is not None:
        root = opened(spec.world, spec.world_seed)
        if not (root.folder / "datasets" / spec.dataset).is_dir():     # one stat per spec, no listing
            raise ValueError(f"no dataset {spec.dataset!r} in {spec.world!r}; it has {root.datasets}")
        is_pretraining = tasks.is_pretraining(root.info(spec.dataset))
        # pretraining on generated text (text_from) reads a dataset's images: a task's too (Flickr-G)
        if is_pretraining != (kind == tasks.PRETRAINING) and spec.text_from is None:
            raise ValueError(f"{spec.dataset!r} is a {'pretraining set' if is_pretraining else 'task'}: "
                             f"it cannot be {'pretrained' if kind == tasks.PRETRAINING else 'finetuned'} on")

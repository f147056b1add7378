"""A data root by name: a synthetic world preset, or a folder ``vlstudy prepare`` wrote.

Above both ``data`` (the layout) and ``world`` (which builds one), so neither imports the other
back.
"""
from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from .data.records import read_info
from .data.root import DataRoot
from .paths import content_digest, outputs_root
from .world import PRESETS, open_world, world_spec


def open_data(name: str, world_seed: int | None = None) -> DataRoot:
    """A data root by name: a synthetic world preset ("smoke", "small", "full"), at its own
    seed or at ``world_seed``, built on first use; or the path of a folder ``vlstudy prepare``
    wrote (the real datasets, which have no seed)."""
    if name in PRESETS:
        return open_world(name, seed=world_seed)
    if world_seed is not None:
        raise ValueError(f"world_seed {world_seed} is for the synthetic world presets; "
                         f"{name!r} is a prepared data root")
    folder = Path(name).expanduser()
    if not (folder / "datasets").is_dir():
        raise ValueError(f"data {name!r} is neither a world preset ({sorted(PRESETS)}) nor a "
                         f"prepared data root (a folder with datasets/; see `vlstudy prepare`)")
    return DataRoot(folder)


def opened(world: str, world_seed: int | None = None) -> DataRoot:
    """``open_data``, once per outputs folder: a Study makes hundreds of specs."""
    return _opened_under(str(outputs_root()), world, world_seed)


@functools.lru_cache(maxsize=16)
def _opened_under(outputs: str, world: str, world_seed: int | None) -> DataRoot:
    return open_data(world, world_seed)


def data_digest(name: str, dataset: str | None = None, world_seed: int | None = None) -> str:
    """What a run on ``dataset`` of ``name`` depends on: a world's spec; for a prepared root,
    that dataset's description and its store's list of images, not the root's other datasets
    (preparing one more leaves finished runs valid)."""
    if name in PRESETS:
        return world_spec(name, seed=world_seed).digest()
    root = open_data(name, world_seed)
    info = root.folder / "datasets" / str(dataset) / "dataset.json"
    if not info.exists():                                   # e.g. the BERT stage's "corpus"
        return hashlib.sha256(str(root.folder.resolve()).encode()).hexdigest()[:12]
    store = root.folder / "stores" / read_info(info.parent).store / "image_ids.json"
    return content_digest(info)[:6] + content_digest(store)[:6]

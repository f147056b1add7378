"""Region-feature stores: padded arrays on disk, memory-mapped for reading.

A store folder holds ``image_ids.json`` and four ``.npy`` arrays aligned on the image axis:
``features`` (N, R, D) float32, ``boxes`` (N, R, 5) float32 as ``[x1, y1, x2, y2, area]``
in [0, 1], ``cls_prob`` (N, R, C) float32 detector class distributions, and
``num_regions`` (N,) int64. Reading a batch is one fancy-index per array on a memmap, so
the loader never waits on Python loops.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from ..paths import swap_in_dir

ARRAYS = ("features", "boxes", "cls_prob", "num_regions")


def write_store(folder: Path, image_ids: list[str], features: np.ndarray, boxes: np.ndarray,
                cls_prob: np.ndarray, num_regions: np.ndarray) -> None:
    """Write a store atomically: to a temporary folder, then swapped in for the old one (if
    any), which stays whole until the new one is in place."""
    folder = Path(folder)
    n, r, _ = features.shape
    expect = {"boxes": (n, r, 5), "cls_prob": (n, r, cls_prob.shape[-1]), "num_regions": (n,)}
    for name, arr in (("boxes", boxes), ("cls_prob", cls_prob), ("num_regions", num_regions)):
        if arr.shape != expect[name]:
            raise ValueError(f"store {folder}: {name} has shape {arr.shape}, expected {expect[name]}")
    if len(image_ids) != n or len(set(image_ids)) != n:
        raise ValueError(f"store {folder}: need {n} unique image ids, got {len(image_ids)} "
                         f"({len(set(image_ids))} unique)")
    tmp = folder.with_name(f"{folder.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        np.save(tmp / "features.npy", features.astype(np.float32, copy=False))
        np.save(tmp / "boxes.npy", boxes.astype(np.float32, copy=False))
        np.save(tmp / "cls_prob.npy", cls_prob.astype(np.float32, copy=False))
        np.save(tmp / "num_regions.npy", num_regions.astype(np.int64, copy=False))
        (tmp / "image_ids.json").write_text(json.dumps(list(image_ids)))
        swap_in_dir(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)     # nothing half-written stays
        raise


class FeatureStore:
    """Read side of a store: ``store.gather(indices)`` → dict of (B, ...) arrays."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        ids_path = self.folder / "image_ids.json"
        if not ids_path.exists():
            raise FileNotFoundError(f"not a feature store (no image_ids.json): {self.folder}")
        self.image_ids: list[str] = json.loads(ids_path.read_text())
        self._index = {i: k for k, i in enumerate(self.image_ids)}
        self.arrays = {}
        for name in ARRAYS:
            path = self.folder / f"{name}.npy"
            if not path.exists():
                raise FileNotFoundError(f"feature store {self.folder} is missing {name}.npy")
            self.arrays[name] = np.load(path, mmap_mode="r")
            if len(self.arrays[name]) != len(self.image_ids):
                raise ValueError(f"feature store {self.folder}: {name}.npy has "
                                 f"{len(self.arrays[name])} rows for {len(self.image_ids)} image ids")
        self.num_images, self.max_regions, self.dim = self.arrays["features"].shape
        self.num_classes = self.arrays["cls_prob"].shape[-1]

    def __len__(self) -> int:
        return self.num_images

    def index_of(self, image_ids: list[str], where: str = "") -> np.ndarray:
        """Row of each image id; a missing one is an error naming it and the store."""
        try:
            return np.fromiter((self._index[i] for i in image_ids), np.int64, len(image_ids))
        except KeyError as e:
            raise KeyError(f"{where or 'records'}: image {e.args[0]!r} has no features in "
                           f"store {self.folder}") from None

    def gather(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        rows = np.asarray(rows)
        order = np.argsort(rows)            # memmaps read fastest in file order
        out = {}
        for name, arr in self.arrays.items():
            got = arr[rows[order]]
            out[name] = np.empty_like(got)
            out[name][order] = got
        return out

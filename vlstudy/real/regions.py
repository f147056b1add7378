"""Readers for region-feature files as detectors write them, one image at a time.

Three forms (``../shared/notes/formats.md`` §7): the bottom-up-attention TSV, MMF's LMDB
(pickled dicts) and MMF's per-image ``<name>.npy`` + ``<name>_info.npy``. Each yields
``ImageRegions`` with pixel boxes; ``to_store_rows`` turns one into the study's padded
form: 5-d normalised boxes ``[x1/W, y1/H, x2/W, y2/H, area]``, at most ``max_regions``
rows, and ``cls_prob`` with the detector's classes first and background last (the
store's layout; Visual Genome files put background first, or leave it out).
"""
from __future__ import annotations

import base64
import csv
import os
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

TSV_FIELDS = ("image_id", "image_w", "image_h", "num_boxes", "boxes", "features")
VG_CLASSES = 1600        # Visual Genome objects; detectors add a background class (1601)


@dataclass
class ImageRegions:
    name: str                        # the image as the file names it
    width: int
    height: int
    boxes: np.ndarray                # (N, 4) x1, y1, x2, y2 in pixels
    features: np.ndarray             # (N, D)
    cls_prob: np.ndarray | None      # (N, C) detector class scores, if the file has them
    where: str                       # file and line / key, for error messages


def _decode(text: str, where: str, field: str, rows: int) -> np.ndarray:
    try:
        flat = np.frombuffer(base64.b64decode(text), dtype=np.float32)
    except ValueError as e:
        raise ValueError(f"{where}: field {field!r} is not base64 ({e})") from None
    if rows <= 0 or flat.size % rows:
        raise ValueError(f"{where}: field {field!r} holds {flat.size} floats, not a multiple of "
                         f"num_boxes {rows}")
    return flat.reshape(rows, -1)


def _everything(name: str) -> bool:
    return True


def read_bottom_up_tsv(path: Path, keep=_everything) -> Iterator[ImageRegions]:
    """``image_id, image_w, image_h, num_boxes, boxes, features`` per line, no header,
    base64 float32 arrays (``peteanderson80/bottom-up-attention``'s ``generate_tsv.py``)."""
    csv.field_size_limit(sys.maxsize)
    with open(path, newline="", encoding="ascii") as f:
        for n, row in enumerate(csv.reader(f, delimiter="\t"), 1):
            where = f"{path}:{n}"
            if len(row) != len(TSV_FIELDS):
                raise ValueError(f"{where}: expected {len(TSV_FIELDS)} tab-separated fields "
                                 f"{TSV_FIELDS}, got {len(row)}")
            if not keep(row[0]):
                continue
            try:
                width, height, num = int(row[1]), int(row[2]), int(row[3])
            except ValueError:
                raise ValueError(f"{where}: image_w, image_h and num_boxes must be integers, got "
                                 f"{row[1:4]}") from None
            boxes = _decode(row[4], where, "boxes", num)
            if boxes.shape[1] != 4:
                raise ValueError(f"{where}: boxes have {boxes.shape[1]} numbers each, expected 4")
            yield ImageRegions(row[0], width, height, boxes, _decode(row[5], where, "features", num),
                               None, where)


def _from_dict(item, name: str, where: str) -> ImageRegions:
    """An MMF feature dict (LMDB value or ``_info.npy`` plus the features array)."""
    if not isinstance(item, dict):
        raise ValueError(f"{where}: expected a dict of features and info, got {type(item).__name__}")
    missing = [k for k in ("features", "bbox", "image_width", "image_height") if k not in item]
    if missing:
        raise ValueError(f"{where}: missing field(s) {missing}")
    cls_prob = item.get("cls_prob")
    return ImageRegions(name, int(item["image_width"]), int(item["image_height"]),
                        np.asarray(item["bbox"], np.float32), np.asarray(item["features"], np.float32),
                        None if cls_prob is None else np.asarray(cls_prob, np.float32), where)


def read_mmf_lmdb(path: Path, keep=_everything) -> Iterator[ImageRegions]:
    """MMF's LMDB: ``b"keys"`` → pickled list of keys; each key → a pickled dict with
    ``features``, ``bbox``, ``image_width``, ``image_height``, ``cls_prob`` (or None).
    The values are pickles: open only files you trust, as with MMF itself."""
    import lmdb
    env = lmdb.open(str(path), subdir=os.path.isdir(path), readonly=True, lock=False,
                    readahead=False, meminit=False)
    try:
        with env.begin() as txn:
            raw = txn.get(b"keys")
            if raw is None:
                raise ValueError(f"{path}: no b'keys' entry (not an MMF feature LMDB)")
            for key in pickle.loads(raw):
                if not keep(key.decode()):
                    continue
                where = f"{path}[{key!r}]"
                value = txn.get(key)
                if value is None:
                    raise ValueError(f"{where}: listed in b'keys' but not stored")
                yield _from_dict(pickle.loads(value), key.decode(), where)
    finally:
        env.close()


def read_npy_folder(path: Path, keep=_everything) -> Iterator[ImageRegions]:
    """MMF's per-image ``<name>.npy`` (features) beside ``<name>_info.npy`` (a pickled dict)."""
    for feat in sorted(Path(path).glob("*.npy")):
        if feat.name.endswith("_info.npy") or not keep(feat.stem):
            continue
        info_path = feat.with_name(feat.stem + "_info.npy")
        if not info_path.exists():
            raise ValueError(f"{feat}: no {info_path.name} beside it")
        info = np.load(info_path, allow_pickle=True).item()
        yield _from_dict({**info, "features": np.load(feat)}, feat.stem, str(feat))


def read_regions(path: Path, keep=_everything) -> Iterator[ImageRegions]:
    """Any of the three forms, told apart by the path: ``*.tsv``, ``*.lmdb``, a folder of npy.
    ``keep(name)`` picks images by name before their arrays are decoded (a dataset often
    needs a part of a large store)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"feature file not found: {path}")
    if path.suffix == ".tsv":
        return read_bottom_up_tsv(path, keep)
    if path.suffix == ".lmdb" or (path / "data.mdb").exists():
        return read_mmf_lmdb(path, keep)
    if path.is_dir():
        return read_npy_folder(path, keep)
    raise ValueError(f"{path}: not a bottom-up TSV (*.tsv), an MMF LMDB (*.lmdb) or a folder of .npy")


def to_store_rows(img: ImageRegions, max_regions: int, dim: int, num_classes: int) -> dict:
    """One image padded to ``max_regions``: features (R, D), boxes (R, 5), cls_prob (R, C+1),
    num_regions. ``cls_prob`` may have ``num_classes + 1`` columns (background first, as the
    Visual Genome detectors write it) or ``num_classes`` (background dropped, MMF's default);
    anything else is an error. Regions beyond ``max_regions`` are cut, as MMF's reader does."""
    n = len(img.features)
    if img.features.ndim != 2 or img.features.shape[1] != dim:
        raise ValueError(f"{img.where}: features have shape {img.features.shape}, expected (N, {dim})")
    if img.boxes.shape != (n, 4):
        raise ValueError(f"{img.where}: boxes have shape {img.boxes.shape}, expected ({n}, 4)")
    if img.width <= 0 or img.height <= 0:
        raise ValueError(f"{img.where}: image size {img.width}x{img.height} is not positive")
    keep = min(n, max_regions)
    out = {"features": np.zeros((max_regions, dim), np.float32),
           "boxes": np.zeros((max_regions, 5), np.float32),
           "cls_prob": np.zeros((max_regions, num_classes + 1), np.float32),
           "num_regions": keep}
    out["features"][:keep] = img.features[:keep]
    b = img.boxes[:keep] / np.asarray([img.width, img.height, img.width, img.height], np.float32)
    out["boxes"][:keep] = np.concatenate([b, ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))[:, None]], 1)
    if img.cls_prob is not None:
        c = img.cls_prob
        if c.shape[0] != n:
            raise ValueError(f"{img.where}: cls_prob has {c.shape[0]} rows for {n} regions")
        if c.shape[1] == num_classes + 1:          # background first → last
            out["cls_prob"][:keep, :num_classes] = c[:keep, 1:]
            out["cls_prob"][:keep, num_classes] = c[:keep, 0]
        elif c.shape[1] == num_classes:            # no background column
            out["cls_prob"][:keep, :num_classes] = c[:keep]
        else:
            raise ValueError(f"{img.where}: cls_prob has {c.shape[1]} columns; expected {num_classes} "
                             f"(no background) or {num_classes + 1} (background first)")
    return out

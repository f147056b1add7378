"""Readers for region-feature files as detectors write them, one image at a time.

Three forms: the bottom-up-attention TSV, MMF's LMDB (pickled dicts) and MMF's per-image
``<name>.npy`` + ``<name>_info.npy``. Each yields ``ImageRegions`` with pixel boxes;
``to_store_rows`` checks one (finite numbers, boxes inside the image, class scores that
are probabilities) and turns it into the study's padded form: 5-d normalised boxes
``[x1/W, y1/H, x2/W, y2/H, area]``, at most ``max_regions`` rows, and ``cls_prob`` with the
detector's classes first and background last (the store's layout; Visual Genome files put
background first, or leave it out). A bad image is an error naming the file and the image:
a NaN written into the store would surface as a NaN loss far from its cause.
"""
from __future__ import annotations

import base64
import binascii
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

TSV_FIELDS = ("image_id", "image_w", "image_h", "num_boxes", "boxes", "features")
VG_CLASSES = 1600        # Visual Genome objects; detectors add a background class (1601)
# Detectors clip boxes to the image; a pixel of slack covers the ``w - 1`` vs ``w`` conventions
BOX_SLACK_PX = 1.0
PROBABILITY_SLACK = 1e-4     # class scores from a float16 or fused softmax round a little past [0, 1]


@dataclass
class ImageRegions:
    name: str                        # the image as the file names it
    width: int
    height: int
    boxes: np.ndarray                # (N, 4) x1, y1, x2, y2 in pixels
    features: np.ndarray             # (N, D)
    cls_prob: np.ndarray | None      # (N, C) detector class scores, if the file has them
    where: str                       # file and line / key, for error messages


def _decode(text: str, where: str, field: str, rows: int, width: int | None = None) -> np.ndarray:
    """A base64 float32 array of ``rows`` rows (and ``width`` numbers each, when known)."""
    try:
        flat = np.frombuffer(base64.b64decode(text, validate=True), dtype=np.float32)
    except (binascii.Error, ValueError) as e:
        raise ValueError(f"{where}: field {field!r} is not base64 float32 data ({e})") from None
    if flat.size == 0 or flat.size % rows or (width is not None and flat.size != rows * width):
        expected = f"num_boxes {rows} x {width}" if width else f"a multiple of num_boxes {rows}"
        raise ValueError(f"{where}: field {field!r} holds {flat.size} floats, expected {expected}")
    return flat.reshape(rows, -1)


def _everything(name: str) -> bool:
    return True


def read_bottom_up_tsv(path: Path, keep=_everything) -> Iterator[ImageRegions]:
    """``image_id, image_w, image_h, num_boxes, boxes, features`` per line, no header,
    base64 float32 arrays (``peteanderson80/bottom-up-attention``'s ``generate_tsv.py``;
    its fields never need quoting, so a line is split on tabs)."""
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            where = f"{path}:{n}"
            try:
                row = raw.decode("ascii").rstrip("\r\n").split("\t")
            except UnicodeDecodeError as e:
                raise ValueError(f"{where}: not ASCII (byte {e.start} of the line): base64 fields "
                                 "and numbers only") from None
            if len(row) != len(TSV_FIELDS):
                raise ValueError(f"{where}: expected {len(TSV_FIELDS)} tab-separated fields "
                                 f"{TSV_FIELDS}, got {len(row)}")
            if not keep(row[0]):
                continue
            where = f"{path}:{n} (image {row[0]})"
            try:
                width, height, num = int(row[1]), int(row[2]), int(row[3])
            except ValueError:
                raise ValueError(f"{where}: image_w, image_h and num_boxes must be integers, got "
                                 f"{row[1:4]}") from None
            if num < 1:
                raise ValueError(f"{where}: num_boxes is {num}; an image needs at least one region")
            boxes = _decode(row[4], where, "boxes", num, width=4)
            yield ImageRegions(row[0], width, height, boxes, _decode(row[5], where, "features", num),
                               None, where)


def _from_dict(item, name: str, where: str) -> ImageRegions:
    """An MMF feature dict (LMDB value or ``_info.npy`` plus the features array)."""
    if not isinstance(item, dict):
        raise ValueError(f"{where}: expected a dict of features and info, got {type(item).__name__}")
    missing = [k for k in ("features", "bbox", "image_width", "image_height") if k not in item]
    if missing:
        raise ValueError(f"{where}: missing field(s) {missing}")
    missing = [k for k in ("features", "bbox") if item[k] is None]
    if missing:
        raise ValueError(f"{where}: field(s) {missing} are None")
    try:
        width, height = int(item["image_width"]), int(item["image_height"])
        arrays = {k: None if item.get(k) is None else np.asarray(item[k], np.float32)
                  for k in ("features", "bbox", "cls_prob")}
        num = None if item.get("num_boxes") is None else int(item["num_boxes"])
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: image size, num_boxes and arrays must be numbers ({e})") from None
    if arrays["features"].ndim != 2:
        raise ValueError(f"{where}: features have shape {arrays['features'].shape}, expected (N, D)")
    # MMF's extraction keeps every row but counts in num_boxes only the confident boxes, so it
    # may be fewer than the rows (formats.md); more is an error
    if num is not None and num > len(arrays["features"]):
        raise ValueError(f"{where}: num_boxes is {num} but features have only {len(arrays['features'])} rows")
    return ImageRegions(name, width, height, arrays["bbox"], arrays["features"], arrays["cls_prob"], where)


def _unpickle(raw: bytes, where: str):
    try:
        return pickle.loads(raw)
    except Exception as e:             # a truncated or foreign value: pickle raises many kinds
        raise ValueError(f"{where}: not a readable pickle ({type(e).__name__}: {e})") from None


def read_mmf_lmdb(path: Path, keep=_everything) -> Iterator[ImageRegions]:
    """MMF's LMDB: ``b"keys"`` → pickled list of keys; each key → a pickled dict with
    ``features``, ``bbox``, ``image_width``, ``image_height``, ``cls_prob`` (or None).
    The values are pickles: open only files you trust, as with MMF itself."""
    import lmdb
    try:
        env = lmdb.open(str(path), subdir=os.path.isdir(path), readonly=True, lock=False,
                        readahead=False, meminit=False)
    except lmdb.Error as e:
        raise ValueError(f"{path}: not a readable LMDB ({e})") from None
    try:
        with env.begin() as txn:
            raw = txn.get(b"keys")
            if raw is None:
                raise ValueError(f"{path}: no b'keys' entry (not an MMF feature LMDB)")
            keys = _unpickle(raw, f"{path}[b'keys']")
            if not isinstance(keys, (list, tuple)) or not all(isinstance(k, bytes) for k in keys):
                raise ValueError(f"{path}[b'keys']: expected a list of byte-string keys, got "
                                 f"{type(keys).__name__}")
            for key in keys:
                where = f"{path}[{key!r}]"
                try:
                    name = key.decode("utf-8")
                except UnicodeDecodeError:
                    raise ValueError(f"{where}: the key is not UTF-8 text") from None
                if not keep(name):
                    continue
                value = txn.get(key)
                if value is None:
                    raise ValueError(f"{where}: listed in b'keys' but not stored")
                yield _from_dict(_unpickle(value, where), name, where)
    finally:
        env.close()


def _load_npy(path: Path, pickled: bool):
    try:
        return np.load(path, allow_pickle=pickled)
    except Exception as e:             # truncated headers and data raise ValueError, EOFError, ...
        raise ValueError(f"{path}: not a readable .npy file ({type(e).__name__}: {e})") from None


def read_npy_folder(path: Path, keep=_everything) -> Iterator[ImageRegions]:
    """MMF's per-image ``<name>.npy`` (features) beside ``<name>_info.npy`` (a pickled dict)."""
    for feat in sorted(Path(path).glob("*.npy")):
        if feat.name.endswith("_info.npy") or not keep(feat.stem):
            continue
        info_path = feat.with_name(feat.stem + "_info.npy")
        if not info_path.exists():
            raise ValueError(f"{feat}: no {info_path.name} beside it")
        info = _load_npy(info_path, pickled=True)
        if not (isinstance(info, np.ndarray) and info.shape == () and isinstance(info.item(), dict)):
            raise ValueError(f"{info_path}: expected a pickled dict (np.save of a dict), got "
                             f"{type(info).__name__} {getattr(info, 'shape', '')}")
        yield _from_dict({**info.item(), "features": _load_npy(feat, pickled=False)}, feat.stem, str(feat))


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
    if n == 0:
        raise ValueError(f"{img.where}: no regions; an image needs at least one")
    for field, values in (("features", img.features), ("boxes", img.boxes), ("cls_prob", img.cls_prob)):
        if values is not None and not np.isfinite(values).all():
            r = int(np.argwhere(~np.isfinite(values))[0][0])
            raise ValueError(f"{img.where}: {field} of region {r} hold NaN or infinite values")
    x1, y1, x2, y2 = img.boxes.T
    bad = ((x1 < -BOX_SLACK_PX) | (y1 < -BOX_SLACK_PX) | (x2 > img.width + BOX_SLACK_PX)
           | (y2 > img.height + BOX_SLACK_PX) | (x2 < x1) | (y2 < y1))
    if bad.any():
        r = int(np.argmax(bad))
        raise ValueError(f"{img.where}: box of region {r} {img.boxes[r].tolist()} is not an (x1, y1, x2, y2) "
                         f"box inside the {img.width}x{img.height} image")
    if img.cls_prob is not None and img.cls_prob.size and (img.cls_prob.min() < -PROBABILITY_SLACK
                                                            or img.cls_prob.max() > 1 + PROBABILITY_SLACK):
        raise ValueError(f"{img.where}: cls_prob holds values outside [0, 1]: not class probabilities")
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
        if c.ndim != 2 or c.shape[0] != n:
            raise ValueError(f"{img.where}: cls_prob has shape {c.shape}, expected ({n}, classes)")
        if c.shape[1] == num_classes + 1:          # background first → last
            out["cls_prob"][:keep, :num_classes] = c[:keep, 1:]
            out["cls_prob"][:keep, num_classes] = c[:keep, 0]
        elif c.shape[1] == num_classes:            # no background column
            out["cls_prob"][:keep, :num_classes] = c[:keep]
        else:
            raise ValueError(f"{img.where}: cls_prob has {c.shape[1]} columns; expected {num_classes} "
                             f"(no background) or {num_classes + 1} (background first)")
    return out

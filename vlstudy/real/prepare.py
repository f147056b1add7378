"""``vlstudy prepare``: official annotation files + region features → the study's data root.

The result has the layout of a built world (``datasets/<name>/``, ``stores/<store>/``), so
training and the notebooks read real data as they read the synthetic world. Everything is
checked before anything is kept: record ids unique, every record's image has features,
one feature width for all images. A failure leaves nothing behind (work happens in
temporary folders renamed at the end).
"""
from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.answers import ANSWER_VOCAB_SIZES, AnswerVocab
from ..data.features import FeatureStore
from ..metrics import normalize_answer
from ..data.records import Record, write_records
from ..paths import swap_in_dir
from . import annotations as ann
from .regions import VG_CLASSES, read_regions, to_store_rows


@dataclass(frozen=True)
class Kind:
    task: str
    numeric_images: bool      # image keys are numbers (COCO, Flickr30k ids)
    files: str                # what each split needs, for help and errors


KINDS = {
    "coco_captions": Kind("pretraining", True, "captions_<split>2014.json"),
    "karpathy": Kind("pretraining", True, "dataset_coco.json"),
    "vqa2": Kind("vqa", True, "questions.json [annotations.json]"),
    # VQA-P: the question and an answer as one text, MMF's masked_vqa2 "question [SEP] answer"
    # (MMF draws one of the ten answers each time; we keep the most frequent)
    "vqa2_pretraining": Kind("pretraining", True, "questions.json annotations.json"),
    "conceptual_captions": Kind("pretraining", False, "<split>.tsv"),
    "vizwiz": Kind("vizwiz", False, "<split>.json"),
    "snli_ve": Kind("snli_ve", True, "snli_ve_<split>.jsonl"),
    "mmimdb": Kind("mmimdb", False, "the mmimdb/ folder (split.json, dataset/)"),
}


def read_split(kind: str, paths: list, split: str, accepted: Counter | None = None) -> list[Record]:
    """The records of one split from its official file(s); the release's accepted oddities
    are counted in ``accepted``."""
    if kind not in KINDS:
        raise ValueError(f"unknown dataset kind {kind!r}; known: {sorted(KINDS)}")
    want = 2 if kind.startswith("vqa2") else 1
    if not 1 <= len(paths) <= want:
        raise ValueError(f"{kind} {split}: expected {KINDS[kind].files}, got {len(paths)} path(s)")
    first = Path(paths[0])
    if kind == "coco_captions":
        return ann.read_coco_captions(first)
    if kind == "karpathy":
        return ann.read_karpathy(first, split)
    if kind == "vqa2":
        return ann.read_vqa2(first, Path(paths[1]) if len(paths) > 1 else None,
                             test_split=ann.SPLIT_ALIASES.get(split) == "test", accepted=accepted)
    if kind == "vqa2_pretraining":
        if len(paths) != 2:
            raise ValueError(f"{kind} {split}: expected {KINDS[kind].files}")
        return [Record(r.id, r.image_id, f"{r.text} [SEP] {Counter(r.answers).most_common(1)[0][0]}")
                for r in ann.read_vqa2(first, Path(paths[1]), test_split=ann.SPLIT_ALIASES.get(split) == "test",
                                       accepted=accepted)]
    if kind == "conceptual_captions":
        # CC has no image ids: an image is its row, within its split's file
        return [Record(r.id, f"{split}_{int(r.image_id):08d}", r.text)
                for r in ann.read_conceptual_captions(first)]
    if kind == "vizwiz":
        return ann.read_vizwiz(first)
    if kind == "snli_ve":
        return ann.read_snli_ve(first)
    return ann.read_mmimdb(first, split, accepted)


def prepare(kind: str, splits: dict[str, list], features: list, out: Path, name: str,
            store: str | None = None, max_regions: int = 100, num_classes: int = VG_CLASSES,
            log=print) -> dict:
    """Read, check and write one dataset and its feature store under ``out``.

    ``splits``: split ("train", "val"/"dev", "test") → its file path(s); ``features``: one or
    more feature files (TSV, LMDB, npy folder), read in order; ``store``: the store's name
    (default ``name``): an existing store is reused when it has every image the records
    need, and extended with the ones it lacks otherwise. Returns the summary it prints."""
    started = time.perf_counter()
    out, store = Path(out), store or name
    records, accepted = {}, Counter()
    for split, paths in splits.items():
        if split not in ann.SPLIT_ALIASES:
            raise ValueError(f"unknown split {split!r}; expected one of {sorted(ann.SPLIT_ALIASES)}")
        recs = read_split(kind, [paths] if isinstance(paths, (str, Path)) else list(paths), split, accepted)
        ids = [r.id for r in recs]
        if len(set(ids)) != len(ids):
            dup = next(i for i, n in Counter(ids).items() if n > 1)
            raise ValueError(f"{kind} {split} ({paths}): record id {dup!r} occurs more than once")
        if not recs:
            raise ValueError(f"{kind} {split} ({paths}): no records")
        if ann.SPLIT_ALIASES[split] in records:
            raise ValueError(f"split {split!r} names the study's {ann.SPLIT_ALIASES[split]!r} split twice")
        records[ann.SPLIT_ALIASES[split]] = recs
    key_of = feature_key(kind, list(splits))
    wanted = {r.image_id: (split, r.id) for split, recs in records.items() for r in recs}

    store_dir = out / "stores" / store
    existing = FeatureStore(store_dir) if (store_dir / "image_ids.json").exists() else None
    if existing is not None and (existing.max_regions, existing.num_classes) != (max_regions, num_classes + 1):
        raise ValueError(f"store {store_dir} has {existing.max_regions} regions and {existing.num_classes} "
                         f"classes; this dataset asks for {max_regions} and {num_classes + 1}")
    # the records first (a temporary folder), then the store, then the records into place:
    # a failure at any point leaves the root as it was
    tmp = out / ".prepare" / name
    shutil.rmtree(tmp, ignore_errors=True)
    created = _folders_to_create(out, [tmp.parent, store_dir.parent, out / "datasets"])
    try:
        write_records(tmp, records, task=KINDS[kind].task, store=store, source=kind,
                      **({"label_names": list(ann.SNLI_LABELS)} if kind == "snli_ve" else
                         {"label_names": list(ann.MMIMDB_GENRES)} if kind == "mmimdb" else {}))
        if existing is not None and set(wanted) <= set(existing.image_ids):
            written = {"images": 0, "feature_mb": 0.0}          # the store has every image already
        else:       # a new store, or the existing one plus the images it lacks
            written = _write_store(store_dir, features, wanted, key_of, max_regions, num_classes, existing)
        final = out / "datasets" / name
        final.parent.mkdir(parents=True, exist_ok=True)
        swap_in_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_if_empty(created)            # a failed prepare leaves no trace, not even folders
        raise
    shutil.rmtree(tmp, ignore_errors=True)
    _remove_if_empty([tmp.parent])

    out_of_vocab = _best_answers_out_of_vocabulary(KINDS[kind].task, records)
    seconds = time.perf_counter() - started
    n_records = sum(len(r) for r in records.values())
    summary = {"dataset": name, "kind": kind, "store": store, "seconds": round(seconds, 2),
               **{f"{s}_records": len(r) for s, r in records.items()}, **written,
               "records_per_second": round(n_records / seconds),
               "feature_mb_per_second": round(written["feature_mb"] / seconds, 1),
               "accepted": dict(accepted),
               **{f"{split}_best_answer_out_of_vocabulary": share for split, share in out_of_vocab.items()}}
    log(f"prepared {name} ({kind}) in {out}: " + ", ".join(f"{s} {len(r)}" for s, r in records.items())
        + f" records; store {store}: {written['images']} images written ({written['feature_mb']:.1f} MB)"
        + f"; {seconds:.1f} s, {summary['records_per_second']} records/s, "
        + f"{summary['feature_mb_per_second']} MB/s"
        + "".join(f"; {split}: {100 * share:.1f} % of questions' best answer outside the "
                  f"{ANSWER_VOCAB_SIZES[KINDS[kind].task]}-answer vocabulary" for split, share in out_of_vocab.items())
        + "".join(f"; accepted: {n} x {what}" for what, n in sorted(accepted.items()))
        + ("; WARNING: the features have no cls_prob, so ViLBERT's masked-region loss has no "
           "targets on this store" if written.get("cls_prob") is False else ""))
    return summary


def _best_answers_out_of_vocabulary(task: str, records: dict) -> dict[str, float]:
    """Per held-out split, the share of questions whose most frequent answer the task's answer
    vocabulary (built from the training split, as training builds it) lacks: their best
    possible score is below 1, whatever the model."""
    if task not in ANSWER_VOCAB_SIZES or "train" not in records:
        return {}
    vocab = AnswerVocab.build(records["train"], ANSWER_VOCAB_SIZES[task])
    shares = {}
    for split, recs in records.items():
        answered = [r for r in recs if r.answers]
        if split != "train" and answered:
            best = [Counter(normalize_answer(a) for a in r.answers).most_common(1)[0][0] for r in answered]
            shares[split] = round(sum(b not in vocab.index for b in best) / len(best), 4)
    return shares


def _folders_to_create(out: Path, folders: list[Path]) -> list[Path]:
    """The folders (and their parents up to ``out``'s) that do not exist yet, deepest first."""
    missing = []
    for folder in folders:
        for f in [folder, *folder.parents]:
            if f.exists() or f in missing:
                break
            missing.append(f)
            if f == out:
                break
    return sorted(missing, key=lambda f: len(f.parts), reverse=True)


def _remove_if_empty(folders: list[Path]) -> None:
    for f in sorted(folders, key=lambda f: len(f.parts), reverse=True):
        try:
            f.rmdir()
        except OSError:                  # not empty, or not there
            pass


TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def install_tokenizer(source: Path, out: Path) -> Path:
    """Copy a BERT tokenizer (a Hugging Face folder, e.g. bert-base-uncased's) into the data
    root's ``tokenizer/``, where training reads it."""
    source = Path(source)
    found = [source / f for f in TOKENIZER_FILES if (source / f).exists()]
    if not found:
        raise FileNotFoundError(f"no tokenizer files in {source} (looked for {list(TOKENIZER_FILES)})")
    tmp, final = Path(out) / ".tokenizer.tmp", Path(out) / "tokenizer"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for f in found:
            shutil.copy2(f, tmp / f.name)
        swap_in_dir(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def feature_key(kind: str, splits: list[str]):
    """The image key of a feature file's image name, for ``kind``'s records. CC's images are
    rows of their split's file: features keyed ``<split>_<row>``, or by the bare row number
    (a user's extraction script decides), which names one image only when one split is
    prepared at a time."""
    numeric = KINDS[kind].numeric_images
    if kind != "conceptual_captions":
        return lambda name: ann.image_key(name, numeric)

    def key(name: str) -> str:
        stem = ann.image_key(name, numeric=False)
        if not stem.isdigit():
            return stem
        if len(splits) != 1:
            raise ValueError(f"CC features keyed by bare row number ({name!r}) fit one split, and this "
                             f"call prepares {splits}: prepare one split per call (the store is shared), "
                             "or key the features <split>_<row>")
        return f"{splits[0]}_{int(stem):08d}"
    return key


def _write_store(folder: Path, sources: list, wanted: dict, key_of, max_regions: int,
                 num_classes: int, existing: FeatureStore | None = None) -> dict:
    """Stream the wanted images from ``sources`` into a padded store (``data.features``'s
    layout) after the rows of ``existing`` (a store being extended), written in a temporary
    folder and renamed when complete."""
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    kept = list(existing.image_ids) if existing is not None else []
    kept_set = set(kept)
    new = [i for i in wanted if i not in kept_set]
    try:
        arrays, row, no_cls, first_no_cls = None, {}, 0, None
        stored_cls = False                  # the store being extended has class scores
        if existing is not None:
            if (existing.max_regions, existing.num_classes) != (max_regions, num_classes + 1):
                raise ValueError(f"store {folder} has {existing.max_regions} regions and "
                                 f"{existing.num_classes} classes; this dataset asks for {max_regions} "
                                 f"and {num_classes + 1}")
            arrays = _open_arrays(tmp, len(kept) + len(new), max_regions, existing.dim, num_classes)
            for start in range(0, len(kept), 1024):
                chunk = existing.gather(np.arange(start, min(start + 1024, len(kept))))
                stored_cls |= bool(chunk["cls_prob"].any())
                for field, value in chunk.items():
                    arrays[field][start:start + len(value)] = value
            row = {key: k for k, key in enumerate(kept)}
        ids = list(kept)
        todo, unwanted = set(new), []          # a few names the records do not want, for errors

        def wanted_name(name: str) -> bool:          # undecodable names go on, to fail below
            try:
                key = key_of(name)
            except ValueError:
                return True
            if key not in todo and len(unwanted) < 3 and key not in kept_set:
                unwanted.append(name)
            return key in todo
        for source in sources:
            for img in read_regions(Path(source), wanted_name):
                try:
                    key = key_of(img.name)
                except ValueError as e:
                    raise ValueError(f"{img.where}: {e}") from None
                if key in row and key in todo:
                    raise ValueError(f"{img.where}: image {key!r} has features twice")
                if key not in todo:
                    continue
                if arrays is None:      # the first image fixes the width of every array
                    arrays = _open_arrays(tmp, len(new), max_regions, img.features.shape[-1], num_classes)
                rows = to_store_rows(img, max_regions, arrays["features"].shape[-1], num_classes)
                k = row[key] = len(ids)
                ids.append(key)
                if img.cls_prob is None:
                    no_cls += 1
                    first_no_cls = first_no_cls or img.where
                for field, value in rows.items():
                    arrays[field][k] = value
        missing = [i for i in new if i not in row]
        if missing:
            split, rid = wanted[missing[0]]
            raise ValueError(f"{len(missing)} image(s) have no features in {[str(s) for s in sources]}; "
                             f"first: image {missing[0]!r} of {split} record {rid!r}. The records want "
                             f"keys like {missing[:3]}; the feature files name images like {unwanted}")
        # all images have class scores (ViLBERT's masked-region targets) or none has
        if existing is not None and kept and stored_cls != (no_cls == 0):
            raise ValueError(f"store {folder} {'has' if stored_cls else 'has no'} cls_prob but "
                             f"{no_cls if stored_cls else len(new) - no_cls} of the {len(new)} new images "
                             f"{'have none' if stored_cls else 'have them'}"
                             + (f" (first: {first_no_cls})" if stored_cls else "") + ": all or none must")
        if no_cls and no_cls != len(new):
            raise ValueError(f"{no_cls} of {len(new)} images have no cls_prob (first: {first_no_cls}): "
                             "all or none must")
        for arr in arrays.values():
            arr.flush()
        del arrays
        (tmp / "image_ids.json").write_text(json.dumps(ids))
        swap_in_dir(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    mb = sum((folder / f"{n}.npy").stat().st_size for n in ("features", "boxes", "cls_prob")) / 2**20
    return {"images": len(new), "feature_mb": round(mb, 1), "cls_prob": not no_cls}


def _open_arrays(folder: Path, n: int, regions: int, dim: int, classes: int) -> dict:
    mm = np.lib.format.open_memmap
    return {"features": mm(folder / "features.npy", "w+", np.float32, (n, regions, dim)),
            "boxes": mm(folder / "boxes.npy", "w+", np.float32, (n, regions, 5)),
            "cls_prob": mm(folder / "cls_prob.npy", "w+", np.float32, (n, regions, classes + 1)),
            "num_regions": mm(folder / "num_regions.npy", "w+", np.int64, (n,))}

"""``vlstudy world export``: the synthetic world written out in the official formats.

Preparing the exported files (``manifest.json`` lists the ``prepare`` calls) gives back
the world's records and features, so the real-data path — every annotation reader and
all three feature forms — is exercised end to end without the real datasets. Images get
the names the real files use (COCO and Flickr30k numbers, VizWiz file names, IMDb ids,
CC rows) and a nominal size of ``IMAGE_SIZE`` pixels for the boxes.
"""
from __future__ import annotations

import base64
import csv
import json
import pickle
import shutil
from pathlib import Path

import numpy as np

from ..data.root import DataRoot
from ..paths import atomic_write_text, swap_in_dir

IMAGE_SIZE = (640, 480)          # width, height of every exported image, in pixels
SPLITS = ("train", "val", "test")
# (world dataset → how it is exported): kind for prepare, feature form, image naming
EXPORTS = {"coco": "coco_captions", "vqa_p": "vqa2_pretraining", "vqa_d": "vqa2", "cc_full": "conceptual_captions",
           "vizwiz": "vizwiz", "snli_ve": "snli_ve", "mmimdb": "mmimdb"}


def _number(world_id: str) -> int:
    return int(world_id.rsplit("_", 1)[-1])


def _image_rows(root: DataRoot, store: str, world_ids: list[str]) -> list[dict]:
    """Each image's regions as a detector file holds them: unpadded, pixel boxes, and
    ``cls_prob`` with background first (the store keeps it last)."""
    st = root.store(store)
    rows = st.gather(st.index_of(world_ids))
    w, h = IMAGE_SIZE
    out = []
    for k in range(len(world_ids)):
        n = int(rows["num_regions"][k])
        cls = rows["cls_prob"][k, :n]
        out.append({"features": rows["features"][k, :n].copy(),
                    "bbox": (rows["boxes"][k, :n, :4] * np.float32([w, h, w, h])).astype(np.float32),
                    "cls_prob": np.concatenate([cls[:, -1:], cls[:, :-1]], 1).astype(np.float32),
                    "num_boxes": n, "image_width": w, "image_height": h})
    return out


def write_mmf_lmdb(path: Path, names: list[str], items: list[dict]) -> None:
    import lmdb
    env = lmdb.open(str(path), map_size=1 << 32, subdir=True)
    with env.begin(write=True) as txn:
        keys = []
        for name, item in zip(names, items):
            keys.append(name.encode())
            txn.put(keys[-1], pickle.dumps({"feature_path": name, **item}))
        txn.put(b"keys", pickle.dumps(keys))
    env.close()


def write_bottom_up_tsv(path: Path, names: list[str], items: list[dict]) -> None:
    with open(path, "w", newline="") as f:          # csv's default line ending: \r\n, as the original
        out = csv.writer(f, delimiter="\t")
        for name, it in zip(names, items):
            out.writerow([name, it["image_width"], it["image_height"], it["num_boxes"],
                          base64.b64encode(it["bbox"].tobytes()).decode(),
                          base64.b64encode(it["features"].tobytes()).decode()])


def write_npy_folder(folder: Path, names: list[str], items: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, it in zip(names, items):
        np.save(folder / f"{name}.npy", it["features"])
        info = {k: v for k, v in it.items() if k != "features"}
        info["objects"] = it["cls_prob"][:, 1:].argmax(1) if len(it["cls_prob"]) else np.zeros(0, np.int64)
        np.save(folder / f"{name}_info.npy", info, allow_pickle=True)


def _dump(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def export_world(root: DataRoot, out: Path) -> dict:
    """Write the world's COCO captions, VQA-P, VQA-D, CC, VizWiz, SNLI-VE and MM-IMDB in their
    official formats under ``out``; returns (and writes as ``manifest.json``) the
    ``prepare`` arguments for each, keyed by the world's dataset name."""
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    recs = {name: {s: root.records(name, s) for s in SPLITS} for name in EXPORTS}
    num_classes = root.store("coco").num_classes - 1
    manifest = {}

    def plan(name, splits, features, store):
        manifest[name] = {"kind": EXPORTS[name], "splits": splits, "features": features,
                          "store": store, "num_classes": num_classes,
                          "max_regions": root.store(root.info(name).store).max_regions}

    # COCO images (captions and VQA-D): numbered, features in an MMF LMDB
    coco_ids = sorted({r.image_id for name in ("coco", "vqa_p", "vqa_d") for s in SPLITS for r in recs[name][s]})
    write_mmf_lmdb(tmp / "coco_features.lmdb", [f"COCO_train2014_{_number(i):012d}" for i in coco_ids],
                _image_rows(root, "coco", coco_ids))
    w, h = IMAGE_SIZE
    for s in SPLITS:
        images = sorted({_number(r.image_id) for r in recs["coco"][s]})
        _dump(tmp / "coco" / f"captions_{s}2014.json", {
            "info": {"description": "vlstudy synthetic world"}, "licenses": [],
            "images": [{"id": i, "file_name": f"COCO_{s}2014_{i:012d}.jpg", "width": w, "height": h}
                       for i in images],
            "annotations": [{"image_id": _number(r.image_id), "id": k, "caption": r.text}
                            for k, r in enumerate(recs["coco"][s])]})
        qs = [{"image_id": _number(r.image_id), "question": r.text, "question_id": k}
              for k, r in enumerate(recs["vqa_d"][s])]
        _dump(tmp / "vqa" / f"questions_{s}.json", {"task_type": "Open-Ended", "data_type": "mscoco",
                                                    "data_subtype": s, "questions": qs})
        _dump(tmp / "vqa" / f"annotations_{s}.json", {"data_type": "mscoco", "data_subtype": s, "annotations": [
            {"question_type": "none of the above", "multiple_choice_answer": r.answers[0],
             "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": j + 1}
                         for j, a in enumerate(r.answers)],
             "image_id": q["image_id"], "answer_type": r.answer_type, "question_id": q["question_id"]}
            for q, r in zip(qs, recs["vqa_d"][s])]})
        # VQA-P: "question [SEP] answer" texts, as questions whose ten annotators agree
        pairs = [r.text.split(" [SEP] ") for r in recs["vqa_p"][s]]
        _dump(tmp / "vqa_p" / f"questions_{s}.json", {"questions": [
            {"image_id": _number(r.image_id), "question": q, "question_id": k}
            for k, (r, (q, _)) in enumerate(zip(recs["vqa_p"][s], pairs))]})
        _dump(tmp / "vqa_p" / f"annotations_{s}.json", {"annotations": [
            {"question_id": k, "image_id": _number(r.image_id), "answer_type": "other",
             "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": j + 1} for j in range(10)]}
            for k, (r, (_, a)) in enumerate(zip(recs["vqa_p"][s], pairs))]})
    plan("coco", {s: [f"coco/captions_{s}2014.json"] for s in SPLITS}, ["coco_features.lmdb"], "coco")
    plan("vqa_p", {s: [f"vqa_p/questions_{s}.json", f"vqa_p/annotations_{s}.json"] for s in SPLITS},
         ["coco_features.lmdb"], "coco")
    plan("vqa_d", {s: [f"vqa/questions_{s}.json", f"vqa/annotations_{s}.json"] for s in SPLITS},
         ["coco_features.lmdb"], "coco")

    # Conceptual Captions: rows of a TSV per split, features in a bottom-up TSV
    names, items = [], []
    for s in SPLITS:
        rows = recs["cc_full"][s]
        (tmp / "cc").mkdir(exist_ok=True)
        with open(tmp / "cc" / f"{s}.tsv", "w", newline="\n", encoding="utf-8") as f:
            f.writelines(f"{r.text}\thttps://example.org/cc/{s}/{k}.jpg\n" for k, r in enumerate(rows))
        names += [f"{s}_{k:08d}" for k in range(len(rows))]
        items += _image_rows(root, "cc", [r.image_id for r in rows])
    write_bottom_up_tsv(tmp / "cc_features.tsv", names, items)
    plan("cc_full", {s: [f"cc/{s}.tsv"] for s in SPLITS}, ["cc_features.tsv"], "cc")

    # VizWiz: file names, one question per image, features as per-image npy files
    names, items = [], []
    for s in SPLITS:
        entries = []
        for k, r in enumerate(recs["vizwiz"][s]):
            names.append(f"VizWiz_{s}_{k:08d}")
            entries.append({"answerable": int(r.answer_type != "unanswerable"), "image": f"{names[-1]}.jpg",
                            "question": r.text, "answer_type": r.answer_type,
                            "answers": [{"answer_confidence": "yes", "answer": a} for a in r.answers]})
        items += _image_rows(root, "vizwiz", [r.image_id for r in recs["vizwiz"][s]])
        _dump(tmp / "vizwiz" / f"{s}.json", entries)
    write_npy_folder(tmp / "vizwiz_features", names, items)
    plan("vizwiz", {s: [f"vizwiz/{s}.json"] for s in SPLITS}, ["vizwiz_features"], "vizwiz")

    # SNLI-VE: Flickr30k numbers; the original key spelling for train, the newer for the rest
    labels = ("entailment", "neutral", "contradiction")
    flickr = sorted({r.image_id for s in SPLITS for r in recs["snli_ve"][s]})
    write_npy_folder(tmp / "flickr_features", [str(_number(i)) for i in flickr], _image_rows(root, "flickr", flickr))
    for s in SPLITS:
        lines = []
        for k, r in enumerate(recs["snli_ve"][s]):
            n = _number(r.image_id)
            key = {"Flikr30kID": f"{n}.jpg"} if s == "train" else {"Flickr30K_ID": str(n)}
            lines.append(json.dumps({**key, "gold_label": labels[r.label], "pairID": f"{n}.jpg#{k}r",
                                     "sentence1": "", "sentence2": r.text}, sort_keys=True))
        (tmp / "snli_ve").mkdir(exist_ok=True)
        (tmp / "snli_ve" / f"snli_ve_{s}.jsonl").write_text("\n".join(lines) + "\n")
    plan("snli_ve", {s: [f"snli_ve/snli_ve_{s}.jsonl"] for s in SPLITS}, ["flickr_features"], "flickr")

    # MM-IMDB: 7-digit ids, split.json + one JSON per movie, features in an LMDB
    split_ids, names = {}, []
    for s in SPLITS:
        split_ids["dev" if s == "val" else s] = ids = [f"{_number(r.image_id):07d}" for r in recs["mmimdb"][s]]
        for imdb_id, r in zip(ids, recs["mmimdb"][s]):
            _dump(tmp / "mmimdb" / "dataset" / f"{imdb_id}.json",
                  {"title": f"movie {imdb_id}", "genres": list(r.labels), "plot": [r.text]})
        names += ids
    _dump(tmp / "mmimdb" / "split.json", split_ids)
    posters = [r.image_id for s in SPLITS for r in recs["mmimdb"][s]]
    write_mmf_lmdb(tmp / "poster_features.lmdb", names, _image_rows(root, "poster", posters))
    plan("mmimdb", {s: ["mmimdb"] for s in SPLITS}, ["poster_features.lmdb"], "poster")

    atomic_write_text(tmp / "manifest.json", json.dumps(manifest, indent=1))
    swap_in_dir(tmp, out)
    return manifest


def prepare_exported(folder: Path, out: Path, log=print) -> dict:
    """Run ``prepare`` for every entry of an export's ``manifest.json`` (paths relative to it)."""
    from .prepare import prepare
    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    return {name: prepare(m["kind"], {s: [folder / p for p in ps] for s, ps in m["splits"].items()},
                          [folder / p for p in m["features"]], out, name, store=m["store"],
                          max_regions=m["max_regions"], num_classes=m["num_classes"], log=log)
            for name, m in manifest.items()}

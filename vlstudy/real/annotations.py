"""Readers for the paper's datasets in their official release formats → ``Record`` lists.

One function per format (see ``../shared/notes/formats.md`` for the schemas). Each returns
the records of one split; every problem raises ``ValueError`` naming the file, the record
and the field, and nothing is skipped without being counted by the caller. Image ids are
the keys ``image_key`` makes of names, so annotation and feature files meet on them.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..data.records import Record, iter_jsonl

SNLI_LABELS = ("entailment", "neutral", "contradiction")      # MMF's order (0, 1, 2)
# Arevalo et al.'s 23 MM-IMDB genres, most frequent first (the usual label order)
MMIMDB_GENRES = ("Drama", "Comedy", "Romance", "Thriller", "Crime", "Action", "Adventure", "Horror",
                 "Documentary", "Mystery", "Sci-Fi", "Fantasy", "Family", "Biography", "War", "History",
                 "Music", "Animation", "Musical", "Western", "Sport", "Short", "Film-Noir")
# The study's split names; the releases call validation "val", "dev" or "restval"
SPLIT_ALIASES = {"train": "train", "val": "val", "dev": "val", "test": "test"}


def image_key(name, numeric: bool) -> str:
    """The key an image is known by in both annotations and features: the file name without
    folder and extension; with ``numeric``, the trailing number as an int (MMF's rule:
    ``COCO_train2014_000000000009.jpg`` and ``9`` are both ``"9"``)."""
    stem = Path(str(name)).name
    for ext in (".jpg", ".jpeg", ".png", ".npy"):
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
    if numeric:
        tail = stem.rsplit("_", 1)[-1]
        if not tail.isdigit():
            raise ValueError(f"image name {name!r} does not end in a number")
        return str(int(tail))
    return stem


# --- plumbing -----------------------------------------------------------------------------
def load_json(path: Path):
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"annotation file not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: malformed JSON at line {e.lineno} column {e.colno} ({e.msg})") from None


def _get(obj, key: str, where: str, kind=None):
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    if key not in obj:
        raise ValueError(f"{where}: missing field {key!r}")
    value = obj[key]
    if kind is not None and not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise ValueError(f"{where}: field {key!r} should be {names}, got {type(value).__name__}")
    return value


def _ten_answers(entry: dict, where: str) -> tuple[str, ...]:
    answers = _get(entry, "answers", where, list)
    if len(answers) != 10:
        raise ValueError(f"{where}: expected 10 answers, got {len(answers)}")
    return tuple(str(_get(a, "answer", f"{where} answer {k}")) for k, a in enumerate(answers))


# --- COCO Captions ------------------------------------------------------------------------
def read_coco_captions(path: Path) -> list[Record]:
    """``captions_{train,val}2014.json``: one record per caption, keyed by caption id."""
    data = load_json(path)
    images = {_get(im, "id", f"{path}: images[{k}]", int)
              for k, im in enumerate(_get(data, "images", str(path), list))}
    out = []
    for k, ann in enumerate(_get(data, "annotations", str(path), list)):
        where = f"{path}: annotations[{k}]"
        image = _get(ann, "image_id", where, int)
        if image not in images:
            raise ValueError(f"{where}: image_id {image} is not in the file's images")
        out.append(Record(str(_get(ann, "id", where, int)), str(image),
                          _get(ann, "caption", where, str).strip()))
    return out


def read_karpathy(path: Path, split: str) -> list[Record]:
    """``dataset_coco.json`` (Karpathy split): the captions of one split; "train" includes
    ``restval``, as MMF's pretraining does."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"Karpathy split must be train, val or test, got {split!r}")
    wanted = {"train", "restval"} if split == "train" else {split}
    out = []
    for k, im in enumerate(_get(load_json(path), "images", str(path), list)):
        where = f"{path}: images[{k}]"
        if _get(im, "split", where, str) not in wanted:
            continue
        image = str(_get(im, "cocoid", where, int))
        for j, s in enumerate(_get(im, "sentences", where, list)):
            w = f"{where} sentences[{j}]"
            out.append(Record(f"{image}-{_get(s, 'sentid', w, int)}", image, _get(s, "raw", w, str).strip()))
    return out


# --- VQA 2.0 ------------------------------------------------------------------------------
def read_vqa2(questions: Path, annotations: Path | None = None) -> list[Record]:
    """``v2_OpenEnded_mscoco_*_questions.json`` (+ ``v2_mscoco_*_annotations.json``; none for
    test): one record per question with its ten answers and answer type."""
    qs = _get(load_json(questions), "questions", str(questions), list)
    anns = {}
    if annotations is not None:
        for k, a in enumerate(_get(load_json(annotations), "annotations", str(annotations), list)):
            anns[_get(a, "question_id", f"{annotations}: annotations[{k}]", int)] = (k, a)
    out = []
    for k, q in enumerate(qs):
        where = f"{questions}: questions[{k}]"
        qid = _get(q, "question_id", where, int)
        rec = dict(id=str(qid), image_id=str(_get(q, "image_id", where, int)),
                   text=_get(q, "question", where, str))
        if annotations is not None:
            if qid not in anns:
                raise ValueError(f"{where}: question {qid} has no entry in {annotations}")
            j, a = anns[qid]
            w = f"{annotations}: annotations[{j}] (question {qid})"
            rec.update(answers=_ten_answers(a, w), answer_type=_get(a, "answer_type", w, str))
        out.append(Record(**rec))
    return out


# --- Conceptual Captions ------------------------------------------------------------------
def read_conceptual_captions(path: Path) -> list[Record]:
    """The two-column TSV (caption, URL; no header): images are known by their row."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"annotation file not found: {path}")
    out = []
    with path.open(encoding="utf-8", newline="\n") as f:
        for n, line in enumerate(f):
            cols = line.rstrip("\r\n").split("\t")
            if len(cols) != 2 or not cols[0].strip():
                raise ValueError(f"{path}:{n + 1}: expected 'caption<TAB>url', got {len(cols)} column(s)")
            out.append(Record(str(n), str(n), cols[0].strip()))
    return out


# --- VizWiz -------------------------------------------------------------------------------
def read_vizwiz(path: Path) -> list[Record]:
    """``train.json`` / ``val.json`` / ``test.json``: a list of one question per image."""
    data = load_json(path)
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of questions, got {type(data).__name__}")
    out = []
    for k, e in enumerate(data):
        where = f"{path}: [{k}]"
        key = image_key(_get(e, "image", where, str), numeric=False)
        rec = dict(id=key, image_id=key, text=_get(e, "question", where, str))
        if "answers" in e:
            rec.update(answers=_ten_answers(e, where), answer_type=_get(e, "answer_type", where, str))
        out.append(Record(**rec))
    return out


# --- SNLI-VE ------------------------------------------------------------------------------
def read_snli_ve(path: Path) -> list[Record]:
    """``snli_ve_{train,dev,test}.jsonl``: the hypothesis (``sentence2``) against the image;
    the image is ``Flikr30kID`` ("3416050480.jpg", the original release) or ``Flickr30K_ID``."""
    out = []
    for where, e in iter_jsonl(path, "annotation file"):
        image = e.get("Flikr30kID", e.get("Flickr30K_ID")) if isinstance(e, dict) else None
        if image is None:
            raise ValueError(f"{where}: missing field 'Flikr30kID' (or 'Flickr30K_ID')")
        label = _get(e, "gold_label", where, str)
        if label not in SNLI_LABELS:
            raise ValueError(f"{where}: gold_label {label!r} is not one of {SNLI_LABELS}")
        out.append(Record(_get(e, "pairID", where, str), image_key(image, numeric=True),
                          _get(e, "sentence2", where, str), label=SNLI_LABELS.index(label)))
    return out


# --- MM-IMDB ------------------------------------------------------------------------------
def read_mmimdb(root: Path, split: str) -> list[Record]:
    """``mmimdb/split.json`` and ``mmimdb/dataset/<id>.json``: the longest plot (as MMBT and
    Arevalo et al.) and the genres among the 23. ``split``: train, dev (or val), test."""
    root = Path(root)
    splits = load_json(root / "split.json")
    name = "dev" if split == "val" else split
    ids = _get(splits, name, str(root / "split.json"), list)
    out = []
    for imdb_id in ids:
        path = root / "dataset" / f"{imdb_id}.json"
        movie = load_json(path)
        plot = _get(movie, "plot", str(path), (list, str))
        if isinstance(plot, list):
            if not plot or not all(isinstance(p, str) for p in plot):
                raise ValueError(f"{path}: field 'plot' should be a non-empty list of strings")
            plot = max(plot, key=len)
        genres = _get(movie, "genres", str(path), list)
        out.append(Record(str(imdb_id), str(imdb_id), plot.strip(),
                          labels=tuple(g for g in genres if g in MMIMDB_GENRES)))
    return out

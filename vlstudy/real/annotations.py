"""Readers for the paper's datasets in their official release formats → ``Record`` lists.

One function per format. Each returns the records of one split; every problem raises
``ValueError`` naming the file, the record and the field. What the real releases carry
that is odd but not an error (MM-IMDB genres outside the 23 labels, VQA test questions
with no annotation) is accepted and counted in ``accepted``, a ``Counter`` that ``prepare``
reports; nothing else is skipped. Image ids are the keys ``image_key`` makes of names, so
annotation and feature files meet on them.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from ..data.records import Record, iter_jsonl
from ..paths import read_json

SNLI_LABELS = ("entailment", "neutral", "contradiction")      # MMF's order (0, 1, 2)
# Arevalo et al.'s 23 MM-IMDB genres, most frequent first (the usual label order)
MMIMDB_GENRES = ("Drama", "Comedy", "Romance", "Thriller", "Crime", "Action", "Adventure", "Horror",
                 "Documentary", "Mystery", "Sci-Fi", "Fantasy", "Family", "Biography", "War", "History",
                 "Music", "Animation", "Musical", "Western", "Sport", "Short", "Film-Noir")
# The study's split names; the releases call validation "val", "dev" or "restval"
SPLIT_ALIASES = {"train": "train", "val": "val", "dev": "val", "test": "test"}
# The answer types the releases use (VQA 2.0; VizWiz adds "unanswerable")
VQA_ANSWER_TYPES = ("yes/no", "number", "other")
VIZWIZ_ANSWER_TYPES = VQA_ANSWER_TYPES + ("unanswerable",)
KARPATHY_SPLITS = ("train", "restval", "val", "test")


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
def _get(obj, key: str, where: str, kind=None):
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    if key not in obj:
        raise ValueError(f"{where}: missing field {key!r}")
    value = obj[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    # JSON's true/false are not ids: bool is an int subclass in Python
    if kind is not None and (not isinstance(value, kind) or (isinstance(value, bool) and bool not in kinds)):
        names = "/".join(k.__name__ for k in kinds)
        raise ValueError(f"{where}: field {key!r} should be {names}, got {type(value).__name__}")
    return value


def _text(obj, key: str, where: str) -> str:
    """A non-empty string field, stripped: an empty caption or question is an error."""
    value = _get(obj, key, where, str).strip()
    if not value:
        raise ValueError(f"{where}: field {key!r} is empty")
    return value


def _one_of(obj, key: str, where: str, allowed: tuple):
    value = _get(obj, key, where)
    if value not in allowed:
        raise ValueError(f"{where}: field {key!r} is {value!r}, expected one of {allowed}")
    return value


def _ten_answers(entry: dict, where: str) -> tuple[str, ...]:
    answers = _get(entry, "answers", where, list)
    if len(answers) != 10:
        raise ValueError(f"{where}: expected 10 answers, got {len(answers)}")
    return tuple(_get(a, "answer", f"{where} answer {k}", str) for k, a in enumerate(answers))


# --- COCO Captions ------------------------------------------------------------------------
def read_coco_captions(path: Path) -> list[Record]:
    """``captions_{train,val}2014.json``: one record per caption, keyed by caption id."""
    data = read_json(path, "annotation")
    images = {_get(im, "id", f"{path}: images[{k}]", int)
              for k, im in enumerate(_get(data, "images", str(path), list))}
    out = []
    for k, ann in enumerate(_get(data, "annotations", str(path), list)):
        where = f"{path}: annotations[{k}]"
        image = _get(ann, "image_id", where, int)
        if image not in images:
            raise ValueError(f"{where}: image_id {image} is not in the file's images")
        out.append(Record(str(_get(ann, "id", where, int)), str(image), _text(ann, "caption", where)))
    return out


def read_karpathy(path: Path, split: str) -> list[Record]:
    """``dataset_coco.json`` (Karpathy split): the captions of one split; "train" includes
    ``restval``, as MMF's pretraining does."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"Karpathy split must be train, val or test, got {split!r}")
    wanted = {"train", "restval"} if split == "train" else {split}
    out = []
    for k, im in enumerate(_get(read_json(path, "annotation"), "images", str(path), list)):
        where = f"{path}: images[{k}]"
        if _one_of(im, "split", where, KARPATHY_SPLITS) not in wanted:
            continue
        image = str(_get(im, "cocoid", where, int))
        sentences = _get(im, "sentences", where, list)
        if not sentences:
            raise ValueError(f"{where}: image {image} has no sentences")
        for j, s in enumerate(sentences):
            w = f"{where} sentences[{j}]"
            out.append(Record(f"{image}-{_get(s, 'sentid', w, int)}", image, _text(s, "raw", w)))
    return out


# --- VQA 2.0 ------------------------------------------------------------------------------
def read_vqa2(questions: Path, annotations: Path | None = None, test_split: bool = False,
              accepted: Counter | None = None) -> list[Record]:
    """``v2_OpenEnded_mscoco_*_questions.json`` (+ ``v2_mscoco_*_annotations.json``; none for
    test): one record per question with its ten answers and answer type.

    The two files must describe the same questions: an annotation of a question the
    questions file lacks (the train annotations beside the val questions, say) is an error,
    and so is a question with no annotation, except in a test split (``test_split``), where
    it is left out and counted in ``accepted``."""
    qs = _get(read_json(questions, "annotation"), "questions", str(questions), list)
    anns = {}
    if annotations is not None:
        for k, a in enumerate(_get(read_json(annotations, "annotation"), "annotations", str(annotations), list)):
            qid = _get(a, "question_id", f"{annotations}: annotations[{k}]", int)
            if qid in anns:
                raise ValueError(f"{annotations}: annotations[{k}]: question {qid} is annotated twice "
                                 f"(first at annotations[{anns[qid][0]}])")
            anns[qid] = (k, a)
    out, asked = [], set()
    for k, q in enumerate(qs):
        where = f"{questions}: questions[{k}]"
        qid = _get(q, "question_id", where, int)
        if qid in asked:
            raise ValueError(f"{where}: question {qid} occurs twice in the file")
        asked.add(qid)
        image = _get(q, "image_id", where, int)
        rec = dict(id=str(qid), image_id=str(image), text=_text(q, "question", where))
        if annotations is not None:
            if qid not in anns:
                if test_split:
                    if accepted is not None:
                        accepted["VQA test questions with no annotation (left out)"] += 1
                    continue
                raise ValueError(f"{where}: question {qid} has no entry in {annotations}")
            j, a = anns[qid]
            w = f"{annotations}: annotations[{j}] (question {qid})"
            if _get(a, "image_id", w, int) != image:
                raise ValueError(f"{w}: image_id {a['image_id']} differs from the question's {image} "
                                 f"in {questions}")
            rec.update(answers=_ten_answers(a, w), answer_type=_one_of(a, "answer_type", w, VQA_ANSWER_TYPES))
        out.append(Record(**rec))
    stray = [qid for qid in anns if qid not in asked]
    if stray:
        k = anns[stray[0]][0]
        raise ValueError(f"{annotations}: annotations[{k}]: question {stray[0]} is not in {questions} "
                         f"({len(stray)} annotation(s) of questions the file does not ask: are the "
                         "two files of the same split?)")
    return out


# --- Conceptual Captions ------------------------------------------------------------------
def read_conceptual_captions(path: Path) -> list[Record]:
    """The two-column TSV (caption, URL; no header): images are known by their row."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"annotation file not found: {path}")
    out = []
    with path.open("rb") as f:
        for n, raw in enumerate(f):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"{path}:{n + 1}: not UTF-8 text (byte {e.start} of the line)") from None
            cols = line.rstrip("\r\n").split("\t")
            if len(cols) != 2:
                raise ValueError(f"{path}:{n + 1}: expected 'caption<TAB>url', got {len(cols)} column(s)")
            if not cols[0].strip() or not cols[1].strip():
                raise ValueError(f"{path}:{n + 1}: empty {'caption' if not cols[0].strip() else 'url'}")
            out.append(Record(str(n), str(n), cols[0].strip()))
    return out


# --- VizWiz -------------------------------------------------------------------------------
def read_vizwiz(path: Path) -> list[Record]:
    """``train.json`` / ``val.json`` / ``test.json``: a list of one question per image."""
    data = read_json(path, "annotation")
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of questions, got {type(data).__name__}")
    out = []
    for k, e in enumerate(data):
        where = f"{path}: [{k}]"
        key = image_key(_get(e, "image", where, str), numeric=False)
        rec = dict(id=key, image_id=key, text=_text(e, "question", where))
        if "answers" in e:
            rec.update(answers=_ten_answers(e, where),
                       answer_type=_one_of(e, "answer_type", where, VIZWIZ_ANSWER_TYPES))
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
        if not isinstance(image, str):
            raise ValueError(f"{where}: the image id should be a string, got {type(image).__name__}")
        try:
            key = image_key(image, numeric=True)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
        out.append(Record(_get(e, "pairID", where, str), key, _text(e, "sentence2", where),
                          label=SNLI_LABELS.index(label)))
    return out


# --- MM-IMDB ------------------------------------------------------------------------------
def read_mmimdb(root: Path, split: str, accepted: Counter | None = None) -> list[Record]:
    """``mmimdb/split.json`` and ``mmimdb/dataset/<id>.json``: the longest plot (as MMBT and
    Arevalo et al.) and the genres among the 23. ``split``: train, dev (or val), test.
    Genres outside the 23 (the release has a few, e.g. "News") are dropped from the labels
    and counted in ``accepted``, as are movies left with none of the 23 (kept: the split
    lists them, and MM-IMDB's F1 counts their false positives)."""
    root = Path(root)
    splits = read_json(root / "split.json", "annotation")
    name = "dev" if split == "val" else split
    ids = _get(splits, name, str(root / "split.json"), list)
    out = []
    for k, imdb_id in enumerate(ids):
        if not isinstance(imdb_id, str):
            raise ValueError(f"{root / 'split.json'}: {name}[{k}] should be an IMDb id string, got "
                             f"{type(imdb_id).__name__}")
        path = root / "dataset" / f"{imdb_id}.json"
        if not path.exists():
            raise FileNotFoundError(f"{root / 'split.json'}: {name}[{k}] lists movie {imdb_id}, but {path} "
                                    "does not exist")
        movie = read_json(path, "annotation")
        plot = _get(movie, "plot", str(path), (list, str))
        if isinstance(plot, list):
            if not plot or not all(isinstance(p, str) for p in plot):
                raise ValueError(f"{path}: field 'plot' should be a non-empty list of strings")
            plot = max(plot, key=len)
        if not plot.strip():
            raise ValueError(f"{path}: field 'plot' is empty")
        genres = _get(movie, "genres", str(path), list)
        if not all(isinstance(g, str) for g in genres):
            raise ValueError(f"{path}: field 'genres' should be a list of strings, got {genres!r}")
        labels = tuple(g for g in genres if g in MMIMDB_GENRES)
        if not labels and accepted is not None:
            accepted["MM-IMDB movies with none of the 23 genres (kept, with no labels)"] += 1
        for g in genres:
            if g not in MMIMDB_GENRES and accepted is not None:
                accepted[f"MM-IMDB genre {g!r} outside the 23 labels (dropped from the labels)"] += 1
        out.append(Record(imdb_id, imdb_id, plot.strip(), labels=labels))
    return out

"""Record types shared by every dataset, synthetic or real, and their on-disk form.

A dataset folder holds ``dataset.json`` (task, feature store, split sizes, label names)
and one JSON-lines file per split. Every reader error names the file, the line and what
was expected.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

from ..paths import atomic_write_text

TASKS = ("pretraining", "vqa", "vizwiz", "snli_ve", "mmimdb")


@dataclass(frozen=True)
class Record:
    id: str
    image_id: str
    text: str                          # caption / question / statement / plot; "a [SEP] b" for pairs
    answers: tuple[str, ...] = ()      # ten annotator answers (VQA-like tasks)
    answer_type: str | None = None     # "yes/no" | "number" | "other" | "unanswerable"
    label: int | None = None           # single-label classification (SNLI-VE)
    labels: tuple[str, ...] = ()       # multi-label classification (MM-IMDB genres)

    def to_json(self) -> dict:
        return {f: getattr(self, f) for f in _FIELD_ORDER if getattr(self, f) not in ((), None)}


_FIELD_ORDER = tuple(f.name for f in fields(Record))
_FIELDS = set(_FIELD_ORDER)
_REQUIRED = ("id", "image_id", "text")


def record_from_json(obj, where: str) -> Record:
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    missing = [k for k in _REQUIRED if k not in obj]
    if missing:
        raise ValueError(f"{where}: record is missing field(s) {missing}")
    unknown = set(obj) - _FIELDS
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {sorted(unknown)}; known: {sorted(_FIELDS)}")
    obj = dict(obj)
    for k in ("answers", "labels"):
        if k in obj:
            obj[k] = tuple(obj[k])
    return Record(**obj)


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    task: str
    store: str                 # feature store (image source) the records' image ids refer to
    sizes: dict[str, int]
    meta: dict                 # visual / textual domain, label names, ...

    @property
    def label_names(self) -> list[str]:
        return list(self.meta.get("label_names", []))


def write_records(folder: Path, splits: dict[str, list[Record]], task: str, store: str, **meta) -> None:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for split, recs in splits.items():
        ids = [r.id for r in recs]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{folder.name}/{split}: record ids are not unique")
        atomic_write_text(folder / f"{split}.jsonl",
                      "".join(json.dumps(r.to_json()) + "\n" for r in recs))
    info = {"name": folder.name, "task": task, "store": store,
            "sizes": {s: len(r) for s, r in splits.items()}, "meta": meta}
    atomic_write_text(folder / "dataset.json", json.dumps(info, indent=1))


def iter_jsonl(path: Path, what: str = "records file"):
    """``(where, object)`` for each non-blank line of a JSON-lines file; ``where`` is
    ``path:line``, and a malformed line is an error naming it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path}")
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield f"{path}:{n}", json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: malformed JSON ({e.msg})") from None


def read_records(path: Path) -> list[Record]:
    return [record_from_json(obj, where) for where, obj in iter_jsonl(path)]


def read_info(folder: Path) -> DatasetInfo:
    path = Path(folder) / "dataset.json"
    if not path.exists():
        raise FileNotFoundError(f"not a dataset folder (no dataset.json): {folder}")
    d = json.loads(path.read_text())
    try:
        return DatasetInfo(d["name"], d["task"], d["store"], d["sizes"], d.get("meta", {}))
    except KeyError as e:
        raise ValueError(f"{path}: missing field {e}") from None


"""What a data root holds: examples, objects per image, categories, text statistics.

These read only records and feature stores, so they describe the synthetic world and
prepared real data alike (the paper's Supp. E figure, for any data).
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from . import tasks
from .data.root import DataRoot


def _target(r) -> str:
    if r.answers:
        top = Counter(r.answers).most_common(1)[0][0]
        return f"{top} ({r.answer_type}; {len(set(r.answers))} distinct answers)"
    if r.label is not None:
        return f"label {r.label}"
    return ", ".join(r.labels)


def examples(root: DataRoot, per_dataset: int = 3, split: str = "train") -> pd.DataFrame:
    rows = []
    for name in root.datasets:
        info = root.info(name)
        names = info.label_names
        for r in root.records(name, split)[:per_dataset]:
            target = _target(r)
            if r.label is not None and names:
                target = names[r.label]
            rows.append({"dataset": name, "image": r.image_id, "text": r.text, "target": target})
    return pd.DataFrame(rows)


def detections(root: DataRoot, store: str) -> tuple[np.ndarray, np.ndarray]:
    """Per image: how many regions the detector calls an object; and each such region's class."""
    st = root.store(store)
    probs = np.asarray(st.arrays["cls_prob"])
    valid = np.arange(st.max_regions)[None, :] < np.asarray(st.arrays["num_regions"])[:, None]
    top = probs.argmax(-1)
    is_obj = valid & (top != probs.shape[-1] - 1)      # the last class is background
    return is_obj.sum(1), top[is_obj]


def objects_per_image(root: DataRoot) -> pd.DataFrame:
    """Long form: one row per image of every store, with its number of detected objects."""
    frames = [pd.DataFrame({"source": s, "objects": detections(root, s)[0]}) for s in _stores(root)]
    return pd.concat(frames, ignore_index=True)


def top_categories(root: DataRoot, class_names: list[str], k: int = 8) -> pd.DataFrame:
    """The ``k`` most detected categories of each store, as shares of its detections."""
    rows = []
    for s in _stores(root):
        counts = Counter(detections(root, s)[1].tolist())
        total = sum(counts.values()) or 1
        for c, n in counts.most_common(k):
            rows.append({"source": s, "category": class_names[c], "share": n / total})
    return pd.DataFrame(rows)


def text_statistics(root: DataRoot, split: str = "train") -> pd.DataFrame:
    """Per dataset: texts, mean words per text, vocabulary size, type/token ratio."""
    rows = []
    for name in root.datasets:
        words = [r.text.lower().split() for r in root.records(name, split)]
        tokens = [w for ws in words for w in ws]
        rows.append({"dataset": name, "texts": len(words),
                     "mean_words": float(np.mean([len(ws) for ws in words])),
                     "vocabulary": len(set(tokens)),
                     "type_token_ratio": len(set(tokens)) / max(len(tokens), 1)})
    return pd.DataFrame(rows)


def text_lengths(root: DataRoot, split: str = "train") -> pd.DataFrame:
    return pd.DataFrame([{"dataset": n, "words": len(r.text.split())}
                         for n in root.datasets for r in root.records(n, split)])


def _stores(root: DataRoot) -> list[str]:
    return sorted({root.info(n).store for n in root.datasets})


def dataset_summary(root: DataRoot) -> pd.DataFrame:
    """Per dataset: task, image source, split sizes and the balance of its labels."""
    rows = []
    for name in root.datasets:
        info = root.info(name)
        train = root.records(name, "train")
        kind = task.targets if (task := tasks.of(info)) else None
        if kind == "soft":
            types = Counter(r.answer_type for r in train)
            balance = ", ".join(f"{t} {n / len(train):.0%}" for t, n in sorted(types.items()))
        elif kind == "class":
            labels = Counter(r.label for r in train)
            balance = ", ".join(f"{info.label_names[k]} {n / len(train):.0%}" for k, n in sorted(labels.items()))
        elif kind == "multi_hot":
            balance = f"{np.mean([len(r.labels) for r in train]):.2f} {task.labels_per_example}"
        else:
            balance = ""
        rows.append({"dataset": name, "task": info.task, "images": info.store, **info.sizes,
                     "balance": balance})
    return pd.DataFrame(rows)

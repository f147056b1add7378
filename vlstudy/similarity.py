"""How alike two datasets are, in text and in images: the paper's Fig. 2 plane, measured.

The paper places its datasets on a visual × textual similarity plane by hand. Here both
axes are measured from the data, the same way on the synthetic world and on prepared real
data, and both are ``1 - JSD``: one minus the Jensen–Shannon divergence (base 2) between
two distributions. So each is symmetric, lies in [0, 1] and is exactly 1 for a dataset
against itself (the same sample).

- **textual**: the distribution of word tokens (the study's tokenizer; special tokens left
  out) over a sample of each dataset's texts;
- **visual**: the mean of two terms over a sample of each dataset's real regions —
  *detected categories* (each region's most likely detector class; background counts as
  a class, since how often the detector finds nothing is part of how images look) and
  *visual words* (region features quantised by a k-means codebook fitted on the two samples
  together, so feature-level shifts such as another camera count even when the detector
  agrees). Without detector outputs (a store from a bottom-up TSV) only the visual words.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .data.root import DataRoot

CODEBOOK_SIZE = 32       # visual words
SAMPLE = 2000            # texts, and images, drawn from each dataset


def js_similarity(p: np.ndarray, q: np.ndarray) -> float:
    """1 - Jensen–Shannon divergence (base 2) of two histograms (normalised here)."""
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    if p.shape != q.shape or p.sum() <= 0 or q.sum() <= 0:
        raise ValueError(f"need two non-empty histograms of one shape, got {p.shape} and {q.shape}")
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(a):
        nz = a > 0
        return float((a[nz] * np.log2(a[nz] / m[nz])).sum())
    return float(np.clip(1 - (kl(p) + kl(q)) / 2, 0.0, 1.0))


def token_histogram(tokenizer, texts: list[str]) -> np.ndarray:
    """Counts of each vocabulary entry over ``texts``, special tokens left out."""
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    counts = np.bincount(np.concatenate([np.asarray(i, np.int64) for i in ids] or [np.zeros(0, np.int64)]),
                         minlength=len(tokenizer))
    counts[tokenizer.all_special_ids] = 0
    return counts


def textual_similarity(tokenizer, texts_a: list[str], texts_b: list[str]) -> float:
    return js_similarity(token_histogram(tokenizer, texts_a), token_histogram(tokenizer, texts_b))


def visual_similarity(regions_a: dict, regions_b: dict, codebook_size: int = CODEBOOK_SIZE,
                      seed: int = 0) -> dict[str, float]:
    """``regions_*``: ``features`` (N, D) of real regions and, if the store has them,
    ``cls_prob`` (N, C). Returns the visual similarity and its two terms."""
    from sklearn.cluster import KMeans
    fa, fb = np.asarray(regions_a["features"], np.float32), np.asarray(regions_b["features"], np.float32)
    if fa.shape[1] != fb.shape[1]:
        raise ValueError(f"region features differ in width: {fa.shape[1]} and {fb.shape[1]}")
    # fitted on both samples in a fixed order of their contents, so swapping a and b
    # gives the same codebook
    first, second = sorted((fa, fb), key=lambda f: (len(f), f.tobytes()[:4096]))
    k = min(codebook_size, len(fa) + len(fb))
    codebook = KMeans(k, n_init=1, random_state=seed).fit(np.concatenate([first, second]))
    words = js_similarity(np.bincount(codebook.predict(fa), minlength=k),
                          np.bincount(codebook.predict(fb), minlength=k))
    out = {"visual_words": words}
    pa, pb = regions_a.get("cls_prob"), regions_b.get("cls_prob")
    if pa is not None and pb is not None and np.asarray(pa).sum() > 0 and np.asarray(pb).sum() > 0:
        c = np.asarray(pa).shape[1]
        out["categories"] = js_similarity(np.bincount(np.asarray(pa).argmax(1), minlength=c),
                                          np.bincount(np.asarray(pb).argmax(1), minlength=c))
    out["visual"] = float(np.mean(list(out.values())))
    return out


# --- on a data root ----------------------------------------------------------------------
def dataset_texts(root: DataRoot, name: str, split: str = "train", sample: int = SAMPLE,
                  seed: int = 0) -> list[str]:
    records = root.records(name, split)
    keep = np.random.default_rng(seed).permutation(len(records))[:sample]
    return [records[i].text for i in sorted(keep)]


def dataset_regions(root: DataRoot, name: str, split: str = "train", sample: int = SAMPLE,
                    max_regions: int = 20_000, seed: int = 0) -> dict:
    """Up to ``max_regions`` real (not padding) regions of up to ``sample`` of the split's
    images, read in chunks (a real store's 100 × 2048 regions per image add up)."""
    store = root.store(root.info(name).store)
    images = list(dict.fromkeys(r.image_id for r in root.records(name, split)))
    rng = np.random.default_rng(seed)
    keep = sorted(rng.permutation(len(images))[:sample])
    rows = np.sort(store.index_of([images[i] for i in keep], where=f"{name}/{split}"))
    share = max_regions / max(1, len(rows))                 # regions kept per image read
    parts = {"features": [], "cls_prob": []}
    for start in range(0, len(rows), 256):
        reg = store.gather(rows[start:start + 256])
        valid = np.arange(reg["features"].shape[1])[None, :] < reg["num_regions"][:, None]
        feats, probs = reg["features"][valid], reg["cls_prob"][valid]
        n = min(len(feats), max(1, round(share * len(valid))))
        pick = np.sort(rng.permutation(len(feats))[:n])
        parts["features"].append(feats[pick])
        parts["cls_prob"].append(probs[pick])
    return {k: np.concatenate(v) for k, v in parts.items()}


def similarity_table(root: DataRoot, sources: list[str], targets: list[str], sample: int = SAMPLE,
                     seed: int = 0) -> pd.DataFrame:
    """One row per (source, target): textual and visual similarity and the visual terms."""
    texts = {n: dataset_texts(root, n, sample=sample, seed=seed) for n in {*sources, *targets}}
    regions = {n: dataset_regions(root, n, sample=sample, seed=seed) for n in {*sources, *targets}}
    rows = []
    for s in sources:
        for t in targets:
            rows.append({"source": s, "target": t,
                         "textual": textual_similarity(root.tokenizer, texts[s], texts[t]),
                         **visual_similarity(regions[s], regions[t], seed=seed)})
    return pd.DataFrame(rows)

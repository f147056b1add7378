"""Datasets of (text, regions) examples and the collator that batches and masks them.

Texts are tokenised once when a split is opened; regions are read from the memory-mapped
store per batch, in one indexed read. Masking follows BERT for tokens (15 % chosen; of
those 80 % [MASK], 10 % a random token, 10 % kept) and ViLBERT for regions (15 % chosen;
of those 90 % zeroed), and draws from a generator seeded by the batch's own example
indices, so a batch is masked the same way whatever process or resume produced it.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import tasks
from .answers import AnswerVocab
from .features import FeatureStore
from .records import DatasetInfo, Record, read_info, read_records

# Knuth's multiplicative hash constant (2^32 / golden ratio): spreads consecutive run seeds
# over 32 bits before they are mixed with a batch's indices, so seeds 0, 1, 2 ... mask unlike
_GOLDEN = 2654435761


class VLDataset(torch.utils.data.Dataset):
    """One split of a dataset: tokenised texts, image rows in the store, and task targets."""

    def __init__(self, folder: Path, split: str, tokenizer, store: FeatureStore,
                 max_text_len: int = 32, answer_vocab: AnswerVocab | None = None,
                 limit: int | None = None):
        self.folder, self.split = Path(folder), split
        self.info: DatasetInfo = read_info(self.folder)
        if split not in self.info.sizes:
            raise ValueError(f"dataset {self.info.name} has no split {split!r}; "
                             f"it has {sorted(self.info.sizes)}")
        self.records: list[Record] = read_records(self.folder / f"{split}.jsonl")[:limit]
        self.store = store
        self.rows = store.index_of([r.image_id for r in self.records],
                                   where=f"{self.folder.name}/{split}.jsonl")
        self.tokens = tokenize(tokenizer, [r.text for r in self.records], max_text_len)
        self.targets = task_targets(self.info, self.records, answer_vocab)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> int:
        return i          # the collator gathers everything for a batch of indices at once


def base_dataset(ds):
    """A split without its ``train_fraction`` subset wrapper."""
    return ds.dataset if isinstance(ds, torch.utils.data.Subset) else ds


class TextDataset(torch.utils.data.Dataset):
    """Text only (the stand-in BERT stage's corpus): tokens, no regions, no targets."""

    store = None
    targets = None

    def __init__(self, texts: list[str], tokenizer, max_text_len: int = 32):
        self.tokens = tokenize(tokenizer, texts, max_text_len)

    def __len__(self) -> int:
        return len(self.tokens["input_ids"])

    def __getitem__(self, i: int) -> int:
        return i


def tokenize(tokenizer, texts: list[str], max_len: int) -> dict[str, np.ndarray]:
    """Tokenise as single texts, or as pairs where every text is "a [SEP] b" (VQA-P)."""
    pairs = [t.split(" [SEP] ", 1) for t in texts]
    kw = dict(max_length=max_len, truncation=True, padding="max_length",
              return_special_tokens_mask=True, return_tensors="np")
    if pairs and all(len(p) == 2 for p in pairs):
        enc = tokenizer([p[0] for p in pairs], [p[1] for p in pairs], **kw)
    else:
        enc = tokenizer(texts, **kw)
    return {k: np.asarray(enc[k]) for k in ("input_ids", "attention_mask", "token_type_ids",
                                             "special_tokens_mask")}


def task_targets(info: DatasetInfo, records: list[Record], vocab: AnswerVocab | None):
    """Targets for the dataset's task (``tasks.Task.make_targets``), or None for pretraining."""
    task = tasks.of(info)
    return None if task is None else task.make_targets(info.name, records, info.label_names, vocab)


def mask_tokens(input_ids: torch.Tensor, special: torch.Tensor, vocab_size: int, mask_id: int,
                prob: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking. Returns (masked input ids, labels with -100 where not chosen)."""
    chosen = (torch.rand(input_ids.shape, generator=gen) < prob) & ~special
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    how = torch.rand(input_ids.shape, generator=gen)
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=gen)
    out = torch.where(chosen & (how < 0.8), torch.full_like(input_ids, mask_id), input_ids)
    out = torch.where(chosen & (how >= 0.8) & (how < 0.9), random_ids, out)
    return out, labels


def mask_regions(features: torch.Tensor, valid: torch.Tensor, prob: float,
                 gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """ViLBERT region masking. Returns (features with 90 % of chosen zeroed, chosen (B, R))."""
    chosen = (torch.rand(valid.shape, generator=gen) < prob) & valid
    zero = chosen & (torch.rand(valid.shape, generator=gen) < 0.9)
    return features.masked_fill(zero.unsqueeze(-1), 0.0), chosen


@dataclass
class VLCollator:
    """Indices of a VLDataset → a batch of tensors (masked when the probabilities are > 0).

    Batch keys: input_ids, attention_mask, token_type_ids (B, T), T the batch's longest text;
    features (B, R, D), R the batch's most regions;
    boxes (B, R, 5); region_mask (B, R) true for real regions; with token masking
    ``mlm_labels`` (B, T); with region masking ``region_targets`` (B, R, C) and
    ``masked_regions`` (B, R); and the task's ``targets`` when the dataset has them.
    """
    dataset: VLDataset | TextDataset
    mask_token_id: int | None = None
    vocab_size: int | None = None
    mlm_probability: float = 0.0
    region_mask_probability: float = 0.0
    seed: int = 0

    def __call__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        ds = self.dataset
        idx = np.asarray(indices, np.int64)
        length = max(int(ds.tokens["attention_mask"][idx].sum(1).max()), 1)   # trim shared padding
        tok = {k: torch.from_numpy(v[idx, :length]) for k, v in ds.tokens.items()}
        batch = {"input_ids": tok["input_ids"].long(), "attention_mask": tok["attention_mask"].long(),
                 "token_type_ids": tok["token_type_ids"].long()}
        if ds.store is not None:
            reg = ds.store.gather(ds.rows[idx])
            n = torch.from_numpy(reg["num_regions"])
            regions = max(int(n.max()), 1)                 # trim region padding shared by the batch
            reg = {k: v[:, :regions] if k != "num_regions" else v for k, v in reg.items()}
            valid = torch.arange(regions)[None, :] < n[:, None]
            batch.update(features=torch.from_numpy(reg["features"]), boxes=torch.from_numpy(reg["boxes"]),
                         region_mask=valid)
        gen = torch.Generator().manual_seed(zlib.crc32(idx.tobytes()) ^ (self.seed * _GOLDEN % 2**32))
        if self.mlm_probability > 0:
            batch["input_ids"], batch["mlm_labels"] = mask_tokens(
                batch["input_ids"], tok["special_tokens_mask"].bool(), self.vocab_size,
                self.mask_token_id, self.mlm_probability, gen)
        if self.region_mask_probability > 0 and ds.store is not None:
            batch["features"], batch["masked_regions"] = mask_regions(
                batch["features"], valid, self.region_mask_probability, gen)
            batch["region_targets"] = torch.from_numpy(reg["cls_prob"])
        if ds.targets is not None:
            batch["targets"] = torch.from_numpy(ds.targets[idx])
        return batch

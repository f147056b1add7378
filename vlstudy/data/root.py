"""A data root: a folder of datasets and feature stores, synthetic or real.

Both a built synthetic world and prepared real data have this layout (``datasets/``,
``stores/``, ``tokenizer/``), so notebooks and training code read either the same way.
"""
from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path

from .. import tasks
from .answers import ANSWER_VOCAB_SIZES, AnswerVocab
from .batching import VLDataset
from .features import FeatureStore
from .records import DatasetInfo, Record, read_info, read_records


# Datasets written into a root on demand (``world.points``' domain points: "mix<version>_..."):
# found by name, not listed, so what a world holds stays the same.
ON_DEMAND = re.compile(r"mix\d+_")


def is_on_demand(dataset: str) -> bool:
    """A dataset written on demand (a domain point, of any version of its generator)."""
    return ON_DEMAND.match(dataset) is not None


class DataRoot:
    def __init__(self, folder: Path, tokenizer_dir: Path | None = None):
        self.folder = Path(folder)
        if not (self.folder / "datasets").is_dir():
            raise FileNotFoundError(f"not a data root (no datasets/ folder): {self.folder}")
        self.tokenizer_dir = Path(tokenizer_dir) if tokenizer_dir else self.folder / "tokenizer"
        self._stores: dict[str, FeatureStore] = {}

    def __repr__(self) -> str:
        return f"DataRoot({self.folder})"

    @property
    def datasets(self) -> list[str]:
        """The root's own datasets. Domain points (``world.points``), generated into a world's
        folder on demand, are found by name but not listed: what a world holds stays the same."""
        return sorted(p.name for p in (self.folder / "datasets").iterdir()
                      if p.is_dir() and not is_on_demand(p.name))

    def _dataset_dir(self, name: str) -> Path:
        path = self.folder / "datasets" / name
        if not path.is_dir():
            raise KeyError(f"no dataset {name!r} in {self.folder}; it has {self.datasets}")
        return path

    def info(self, name: str) -> DatasetInfo:
        return read_info(self._dataset_dir(name))

    def records(self, name: str, split: str) -> list[Record]:
        return read_records(self._dataset_dir(name) / f"{split}.jsonl")

    def store(self, name: str) -> FeatureStore:
        if name not in self._stores:
            self._stores[name] = FeatureStore(self.folder / "stores" / name)
        return self._stores[name]

    @cached_property
    def tokenizer(self):
        from .tokenizer import load_tokenizer
        return load_tokenizer(self.tokenizer_dir)

    @property
    def corpus_path(self) -> Path:
        return self.folder / "corpus.txt"

    def answer_vocab(self, name: str, size: int | None = None) -> AnswerVocab:
        """The ``size`` most frequent training answers (None: the task's usual size,
        ``ANSWER_VOCAB_SIZES``), cached beside the dataset."""
        size = size or ANSWER_VOCAB_SIZES[self.info(name).task]
        path = self._dataset_dir(name) / f"answers-{size}.json"
        if path.exists():
            return AnswerVocab.load(path)
        vocab = AnswerVocab.build(self.records(name, "train"), size)
        vocab.save(path)
        return vocab

    def split(self, name: str, split: str, max_text_len: int = 32,
              answer_vocab: AnswerVocab | None = None, limit: int | None = None) -> VLDataset:
        info = self.info(name)
        if answer_vocab is None and tasks.has_answers(info):
            answer_vocab = self.answer_vocab(name)
        return VLDataset(self._dataset_dir(name), split, self.tokenizer, self.store(info.store),
                         max_text_len, answer_vocab, limit)

    def generated_split(self, folder: Path, split: str, images_from: str, max_text_len: int = 32) -> VLDataset:
        """A split of a generated dataset (a ``captions`` run's: new text for the images of
        ``images_from``), read with this root's tokenizer and store."""
        info, expected = read_info(Path(folder)), self.info(images_from).store
        if info.meta.get("images_from") != images_from or info.store != expected:
            raise ValueError(f"generated dataset {folder} captions the images of "
                             f"{info.meta.get('images_from')!r} (store {info.store!r}), not those of "
                             f"{images_from!r} (store {expected!r})")
        return VLDataset(Path(folder), split, self.tokenizer, self.store(info.store), max_text_len)

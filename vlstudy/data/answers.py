"""Answer vocabularies and VQA soft scores, as the field builds them.

The vocabulary is the most frequent normalised answers among the training annotations
(VQA 2.0's usual 3,129 on the real data); a record's target is the soft score of each
vocabulary answer from its ten annotators. Answers outside the vocabulary score nothing.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from ..metrics import normalize_answer, soft_scores
from .records import Record


# The field's answer vocabularies, by task: VQA 2.0's 3,129 answers (bottom-up attention,
# MMF's answers_vqa.txt with its <unk>); VizWiz: MMF's answers_vizwiz_7k.txt, 7,371 with its
# <unk>, so 7,370 answers. Answers outside the vocabulary score 0 in the training targets.
ANSWER_VOCAB_SIZES = {"vqa": 3129, "vizwiz": 7370}


class AnswerVocab:
    def __init__(self, answers: list[str]):
        if len(set(answers)) != len(answers):
            raise ValueError("answer vocabulary has duplicates")
        self.answers = list(answers)
        self.index = {a: i for i, a in enumerate(self.answers)}

    def __len__(self) -> int:
        return len(self.answers)

    @classmethod
    def build(cls, records: list[Record], size: int | None = None) -> "AnswerVocab":
        """The ``size`` most frequent answers over all annotations (ties alphabetically)."""
        counts = Counter(normalize_answer(a) for r in records for a in r.answers)
        if not counts:
            raise ValueError("cannot build an answer vocabulary: the records carry no answers")
        ranked = sorted(counts, key=lambda a: (-counts[a], a))
        return cls(ranked[:size] if size else ranked)

    def targets(self, records: list[Record]) -> np.ndarray:
        """Soft scores (N, len(vocab)) from each record's ten answers."""
        out = np.zeros((len(records), len(self)), np.float32)
        for i, r in enumerate(records):
            for a, s in soft_scores(list(r.answers)).items():
                j = self.index.get(a)
                if j is not None:
                    out[i, j] = s
        return out

    def save(self, path: Path) -> None:
        from ..paths import atomic_write_text          # runs side by side may build it at once
        atomic_write_text(Path(path), json.dumps(self.answers))

    @classmethod
    def load(cls, path: Path) -> "AnswerVocab":
        return cls(json.loads(Path(path).read_text()))

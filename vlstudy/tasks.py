"""The downstream tasks, one record each: the single place that knows a task's targets, loss,
metric, labels, pooling, text length and official results.

A dataset's ``task`` (its ``dataset.json``) names a record here, or is ``PRETRAINING``;
``get`` of any other name is an error listing the known tasks. Adding a task is one ``Task``
line, when its targets are one of the three kinds: soft scores over an answer vocabulary
(VQA-like), one class, or multi-hot labels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import objectives
from .metrics import multilabel_f1, vizwiz_accuracy, vqa_accuracy

PRETRAINING = "pretraining"          # the kind of a pretraining set's dataset.json: no task
TARGET_KINDS = ("soft", "class", "multi_hot")
MULTILABEL_THRESHOLD = 0.5           # multi-hot tasks: a label is predicted when its sigmoid exceeds this
LIKELIHOOD_CHUNK = 8192              # examples per chunk of the continuous score (memory)


@dataclass(frozen=True)
class Task:
    name: str
    # "soft": scores over an answer vocabulary (VQA-like: a classifier per answer, scored by the
    # soft score of the argmax answer); "class": one label; "multi_hot": a set of labels
    targets: str
    loss: Callable                   # (logits, targets) -> loss, MMF's for the task
    # VQA-like: the official accuracy of an answer against the annotators' answers, and the key
    # that names an example in the official results file
    official: Callable | None = None
    results_key: str = "question_id"
    long_text: bool = False          # plots, not questions: the recipe's long_text_len
    labels_per_example: str = "labels per example"   # how a multi-hot set's label count reads

    def __post_init__(self):
        if self.targets not in TARGET_KINDS:
            raise ValueError(f"task {self.name}: targets must be one of {TARGET_KINDS}, got {self.targets!r}")

    @property
    def answers(self) -> bool:
        """Its labels are an answer vocabulary (built from training answers; results files)."""
        return self.targets == "soft"

    def pooling(self, arch: str) -> str:
        """MMF's ``pooler_strategy``: VisualBERT reads VQA-like answers off the last question
        token ("vqa"); everything else uses the pooled output."""
        return "vqa" if arch == "visual_bert" and self.answers else "default"

    # --- targets and metric ---------------------------------------------------------------
    def make_targets(self, dataset: str, records, label_names: list[str], vocab) -> np.ndarray:
        """Soft scores (N, answers), class indices (N,) or multi-hot labels (N, labels)."""
        if self.targets == "soft":
            if vocab is None:
                raise ValueError(f"dataset {dataset} ({self.name}) needs an answer vocabulary")
            return vocab.targets(records)
        if self.targets == "class":
            return np.asarray([r.label for r in records], np.int64)
        index = {g: i for i, g in enumerate(label_names)}
        hot = np.zeros((len(records), len(label_names)), np.float32)
        for i, r in enumerate(records):
            for g in r.labels:
                if g not in index:
                    raise ValueError(f"{dataset}: record {r.id} has label {g!r} outside "
                                     f"the dataset's {len(label_names)} labels")
                hot[i, index[g]] = 1.0
        return hot

    def example_scores(self, logits: np.ndarray, targets: np.ndarray) -> dict[str, np.ndarray]:
        """The per-example terms of the metric, in the split's order, so that a run's
        predictions reproduce its score. ``predicted``: (N,) class indices, or (N, L) bools
        (multi-hot); then ``score`` (N,) whose mean x 100 is the score (VQA-like: the soft
        score of the argmax answer; one class: 1.0 when right), or ``tp``, ``fp``, ``fn`` (N,)
        counts (micro-F1 = 2 sum(tp) / (2 sum(tp) + sum(fp) + sum(fn))); and for every task
        ``log_likelihood`` (N,), the continuous score (:meth:`log_likelihood`)."""
        likelihood = self.log_likelihood(logits, targets)          # computed once per call
        if self.targets == "soft":
            predicted = logits.argmax(1)                                   # (N,)
            soft = targets[np.arange(len(targets)), predicted]             # (N,) float32
            # The float64 value of each float32's shortest decimal (0.3, not 0.30000001192...):
            # what a predictions file holds, so its mean is the score exactly.
            return {"predicted": predicted, "score": np.array([float(str(s)) for s in soft], np.float64),
                    "log_likelihood": likelihood}
        if self.targets == "class":
            predicted = logits.argmax(1)                                   # (N,)
            return {"predicted": predicted, "score": (predicted == targets).astype(np.float64),
                    "log_likelihood": likelihood}
        truth = np.asarray(targets).astype(bool)                           # (N, L)
        predicted = _sigmoid(logits) > MULTILABEL_THRESHOLD                # (N, L)
        return {"predicted": predicted, "tp": (truth & predicted).sum(1),
                "fp": (~truth & predicted).sum(1), "fn": (truth & ~predicted).sum(1), "log_likelihood": likelihood}

    def log_likelihood(self, logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """The continuous score of each example, in nats (higher is better), (N,) float64.

        Accuracy of an argmax answer is a step function of the model; this moves smoothly
        with what it knows (DataDecide, Magnusson et al. 2025; "Signal and Noise", Heineman et
        al. 2025). VQA-like: the log-probability the softmax over the answer logits gives the
        gold answers, weighted by their soft scores (minus the soft cross-entropy); an example
        none of whose answers is in the vocabulary scores 0 for every model. The heads are
        trained with a sigmoid per answer (MMF's BCE), so this scores a distribution they were
        not trained to give: a ranking of how much weight the gold answers get, not a
        calibrated probability. One class: the gold label's log-probability. Multi-hot: the
        mean binary log-likelihood of the labels. Computed in row chunks of float32 (a VQA 2.0
        split's logits are GBs; one float64 copy of them would double that)."""
        n = len(logits)
        out = np.empty(n, np.float64)
        for start in range(0, n, LIKELIHOOD_CHUNK):
            rows = slice(start, min(start + LIKELIHOOD_CHUNK, n))
            out[rows] = self._log_likelihood(np.asarray(logits[rows], np.float32), np.asarray(targets[rows]))
        return out

    def _log_likelihood(self, z: np.ndarray, targets: np.ndarray) -> np.ndarray:
        if self.targets == "multi_hot":
            y = targets.astype(np.float32)                                 # (n, L) 0/1
            # log σ(z) = −softplus(−z), log(1 − σ(z)) = −softplus(z), computed stably
            return -(y * np.logaddexp(0, -z) + (1 - y) * np.logaddexp(0, z)).mean(1, dtype=np.float64)
        log_p = z - z.max(1, keepdims=True)
        log_p -= np.log(np.exp(log_p).sum(1, keepdims=True))               # (n, classes) log-softmax
        if self.targets == "class":
            return log_p[np.arange(len(z)), targets.astype(np.int64)].astype(np.float64)
        soft = targets.astype(np.float32)                                  # (n, answers)
        weight = soft.sum(1, dtype=np.float64)
        gold = (soft * log_p).sum(1, dtype=np.float64)
        return np.divide(gold, weight, out=np.zeros(len(z)), where=weight > 0)

    def score(self, logits: np.ndarray, targets: np.ndarray) -> dict[str, float]:
        """Validation/test metric, in percent. VQA-like: the soft score of the argmax answer
        (MMF's vqa_accuracy); multi-hot: micro-F1 as ``score``, with ``macro_f1``. Beside it
        ``log_likelihood``, the mean continuous score in nats."""
        if self.targets == "multi_hot":
            f1 = multilabel_f1(targets, _sigmoid(logits), threshold=MULTILABEL_THRESHOLD)
            return {"score": 100 * f1["micro_f1"], "macro_f1": 100 * f1["macro_f1"],
                    "log_likelihood": float(self.log_likelihood(logits, targets).mean())}
        terms = self.example_scores(logits, targets)
        return {"score": 100 * float(terms["score"].mean()), "log_likelihood": float(terms["log_likelihood"].mean())}

    def prediction_rows(self, logits: np.ndarray, targets: np.ndarray, ids: list[str],
                        names: list[str]) -> list[dict]:
        """One JSON-ready row per example, in split order: ``id``, ``prediction`` (an answer,
        a label name, or the list of predicted label names), and the example's metric terms:
        ``score`` (one class: with the true ``label``), or ``tp``/``fp``/``fn`` with the true
        ``labels``; and ``log_likelihood``. ``names``: the answer vocabulary or the label names,
        by index."""
        if len(ids) != len(logits) or logits.shape[1] != len(names):
            raise ValueError(f"prediction_rows: {len(ids)} ids and {len(names)} names for logits of shape "
                             f"{logits.shape}")
        terms = self.example_scores(logits, targets)
        rows = []
        for i, example in enumerate(ids):
            if self.targets == "multi_hot":
                rows.append({"id": example, "prediction": [names[j] for j in np.flatnonzero(terms["predicted"][i])],
                             "labels": [names[j] for j in np.flatnonzero(targets[i])],
                             "tp": int(terms["tp"][i]), "fp": int(terms["fp"][i]), "fn": int(terms["fn"][i]),
                             "log_likelihood": float(terms["log_likelihood"][i])})
                continue
            row = {"id": example, "prediction": names[int(terms["predicted"][i])], "score": float(terms["score"][i]),
                   "log_likelihood": float(terms["log_likelihood"][i])}
            if self.targets == "class":
                row["label"] = names[int(targets[i])]
            rows.append(row)
        return rows

    # --- official results (VQA-like) ------------------------------------------------------
    def add_official_accuracy(self, rows: list[dict], answers: list) -> np.ndarray:
        """Each row's ``official``: its answer's accuracy as the official evaluator scores it
        against the annotators' answers (the leaderboards' figure; ``score`` is the soft one)."""
        for row, given in zip(rows, answers, strict=True):
            row["official"] = float(self.official(row["prediction"], list(given)))
        return np.asarray([row["official"] for row in rows])

    def official_results(self, rows: list[dict]) -> list[dict]:
        """The predictions as the official results file: VQA 2.0 ``{"question_id", "answer"}``
        (ids that are numbers as numbers), VizWiz ``{"image": "<name>.jpg", "answer"}``."""
        if self.results_key == "image":
            return [{"image": f"{r['id']}.jpg", "answer": r["prediction"]} for r in rows]
        return [{"question_id": int(r["id"]) if str(r["id"]).isdigit() else r["id"], "answer": r["prediction"]}
                for r in rows]


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-logits))            # (N, L), the probabilities a multi-hot metric thresholds


TASKS = {t.name: t for t in (
    Task("vqa", "soft", objectives.logit_bce, official=vqa_accuracy),
    Task("vizwiz", "soft", objectives.logit_bce, official=vizwiz_accuracy, results_key="image"),
    Task("snli_ve", "class", objectives.classification_loss),
    Task("mmimdb", "multi_hot", objectives.logit_bce, long_text=True, labels_per_example="genres per movie"),
)}


def get(name: str) -> Task:
    """The task record of ``name`` (a dataset's ``task``); an unknown name is an error."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known: {sorted(TASKS)}"
                         + (" (a pretraining set has no task)" if name == PRETRAINING else ""))
    return TASKS[name]


def of(info) -> Task | None:
    """The task of a dataset (its ``DatasetInfo``), or None for a pretraining set."""
    return None if info.task == PRETRAINING else get(info.task)


def is_pretraining(info) -> bool:
    """Whether a dataset is a pretraining set (it has no task)."""
    return info.task == PRETRAINING


def has_answers(info) -> bool:
    """Whether a dataset's labels are an answer vocabulary (a VQA-like task's)."""
    task = of(info)
    return task is not None and task.answers

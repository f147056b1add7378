"""Heads on top of a base model: pretraining (MLM, masked-region classes) and task classifiers.

Both wrappers take a batch from ``data.batching.VLCollator`` as keyword arguments and return
a dict with ``loss`` (when targets are given), as ``transformers.Trainer`` expects.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import objectives, tasks
from .layers import PredictionTransform, init_weights

BASE_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "features", "boxes", "region_mask")


class MLMHead(nn.Module):
    """transform → decoder tied to the word embeddings, plus a bias (BERT's ``cls.predictions``).

    The tie is by construction: the decoder weight is passed in at call time, so the state
    dict holds each tensor once (safetensors refuses shared tensors).
    """

    def __init__(self, hidden: int, vocab: int, eps: float):
        super().__init__()
        self.transform = PredictionTransform(hidden, eps)
        self.bias = nn.Parameter(torch.zeros(vocab))

    def forward(self, x, word_embeddings: torch.Tensor):
        # x (B, T, hidden), word_embeddings (vocab, hidden) → (B, T, vocab)
        return F.linear(self.transform(x), word_embeddings, self.bias)


class RegionClassHead(nn.Module):
    """Predicts each region's detector class distribution (ViLBERT's masked-region head)."""

    def __init__(self, hidden: int, classes: int, eps: float):
        super().__init__()
        self.transform = PredictionTransform(hidden, eps)
        self.decoder = nn.Linear(hidden, classes)

    def forward(self, x):
        return self.decoder(self.transform(x))                # (B, R, classes)


class ForPretraining(nn.Module):
    """MLM for VisualBERT; MMM (MLM + masked-region KL) when ``region_head`` (ViLBERT).

    With ``mlm_labels`` the MLM logits are returned for the chosen tokens only (N, vocab).
    """

    def __init__(self, base: nn.Module, region_head: bool):
        super().__init__()
        cfg = base.cfg
        self.base = base
        self.mlm = MLMHead(cfg.hidden, cfg.vocab_size, cfg.layer_norm_eps)
        self.region = RegionClassHead(base.image_width, cfg.num_detector_classes,
                                      cfg.layer_norm_eps) if region_head else None
        init_weights(self.mlm.transform, cfg.initializer_range)
        if self.region is not None:
            init_weights(self.region, cfg.initializer_range)

    def forward(self, input_ids, attention_mask, token_type_ids, features=None, boxes=None,
                region_mask=None, mlm_labels=None, masked_regions=None, region_targets=None, **_) -> dict:
        enc = self.base(input_ids, attention_mask, token_type_ids, features, boxes, region_mask)
        words = self.base.embeddings.word_embeddings.weight
        if mlm_labels is None:
            out = {"mlm_logits": self.mlm(enc.text, words)}                    # (B, T, vocab)
        else:       # decode only the chosen tokens: the vocabulary projection is the costly part
            chosen = mlm_labels != -100
            out = {"mlm_logits": self.mlm(enc.text[chosen], words)}           # (N chosen, vocab)
            mlm_labels = mlm_labels[chosen]
        if self.region is not None:
            out["region_logits"] = self.region(enc.image)
        losses = []
        if mlm_labels is not None:
            out["mlm_loss"] = objectives.mlm_loss(out["mlm_logits"], mlm_labels)
            losses.append(out["mlm_loss"])
        if self.region is not None and masked_regions is not None:
            out["region_loss"] = objectives.region_kl_loss(out["region_logits"], region_targets,
                                                           masked_regions)
            losses.append(out["region_loss"])
        if losses:
            out["loss"] = sum(losses)
        return out


POOLING = ("default", "vqa")


class ForClassification(nn.Module):
    """dropout → transform → linear on the pooled output, with the task's loss (MMF's heads).

    ``pooling="vqa"`` reads the hidden state of the last text token before the final [SEP]
    instead of the pooler (MMF's VisualBERT ``pooler_strategy: vqa``, used for VQA2 and VizWiz).
    """

    def __init__(self, base: nn.Module, num_labels: int, task: str, pooling: str = "default"):
        super().__init__()
        tasks.get(task)                           # an unknown task is an error here, not at the loss
        if pooling not in POOLING:
            raise ValueError(f"unknown pooling {pooling!r}; known: {POOLING}")
        cfg = base.cfg
        self.base, self.task, self.pooling = base, task, pooling
        width = cfg.hidden if pooling == "vqa" else base.pooled_width
        self.classifier = nn.Sequential(nn.Dropout(cfg.dropout),
                                        PredictionTransform(width, cfg.layer_norm_eps),
                                        nn.Linear(width, num_labels))
        init_weights(self.classifier, cfg.initializer_range)

    def forward(self, input_ids, attention_mask, token_type_ids, features, boxes, region_mask,
                targets=None, **_) -> dict:
        pooled = self.pool(input_ids, attention_mask, token_type_ids, features, boxes, region_mask)
        return task_output(self.classifier(pooled), self.task, targets)

    def pool(self, input_ids, attention_mask, token_type_ids, features, boxes, region_mask) -> torch.Tensor:
        """What the classifier reads, (B, width): the only thing a frozen base contributes."""
        enc = self.base(input_ids, attention_mask, token_type_ids, features, boxes, region_mask)
        if self.pooling == "vqa":       # the token before the last [SEP]: (B, hidden)
            last = attention_mask.sum(1) - 2
            return enc.text[torch.arange(len(last), device=last.device), last]
        return enc.pooled


def task_output(logits: torch.Tensor, task: str, targets: torch.Tensor | None = None) -> dict:
    """The logits, and the task's loss when targets are given (what the Trainer reads)."""
    out = {"logits": logits}
    if targets is not None:
        out["loss"] = tasks.get(task).loss(logits, targets)
    return out

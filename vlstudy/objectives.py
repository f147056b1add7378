"""Pretraining objectives (MLM; MMM = MLM + masked-region KL) and the downstream task losses.

Each loss is finite when nothing is masked (a batch can have no masked region or token):
sums are divided by ``max(count, 1)``, fixing the ``max(n, 0)`` of the original ViLBERT.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def mlm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the vocabulary at chosen tokens (labels -100 elsewhere)."""
    # logits (..., V), labels (...): (B, T, V) and (B, T), or only the chosen (N, V) and (N,)
    total = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1),
                            ignore_index=-100, reduction="sum")
    return total / (labels != -100).sum().clamp(min=1)


def region_kl_loss(logits: torch.Tensor, targets: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
    """KL(detector distribution ‖ predicted distribution), summed over classes, averaged over
    the masked regions. logits, targets (B, R, C); masked (B, R) bool."""
    kl = F.kl_div(F.log_softmax(logits.float(), -1), targets.float(), reduction="none").sum(-1)
    return (kl * masked).sum() / masked.sum().clamp(min=1)


def logit_bce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Multi-label BCE (VQA soft scores, or multi-hot genres), summed over labels, mean over
    the batch: MMF's ``logit_bce``, used for VQA 2.0, VizWiz and MM-IMDB."""
    return F.binary_cross_entropy_with_logits(logits.float(), targets.float()) * targets.shape[1]


def classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the classes (SNLI-VE); the tasks' record names each task's loss."""
    return F.cross_entropy(logits.float(), labels)


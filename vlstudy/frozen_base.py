"""Frozen-base finetuning: the head trains on base outputs computed once per example.

A frozen base without dropout gives each example the same output at every update, so it
runs once per split (``cache_base_outputs``) and the head (``HeadOnly``, the model's own
classifier) trains on those pooled outputs: the same numbers as running the base at every
update, at a fraction of the cost. With dropout it runs at every update, as in MMF.
"""
from __future__ import annotations

import torch
from torch import nn

from .device import EVAL_BATCH_SIZE, process_device
from .models.heads import BASE_INPUTS, task_output


def deterministic(cfg) -> bool:
    """A base without dropout gives the same output for an example at every update, so a
    frozen one need run once per example. (With dropout, MMF's frozen base still draws masks
    in train mode; we then run it at every update, as MMF does.)"""
    return cfg.dropout == 0 and cfg.attention_dropout == 0


class PooledSplit(torch.utils.data.Dataset):
    """A split as the frozen base sees it: the classifier's inputs and the targets.

    Items are positions, like the other splits; ``PooledCollator`` stacks them into batches.
    """

    def __init__(self, pooled: torch.Tensor, targets: torch.Tensor):
        self.pooled, self.targets = pooled, targets           # (N, width), (N, ...)

    def __len__(self):
        return len(self.pooled)

    def __getitem__(self, i):
        return i


class PooledCollator:
    def __init__(self, dataset: PooledSplit):
        self.dataset = dataset

    def __call__(self, positions: list[int]) -> dict:
        return {"pooled": self.dataset.pooled[positions], "targets": self.dataset.targets[positions]}


class HeadOnly(nn.Module):
    """A ``ForClassification``'s head alone (the same module: training this trains the model's
    head), fed by ``PooledCollator``; its state dict has the model's ``classifier.*`` keys."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.classifier, self.task = model.classifier, model.task

    def forward(self, pooled, targets=None, **_) -> dict:
        return task_output(self.classifier(pooled), self.task, targets)


@torch.no_grad()
def cache_base_outputs(model: nn.Module, data: dict, collators: dict, batch_size: int = EVAL_BATCH_SIZE):
    """Each split's base outputs, one pass in eval mode on the device training will use
    (this process's GPU under torchrun): ``(PooledSplit``s, their collators)``."""
    device = process_device()
    model.to(device).eval()
    pooled_data, pooled_collators = {}, {}
    for split, ds in data.items():
        order = [int(ds[i]) for i in range(len(ds))]          # positions → the split's indices
        pooled, targets = [], []
        for start in range(0, len(order), batch_size):
            batch = collators[split](order[start:start + batch_size])
            inputs = {k: batch[k].to(device) for k in BASE_INPUTS}
            pooled.append(model.pool(**inputs).cpu())         # (b, width)
            targets.append(batch["targets"])
        pooled_data[split] = PooledSplit(torch.cat(pooled), torch.cat(targets))
        pooled_collators[split] = PooledCollator(pooled_data[split])
    model.train()
    return pooled_data, pooled_collators

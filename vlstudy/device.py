"""The device this process computes on: its GPU under torchrun / a SLURM task (LOCAL_RANK),
else the CPU."""
from __future__ import annotations

import os

import torch


def process_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


# Examples per forward pass where nothing trains (evaluation, cached base outputs, captions):
# large enough to keep a CPU busy, small enough for the base config on one GPU.
EVAL_BATCH_SIZE = 256

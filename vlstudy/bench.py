"""Benchmarks that print figures (never asserted in tests: timings here are noisy)."""
from __future__ import annotations

import time

import torch

from .data.batching import VLCollator
from .world import open_world


def bench_loader(preset: str = "small", dataset: str = "coco", batch_size: int = 64,
                 batches: int = 200, workers: int = 0) -> dict:
    """Samples/s of a shuffled DataLoader with token and region masking over one split."""
    root = open_world(preset)
    t = time.perf_counter()
    ds = root.split(dataset, "train")
    open_s = time.perf_counter() - t
    tok = root.tokenizer
    coll = VLCollator(ds, tok.mask_token_id, len(tok), 0.15, 0.15)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, collate_fn=coll,
                                         num_workers=workers, drop_last=True)
    n, t = 0, time.perf_counter()
    while n < batches:
        for batch in loader:
            n += 1
            if n >= batches:
                break
    secs = time.perf_counter() - t
    res = {"dataset": dataset, "examples": len(ds), "open_seconds": round(open_s, 2),
           "batches": n, "batch_size": batch_size,
           "samples_per_second": round(n * batch_size / secs), "workers": workers}
    print(f"loader {preset}/{dataset}: opened {len(ds)} examples in {open_s:.2f} s; "
          f"{res['samples_per_second']} samples/s ({n} batches of {batch_size}, "
          f"{workers} workers, token + region masking)")
    return res

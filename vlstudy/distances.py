"""How far finetuning moves the self-attention weights (§3.3 Fig. 4, Supp. C.1–C.3).

For every attention block the four matrices W_Q, W_K, W_V and W_O are compared between the
weights finetuning started from and the weights it kept (the best checkpoint):

- **L1 distance**: mean absolute difference of the entries, ``mean |W_f - W_0|`` (the mean,
  not the sum, so blocks of different widths — ViLBERT's streams — are comparable);
- **angular distance**: ``arccos(cos(vec W_0, vec W_f)) / pi`` in [0, 1]: 0 for the same
  direction, 0.5 for orthogonal.

The paper does not spell out its normalisation; these are the usual definitions.
"""
from __future__ import annotations

import math
import re

import pandas as pd
import torch

from .models.init import base_state

MATRICES = {"query": "W_Q", "key": "W_K", "value": "W_V", "dense": "W_O"}
# <stack>.<layer>.<block>.self.{query,key,value}.weight and <stack>.<layer>.<block>.output.dense.weight
ATTENTION_WEIGHT = re.compile(r"^(?P<stack>\w+?)\.(?P<layer>\d+)\.(?P<block>\w*attention)\."
                              r"(?:self\.(?P<qkv>query|key|value)|output\.(?P<out>dense))\.weight$")
STACK_NAMES = {("layers", "attention"): "text", ("v_layers", "attention"): "visual",
               ("c_layers", "text_attention"): "co-attention (text)",
               ("c_layers", "visual_attention"): "co-attention (visual)"}


def attention_matrices(state: dict[str, torch.Tensor]) -> dict[tuple[str, int, str], torch.Tensor]:
    """(stack, layer, matrix) → weight, for every self- or co-attention block of a base model."""
    out = {}
    for name, weight in state.items():
        m = ATTENTION_WEIGHT.match(name)
        if m is None:
            continue
        stack = STACK_NAMES.get((m["stack"], m["block"]), f"{m['stack']}.{m['block']}")
        out[(stack, int(m["layer"]), MATRICES[m["qkv"] or m["out"]])] = weight
    return out


def weight_distances(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> pd.DataFrame:
    """One row per (stack, layer, matrix): L1 and angular distance from ``before`` to ``after``."""
    a, b = attention_matrices(before), attention_matrices(after)
    if not a:
        raise ValueError("no attention weights found (expected names like layers.0.attention.self.query.weight)")
    if a.keys() != b.keys():
        raise ValueError(f"the two models' attention blocks differ: {sorted(a.keys() ^ b.keys())[:3]}")
    rows = []
    for key in sorted(a):
        w0, w1 = a[key].double().flatten(), b[key].double().flatten()
        if w0.shape != w1.shape:
            raise ValueError(f"{key}: shapes differ, {tuple(a[key].shape)} vs {tuple(b[key].shape)}")
        cos = float(torch.dot(w0, w1) / (w0.norm() * w1.norm()).clamp_min(1e-12))
        rows.append({"stack": key[0], "layer": key[1], "matrix": key[2],
                     "l1": float((w1 - w0).abs().mean()),
                     "angular": math.acos(max(-1.0, min(1.0, cos))) / math.pi})
    return pd.DataFrame(rows)


def finetuning_drift(spec, registry) -> pd.DataFrame:
    """Distances between the weights a finished finetuning run started from and those it kept.

    The start is rebuilt exactly as training built it (same seed, same parent weights, the
    probe's head where it started from one), so it is the pretrained model, the "BERT" init or
    the random init, whichever the run used.
    """
    from transformers import set_seed

    from .train import build_model
    folder = registry.folder(spec)
    if registry.metrics(spec) is None:
        raise ValueError(f"run {spec.id} has not finished: no weights to compare")
    set_seed(spec.seed)
    start = build_model(spec, spec.data(), registry.folder(spec.parent) if spec.parent else None,
                        registry.folder(spec.head_from) if spec.head_from else None)
    return weight_distances(start.base.state_dict(), base_state(folder / "model.safetensors"))

"""L1 and angular distances between attention weights (§3.3, Fig. 4)."""
import math

import pytest
import torch

from vlstudy.distances import attention_matrices, weight_distances
from vlstudy.models import build_base, model_config


def test_distances_on_known_changes():
    torch.manual_seed(0)
    state = build_base("visual_bert", model_config("tiny")).state_dict()
    same = weight_distances(state, state)
    assert len(same) == 3 * 4 and set(same["matrix"]) == {"W_Q", "W_K", "W_V", "W_O"}
    assert (same["l1"] == 0).all() and same["angular"].abs().max() < 1e-6
    doubled = weight_distances(state, {k: 2 * v for k, v in state.items()})
    q0 = state["layers.0.attention.self.query.weight"]
    row = doubled[(doubled["layer"] == 0) & (doubled["matrix"] == "W_Q")].iloc[0]
    assert row["l1"] == pytest.approx(float(q0.abs().mean())) and row["angular"] < 1e-6   # same direction
    flipped = weight_distances(state, {k: -v for k, v in state.items()})
    assert flipped["angular"].min() > 1 - 1e-6                                              # opposite
    rotated = {k: v.clone() for k, v in state.items()}
    w = rotated["layers.1.attention.output.dense.weight"]
    w.copy_(torch.randn_like(w))                            # independent: nearly orthogonal
    row = weight_distances(state, rotated).query("layer == 1 and matrix == 'W_O'").iloc[0]
    assert abs(row["angular"] - 0.5) < 0.1 and not math.isnan(row["l1"])


def test_vilbert_streams_and_errors():
    state = build_base("vilbert", model_config("tiny")).state_dict()
    stacks = {k[0] for k in attention_matrices(state)}
    assert stacks == {"text", "visual", "co-attention (text)", "co-attention (visual)"}
    with pytest.raises(ValueError, match="no attention weights"):
        weight_distances({"x": torch.zeros(2)}, {"x": torch.zeros(2)})
    fewer = {k: v for k, v in state.items() if not k.startswith("v_layers.1.")}
    with pytest.raises(ValueError, match="blocks differ"):
        weight_distances(state, fewer)

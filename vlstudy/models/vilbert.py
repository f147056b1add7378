"""ViLBERT (dual stream with co-attention), as vilbert-multi-task and MMF implement it.

A BERT text stream and a narrower-or-wider visual stream exchange information only in
co-attention blocks, placed by ``v_biattention_id`` / ``t_biattention_id``: before the k-th
block the text stream runs its layers up to ``t_biattention_id[k]`` and the visual stream
up to ``v_biattention_id[k]``; leftover layers run at the end. For the base config:

    text:   L0 L1 L2 L3 L4 L5 | C0 L6 | C1 L7 | C2 L8 | C3 L9 | C4 L10 | C5 L11
    vision: emb | C0 V0 | C1 V1 | C2 V2 | C3 V3 | C4 V4 | C5 V5

Regions enter as LayerNorm(Linear(feature) + Linear(5-d box)). Pooled text ([CLS]) and
pooled image (the global mean-region token, or region 0 without it) each go through
Linear + ReLU to ``bi_hidden`` and are multiplied. The unused ``q_dense`` layers of the
original are left out (11.0 M parameters in the base config).

References: facebookresearch/vilbert-multi-task ``vilbert/vilbert.py`` (BertEncoder,
BertConnectionLayer, BertImageEmbeddings); MMF ``mmf/models/vilbert.py``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .layers import CoAttentionLayer, Encoded, TransformerLayer, bert_text_stream, init_weights, key_mask


class RegionEmbeddings(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.image_embeddings = nn.Linear(cfg.feature_dim, cfg.v_hidden)
        self.image_location_embeddings = nn.Linear(5, cfg.v_hidden)
        self.LayerNorm = nn.LayerNorm(cfg.v_hidden, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, features, boxes):
        # (B, R, feature_dim), (B, R, 5) → (B, R, v_hidden)
        return self.dropout(self.LayerNorm(self.image_embeddings(features)
                                           + self.image_location_embeddings(boxes)))


def layer_schedule(cfg: ModelConfig) -> list[tuple[str, int]]:
    """The order the blocks run in: ("text", i), ("visual", i) and ("co", k) steps."""
    steps, t0, v0 = [], 0, 0
    for k, (v_id, t_id) in enumerate(zip(cfg.v_biattention_id, cfg.t_biattention_id)):
        steps += [("text", i) for i in range(t0, t_id)] + [("visual", i) for i in range(v0, v_id)]
        steps.append(("co", k))
        t0, v0 = t_id, v_id
    steps += [("text", i) for i in range(t0, cfg.layers)] + [("visual", i) for i in range(v0, cfg.v_layers)]
    return steps


class VilBert(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embeddings, self.layers = bert_text_stream(cfg)
        self.image_width, self.pooled_width = cfg.v_hidden, cfg.bi_hidden     # what the heads read
        self.region_embeddings = RegionEmbeddings(cfg)
        self.v_layers = nn.ModuleList(
            TransformerLayer(cfg.v_hidden, cfg.v_heads, cfg.v_inner, cfg.dropout, cfg.attention_dropout,
                             cfg.layer_norm_eps) for _ in range(cfg.v_layers))
        self.c_layers = nn.ModuleList(
            CoAttentionLayer(cfg.hidden, cfg.v_hidden, cfg.bi_hidden, cfg.bi_heads, cfg.inner,
                             cfg.v_inner, cfg.dropout, cfg.attention_dropout, cfg.layer_norm_eps)
            for _ in cfg.v_biattention_id)
        self.t_pooler = nn.Linear(cfg.hidden, cfg.bi_hidden)
        self.v_pooler = nn.Linear(cfg.v_hidden, cfg.bi_hidden)
        self.schedule = layer_schedule(cfg)
        init_weights(self, cfg.initializer_range)

    def forward(self, input_ids, attention_mask, token_type_ids, features, boxes, region_mask) -> Encoded:
        # input_ids (B, T); features (B, R, feature_dim); boxes (B, R, 5); masks (B, T), (B, R)
        if self.cfg.global_image_token:      # mean of the real regions, whole-image box
            m = region_mask.to(features.dtype)[..., None]
            mean = (features * m).sum(1, keepdim=True) / m.sum(1, keepdim=True).clamp(min=1)
            whole = boxes.new_tensor([0.0, 0.0, 1.0, 1.0, 1.0]).expand(boxes.shape[0], 1, 5)
            features, boxes = torch.cat([mean, features], 1), torch.cat([whole, boxes], 1)
            region_mask = torch.cat([region_mask.new_ones(region_mask.shape[0], 1), region_mask], 1)
        text = self.embeddings(input_ids, token_type_ids)                   # (B, T, hidden)
        image = self.region_embeddings(features, boxes)                     # (B, R', v_hidden)
        t_mask, v_mask = key_mask(attention_mask), key_mask(region_mask)
        for stream, i in self.schedule:
            if stream == "text":
                text = self.layers[i](text, t_mask)
            elif stream == "visual":
                image = self.v_layers[i](image, v_mask)
            else:
                text, image = self.c_layers[i](text, image, t_mask, v_mask)
        pooled = F.relu(self.t_pooler(text[:, 0])) * F.relu(self.v_pooler(image[:, 0]))   # (B, bi)
        if self.cfg.global_image_token:
            image = image[:, 1:]            # heads predict for the real regions only
        return Encoded(text=text, image=image, pooled=pooled)

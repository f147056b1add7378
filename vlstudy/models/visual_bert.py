"""VisualBERT (single stream), as MMF implements it for the paper.

Input: ``[CLS] text [SEP]`` followed by the projected regions, each region with its own
token-type and position embedding (type ``visual_token_type``, position 0), text and
regions normalised together, then one BERT encoder over the joint sequence. No boxes
unless ``use_box_embedding`` (an ablation: ViLBERT has them, VisualBERT as published not).

References: uclanlp/visualbert ``BertEmbeddingsWithVisualEmbedding``; MMF
``mmf/modules/embeddings.py::BertVisioLinguisticEmbeddings`` and ``mmf/models/visual_bert.py``.
"""
from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig
from .layers import Encoded, bert_text_stream, init_weights, key_mask


class VisualEmbeddings(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.projection = nn.Linear(cfg.feature_dim, cfg.hidden)
        self.token_type_embeddings_visual = nn.Embedding(cfg.type_vocab, cfg.hidden)
        self.position_embeddings_visual = nn.Embedding(cfg.max_positions, cfg.hidden)
        self.box = nn.Linear(5, cfg.hidden) if cfg.use_box_embedding else None
        self.visual_token_type = cfg.visual_token_type

    def forward(self, features: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        # features (B, R, feature_dim), boxes (B, R, 5) → (B, R, hidden), before LayerNorm
        zeros = torch.zeros(features.shape[:2], dtype=torch.long, device=features.device)
        out = (self.projection(features) + self.token_type_embeddings_visual(zeros + self.visual_token_type)
               + self.position_embeddings_visual(zeros))
        return out + self.box(boxes) if self.box is not None else out


class VisualBert(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embeddings, self.layers = bert_text_stream(cfg)
        self.image_width, self.pooled_width = cfg.hidden, cfg.hidden     # what the heads read
        self.visual_embeddings = VisualEmbeddings(cfg)
        self.pooler = nn.Linear(cfg.hidden, cfg.hidden)     # BERT's: tanh on [CLS]
        init_weights(self, cfg.initializer_range)

    def forward(self, input_ids, attention_mask, token_type_ids, features, boxes, region_mask) -> Encoded:
        # input_ids (B, T); features (B, R, feature_dim); boxes (B, R, 5); masks (B, T), (B, R)
        t = input_ids.shape[1]
        joint = torch.cat([self.embeddings.sum(input_ids, token_type_ids),
                           self.visual_embeddings(features, boxes)], dim=1)     # (B, T + R, H)
        x = self.embeddings.dropout(self.embeddings.LayerNorm(joint))
        mask = key_mask(torch.cat([attention_mask, region_mask.to(attention_mask.dtype)], 1))
        for layer in self.layers:
            x = layer(x, mask)
        pooled = torch.tanh(self.pooler(x[:, 0]))
        return Encoded(text=x[:, :t], image=x[:, t:], pooled=pooled)

"""The shared layers both models are built from (post-LN BERT blocks and co-attention).

Module and parameter names follow BERT's (``attention.self.query``, ``intermediate.dense``,
``output.LayerNorm`` ...) so that mapping a BERT checkpoint onto them is a short, explicit
table (see ``init.py``). Attention runs through ``F.scaled_dot_product_attention``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class Encoded:
    """What every base model returns: its streams and the pooled output the heads read."""
    text: torch.Tensor     # (B, T, text width)
    image: torch.Tensor    # (B, R, image width)
    pooled: torch.Tensor   # (B, pooled width): what task heads read


def key_mask(mask: torch.Tensor) -> torch.Tensor:
    """(B, K) 1/0 key mask → (B, 1, 1, K) boolean mask for SDPA (True = attend)."""
    return mask.bool()[:, None, None, :]


class Attention(nn.Module):
    """Multi-head attention of queries from one stream over keys/values of another (or itself).

    q_dim / kv_dim are the two streams' widths; ``hidden`` is the attention width.
    """

    def __init__(self, q_dim: int, kv_dim: int, hidden: int, heads: int, dropout: float):
        super().__init__()
        if hidden % heads:
            raise ValueError(f"attention width {hidden} is not divisible by {heads} heads")
        self.heads, self.dropout = heads, dropout
        self.query = nn.Linear(q_dim, hidden)
        self.key = nn.Linear(kv_dim, hidden)
        self.value = nn.Linear(kv_dim, hidden)

    def forward(self, x: torch.Tensor, context: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # x (B, Q, q_dim), context (B, K, kv_dim), mask (B, 1, 1, K) → (B, Q, hidden)
        b, q, _ = x.shape
        split = lambda t: t.view(b, t.shape[1], self.heads, -1).transpose(1, 2)  # noqa: E731
        out = F.scaled_dot_product_attention(
            split(self.query(x)), split(self.key(context)), split(self.value(context)),
            attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        return out.transpose(1, 2).reshape(b, q, -1)


class ResidualNorm(nn.Module):
    """dense → dropout → + residual → LayerNorm (BERT's "output" sub-layers)."""

    def __init__(self, in_dim: int, hidden: int, dropout: float, eps: float):
        super().__init__()
        self.dense = nn.Linear(in_dim, hidden)
        self.dropout = nn.Dropout(dropout)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class Intermediate(nn.Module):
    def __init__(self, hidden: int, inner: int):
        super().__init__()
        self.dense = nn.Linear(hidden, inner)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(x))


class AttentionBlock(nn.Module):
    """Attention plus its output projection, residual and LayerNorm (BERT's ``attention``)."""

    def __init__(self, q_dim: int, kv_dim: int, hidden: int, heads: int, dropout: float,
                 attention_dropout: float, eps: float):
        super().__init__()
        self.self = Attention(q_dim, kv_dim, hidden, heads, attention_dropout)
        self.output = ResidualNorm(hidden, q_dim, dropout, eps)

    def forward(self, x, context, mask):
        return self.output(self.self(x, context, mask), x)


class FeedForward(nn.Module):
    """BERT's intermediate + output: GELU expansion and projection back, residual, LayerNorm."""

    def __init__(self, hidden: int, inner: int, dropout: float, eps: float):
        super().__init__()
        self.intermediate = Intermediate(hidden, inner)
        self.output = ResidualNorm(inner, hidden, dropout, eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.intermediate(x), x)


class TransformerLayer(nn.Module):
    """A post-LN BERT layer: self-attention then feed-forward (names as in BERT's ``layer.i``)."""

    def __init__(self, hidden: int, heads: int, inner: int, dropout: float,
                 attention_dropout: float, eps: float):
        super().__init__()
        self.attention = AttentionBlock(hidden, hidden, hidden, heads, dropout, attention_dropout, eps)
        self.ffn = FeedForward(hidden, inner, dropout, eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # x (B, L, hidden), mask (B, 1, 1, L)
        return self.ffn(self.attention(x, x, mask))


class CoAttentionLayer(nn.Module):
    """ViLBERT's connection layer: each stream attends to the other, then its own FFN.

    There is no self-attention inside; the streams' own layers provide it. The text side
    attends over regions and the visual side over tokens, both at width ``bi_hidden``.
    """

    def __init__(self, t_hidden: int, v_hidden: int, bi_hidden: int, heads: int, t_inner: int,
                 v_inner: int, dropout: float, attention_dropout: float, eps: float):
        super().__init__()
        self.text_attention = AttentionBlock(t_hidden, v_hidden, bi_hidden, heads, dropout,
                                             attention_dropout, eps)
        self.visual_attention = AttentionBlock(v_hidden, t_hidden, bi_hidden, heads, dropout,
                                               attention_dropout, eps)
        self.text_ffn = FeedForward(t_hidden, t_inner, dropout, eps)
        self.visual_ffn = FeedForward(v_hidden, v_inner, dropout, eps)

    def forward(self, text, image, text_mask, image_mask):
        # text (B, T, t_hidden), image (B, R, v_hidden); masks (B, 1, 1, T) and (B, 1, 1, R)
        text_ctx = self.text_attention(text, image, image_mask)
        image_ctx = self.visual_attention(image, text, text_mask)
        return self.text_ffn(text_ctx), self.visual_ffn(image_ctx)


class TextEmbeddings(nn.Module):
    """Word + position + token type, LayerNorm, dropout (BERT's ``embeddings``)."""

    def __init__(self, vocab: int, hidden: int, max_positions: int, type_vocab: int,
                 dropout: float, eps: float):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, hidden, padding_idx=0)
        self.position_embeddings = nn.Embedding(max_positions, hidden)
        self.token_type_embeddings = nn.Embedding(type_vocab, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)
        self.dropout = nn.Dropout(dropout)

    def sum(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        """The embeddings before LayerNorm (VisualBERT normalises text and regions together)."""
        pos = torch.arange(input_ids.shape[1], device=input_ids.device)
        return (self.word_embeddings(input_ids) + self.position_embeddings(pos)[None]
                + self.token_type_embeddings(token_type_ids))

    def forward(self, input_ids, token_type_ids):
        # (B, T) → (B, T, hidden)
        return self.dropout(self.LayerNorm(self.sum(input_ids, token_type_ids)))


def bert_text_stream(cfg) -> tuple[TextEmbeddings, nn.ModuleList]:
    """BERT's embeddings and ``cfg.layers`` post-LN layers: the text side of every model here."""
    embeddings = TextEmbeddings(cfg.vocab_size, cfg.hidden, cfg.max_positions, cfg.type_vocab,
                                cfg.dropout, cfg.layer_norm_eps)
    layers = nn.ModuleList(TransformerLayer(cfg.hidden, cfg.heads, cfg.inner, cfg.dropout,
                                            cfg.attention_dropout, cfg.layer_norm_eps)
                           for _ in range(cfg.layers))
    return embeddings, layers


class PredictionTransform(nn.Module):
    """dense → GELU → LayerNorm: the transform in front of every prediction head."""

    def __init__(self, hidden: int, eps: float):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x):
        return self.LayerNorm(F.gelu(self.dense(x)))


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """BERT's initialisation: normal(0, std) weights, zero biases, unit LayerNorms."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, std)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
            if isinstance(m, nn.Embedding) and m.padding_idx is not None:
                with torch.no_grad():
                    m.weight[m.padding_idx].zero_()
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

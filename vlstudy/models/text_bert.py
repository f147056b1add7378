"""A text-only BERT from the shared layers: the synthetic world's stand-in for bert-base.

Trained with MLM on the world's broad corpus, it is exported in the layout of a Hugging
Face BERT checkpoint (``export_bert``), so both models load it exactly as they would load
a real ``bert-base-uncased`` folder.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from .config import ModelConfig
from .layers import Encoded, bert_text_stream, init_weights, key_mask


class TextBert(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embeddings, self.layers = bert_text_stream(cfg)
        self.image_width, self.pooled_width = cfg.hidden, cfg.hidden     # what the heads read
        self.pooler = nn.Linear(cfg.hidden, cfg.hidden)
        init_weights(self, cfg.initializer_range)

    def forward(self, input_ids, attention_mask, token_type_ids, *_regions) -> Encoded:
        # input_ids (B, T) → text (B, T, hidden); regions, if given, are ignored
        x, mask = self.embeddings(input_ids, token_type_ids), key_mask(attention_mask)
        for layer in self.layers:
            x = layer(x, mask)
        return Encoded(text=x, image=x[:, :0], pooled=torch.tanh(self.pooler(x[:, 0])))


def export_bert(model: nn.Module, folder: Path) -> None:
    """Write a TextBert with its MLM head as a Hugging Face BERT folder (safetensors + config)."""
    from safetensors.torch import save_file

    from .init import bert_key_map
    params = dict(model.named_parameters())
    state = {theirs: params[ours].detach().contiguous().clone() for ours, theirs in bert_key_map(model).items()}
    cfg = model.base.cfg
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps({
        "architectures": ["BertForPreTraining"], "model_type": "bert", "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.hidden, "num_hidden_layers": cfg.layers, "num_attention_heads": cfg.heads,
        "intermediate_size": cfg.inner, "max_position_embeddings": cfg.max_positions,
        "type_vocab_size": cfg.type_vocab, "layer_norm_eps": cfg.layer_norm_eps, "hidden_act": "gelu"},
        indent=1))

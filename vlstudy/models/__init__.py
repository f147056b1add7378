"""VisualBERT and ViLBERT on one set of layers, their heads, configs and weight loading."""
from __future__ import annotations

from torch import nn

from .config import PRESETS, ModelConfig, model_config
from .heads import ForClassification, ForPretraining
from .text_bert import TextBert
from .vilbert import VilBert
from .visual_bert import VisualBert

ARCHITECTURES = {"visual_bert": VisualBert, "vilbert": VilBert}
TEXT_ONLY = {"bert": TextBert}


def build_base(arch: str, cfg: ModelConfig) -> nn.Module:
    known = {**ARCHITECTURES, **TEXT_ONLY}
    if arch not in known:
        raise ValueError(f"unknown architecture {arch!r}; known: {sorted(known)}")
    return known[arch](cfg)


def build_pretraining(arch: str, cfg: ModelConfig) -> ForPretraining:
    """VisualBERT pretrains with MLM; ViLBERT with MMM (MLM + masked-region KL), as in the paper."""
    return ForPretraining(build_base(arch, cfg), region_head=arch == "vilbert")


__all__ = ["ARCHITECTURES", "PRESETS", "ForClassification", "ForPretraining", "ModelConfig", "VilBert",
           "TextBert", "VisualBert", "build_base", "build_pretraining", "model_config"]

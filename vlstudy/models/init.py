"""Initialisation from a local BERT checkpoint, with an explicit key map and a report.

The paper starts VisualBERT's 12 layers and ViLBERT's 12 text layers from
``bert-base-uncased``; everything else (regions, visual stream, co-attention, ViLBERT's
poolers) starts from normal(0, 0.02), as does a randomly initialised model (Supp. C.1).
VisualBERT's visual token-type and position tables start as copies of the text ones
(``special_visual_initialize`` in the original and MMF).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

LAYER_MAP = {   # ours (under layers.i.) ← BERT's (under encoder.layer.i.)
    "attention.self.query": "attention.self.query", "attention.self.key": "attention.self.key",
    "attention.self.value": "attention.self.value", "attention.output.dense": "attention.output.dense",
    "attention.output.LayerNorm": "attention.output.LayerNorm",
    "ffn.intermediate.dense": "intermediate.dense", "ffn.output.dense": "output.dense",
    "ffn.output.LayerNorm": "output.LayerNorm",
}
EMBEDDING_MAP = {f"embeddings.{n}": f"embeddings.{n}" for n in
                 ("word_embeddings.weight", "position_embeddings.weight", "token_type_embeddings.weight",
                  "LayerNorm.weight", "LayerNorm.bias")}
HEAD_MAP = {"mlm.transform.dense": "cls.predictions.transform.dense",
            "mlm.transform.LayerNorm": "cls.predictions.transform.LayerNorm"}


def with_params(modules: dict[str, str]) -> dict[str, str]:
    """A module-name map as a parameter-name map (each module's weight and bias)."""
    return {f"{ours}.{p}": f"{theirs}.{p}" for ours, theirs in modules.items() for p in ("weight", "bias")}


def bert_key_map(model: nn.Module) -> dict[str, str]:
    """Our parameter name → the BERT checkpoint's, for every weight BERT provides."""
    base = getattr(model, "base", model)
    prefix = "base." if base is not model else ""
    modules = {}
    for i in range(len(base.layers)):
        modules.update({f"layers.{i}.{ours}": f"encoder.layer.{i}.{theirs}" for ours, theirs in LAYER_MAP.items()})
    if hasattr(base, "pooler"):                # ViLBERT's poolers widen to bi_hidden: new
        modules["pooler"] = "pooler.dense"
    out = {prefix + ours: theirs for ours, theirs in {**EMBEDDING_MAP, **with_params(modules)}.items()}
    if prefix and hasattr(model, "mlm"):
        out.update(with_params(HEAD_MAP))
        out["mlm.bias"] = "cls.predictions.bias"
    return out


def read_bert_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """A BERT state dict from a local Hugging Face folder (or a weights file), names normalised:
    no ``bert.`` prefix; old ``gamma``/``beta`` LayerNorm names as ``weight``/``bias``."""
    path = Path(path)
    files = [path] if path.is_file() else [path / "model.safetensors", path / "pytorch_model.bin"]
    found = next((f for f in files if f.exists()), None)
    if found is None:
        raise FileNotFoundError(f"no BERT weights at {path} (looked for {[f.name for f in files]})")
    if found.suffix == ".safetensors":
        from safetensors.torch import load_file
        state = load_file(str(found))
    else:
        state = torch.load(found, map_location="cpu", weights_only=True)
    out = {}
    for k, v in state.items():
        k = k[len("bert."):] if k.startswith("bert.") else k
        k = k.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
        out[k] = v
    return out


@dataclass
class LoadReport:
    loaded: list[str] = field(default_factory=list)    # our names set from the checkpoint
    new: list[str] = field(default_factory=list)       # our names left at their initialisation
    unused: list[str] = field(default_factory=list)    # checkpoint names nothing took
    source: str = "BERT"

    def __str__(self) -> str:
        return (f"{len(self.loaded)} tensors loaded from {self.source}, {len(self.new)} new, "
                f"{len(self.unused)} checkpoint tensors unused")


@torch.no_grad()
def load_bert(model: nn.Module, checkpoint: Path | dict[str, torch.Tensor]) -> LoadReport:
    """Copy BERT's weights into the text side of ``model`` (a base model or one with heads)."""
    state = checkpoint if isinstance(checkpoint, dict) else read_bert_checkpoint(checkpoint)
    params = dict(model.named_parameters())
    mapping = bert_key_map(model)
    missing = [theirs for theirs in mapping.values() if theirs not in state]
    if missing:
        raise ValueError(f"BERT checkpoint lacks {len(missing)} expected weight(s), first: {missing[0]}")
    for ours, theirs in mapping.items():
        if params[ours].shape != state[theirs].shape:
            raise ValueError(f"checkpoint weight {theirs} has shape {tuple(state[theirs].shape)}, but "
                             f"the model's {ours} needs {tuple(params[ours].shape)}")
    for ours, theirs in mapping.items():
        params[ours].copy_(state[theirs])
    base = getattr(model, "base", model)
    if hasattr(base, "visual_embeddings"):           # VisualBERT: visual tables start as text's
        base.visual_embeddings.token_type_embeddings_visual.weight.copy_(
            base.embeddings.token_type_embeddings.weight)
        base.visual_embeddings.position_embeddings_visual.weight.copy_(
            base.embeddings.position_embeddings.weight)
    used = set(mapping.values())
    return LoadReport(loaded=sorted(mapping), new=sorted(set(params) - set(mapping)),
                      unused=sorted(k for k in state if k not in used))


def base_state(path: Path) -> dict[str, torch.Tensor]:
    """The base model's weights (``base.*``, prefix dropped) from a run's safetensors file."""
    return _module_state(path, "base.")


def _module_state(path: Path, prefix: str) -> dict[str, torch.Tensor]:
    """One module's weights (keys under ``prefix``, prefix dropped) from a run's safetensors file."""
    from safetensors.torch import load_file
    return {k[len(prefix):]: v for k, v in load_file(str(path)).items() if k.startswith(prefix)}


def load_head_weights(model: nn.Module, path: Path) -> None:
    """The task head (``classifier.*``) of a finished finetuning run's weights into ``model``'s
    head: every key of the head, with its shape, or an error naming the first that differs."""
    state = _module_state(path, "classifier.")
    ours = model.classifier.state_dict()
    if set(state) != set(ours):
        raise ValueError(f"head at {path} does not fit the model: missing {sorted(set(ours) - set(state))[:3]}, "
                         f"unexpected {sorted(set(state) - set(ours))[:3]}")
    wrong = [k for k in ours if ours[k].shape != state[k].shape]
    if wrong:
        raise ValueError(f"head at {path} does not fit the model: {wrong[0]} has shape "
                         f"{tuple(state[wrong[0]].shape)}, the model's {tuple(ours[wrong[0]].shape)}")
    model.classifier.load_state_dict(state)


def load_base_weights(model: nn.Module, path: Path) -> None:
    """The base (``base.*``) of a finished run's weights into ``model.base``; heads stay new."""
    missing, unexpected = model.base.load_state_dict(base_state(path), strict=False)
    if missing or unexpected:
        raise ValueError(f"weights at {path} do not fit the model: missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]}")

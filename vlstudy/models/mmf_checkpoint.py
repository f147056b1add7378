"""The weights released with the paper (MMF's model zoo) loaded into our models.

MMF checkpoints of VisualBERT and ViLBERT keep the model under ``model.`` (``model.bert.*``
the base, ``model.cls.*`` the pretraining heads, ``model.classifier.*`` a task head);
DDP adds ``module.``, and checkpoints older than the zoo say ``bert.bert.*``. The map
below is explicit, name by name, from MMF's ``mmf/models/visual_bert.py`` and
``vilbert.py`` (1.0.0rc10, the release ``tests/test_mmf_parity.py`` checks it against); every
weight of ours that the checkpoint should provide must be there with the right shape.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import nn

from .init import LAYER_MAP, LoadReport, with_params

BERT_EMBEDDINGS = ("word_embeddings", "position_embeddings", "token_type_embeddings", "LayerNorm")
# ViLBERT's co-attention block, ours → MMF's (``c_layer.k.``). MMF's ``biattention`` projects
# the visual stream with query1/key1/value1 and the text stream with query2/key2/value2;
# text queries attend to visual keys (query2 · key1) and the result returns to the text
# stream through biOutput.dense2 / LayerNorm2 — the other way round for the visual stream.
CO_LAYER_MAP = {
    "text_attention.self.query": "biattention.query2", "text_attention.self.key": "biattention.key1",
    "text_attention.self.value": "biattention.value1",
    "text_attention.output.dense": "biOutput.dense2", "text_attention.output.LayerNorm": "biOutput.LayerNorm2",
    "visual_attention.self.query": "biattention.query1", "visual_attention.self.key": "biattention.key2",
    "visual_attention.self.value": "biattention.value2",
    "visual_attention.output.dense": "biOutput.dense1", "visual_attention.output.LayerNorm": "biOutput.LayerNorm1",
    "text_ffn.intermediate.dense": "t_intermediate.dense", "text_ffn.output.dense": "t_output.dense",
    "text_ffn.output.LayerNorm": "t_output.LayerNorm",
    "visual_ffn.intermediate.dense": "v_intermediate.dense", "visual_ffn.output.dense": "v_output.dense",
    "visual_ffn.output.LayerNorm": "v_output.LayerNorm",
}
HEADS_MAP = {"mlm.transform.dense": "cls.predictions.transform.dense",
             "mlm.transform.LayerNorm": "cls.predictions.transform.LayerNorm",
             "region.transform.dense": "cls.imagePredictions.transform.dense",
             "region.transform.LayerNorm": "cls.imagePredictions.transform.LayerNorm",
             "region.decoder": "cls.imagePredictions.decoder",
             # MMF: Sequential(transform, linear) after a separate dropout; ours puts the dropout first
             "classifier.1.dense": "classifier.0.dense", "classifier.1.LayerNorm": "classifier.0.LayerNorm",
             "classifier.2": "classifier.1"}


def mmf_key_map(model: nn.Module) -> dict[str, str]:
    """Our parameter name → the MMF checkpoint's (after ``normalise_keys``), for a base model
    or one with heads (``ForPretraining`` / ``ForClassification``)."""
    base = getattr(model, "base", model)
    prefix = "base." if base is not model else ""
    out = {f"embeddings.{n}.weight": f"bert.embeddings.{n}.weight" for n in BERT_EMBEDDINGS[:3]}
    out.update(with_params({"embeddings.LayerNorm": "bert.embeddings.LayerNorm"}))
    modules = {}
    for i in range(len(base.layers)):
        modules.update({f"layers.{i}.{o}": f"bert.encoder.layer.{i}.{t}" for o, t in LAYER_MAP.items()})
    if hasattr(base, "visual_embeddings"):                                    # VisualBERT
        out["visual_embeddings.token_type_embeddings_visual.weight"] = \
            "bert.embeddings.token_type_embeddings_visual.weight"
        out["visual_embeddings.position_embeddings_visual.weight"] = \
            "bert.embeddings.position_embeddings_visual.weight"
        modules["visual_embeddings.projection"] = "bert.embeddings.projection"
        modules["pooler"] = "bert.pooler.dense"
    else:                                                                      # ViLBERT
        for n in ("image_embeddings", "image_location_embeddings", "LayerNorm"):
            modules[f"region_embeddings.{n}"] = f"bert.v_embeddings.{n}"
        for i in range(len(base.v_layers)):
            modules.update({f"v_layers.{i}.{o}": f"bert.encoder.v_layer.{i}.{t}" for o, t in LAYER_MAP.items()})
        for k in range(len(base.c_layers)):
            modules.update({f"c_layers.{k}.{o}": f"bert.encoder.c_layer.{k}.{t}" for o, t in CO_LAYER_MAP.items()})
        modules.update({"t_pooler": "bert.t_pooler.dense", "v_pooler": "bert.v_pooler.dense"})
    out.update(with_params(modules))
    out = {prefix + ours: theirs for ours, theirs in out.items()}
    if prefix:
        params = dict(model.named_parameters())
        heads = {o: t for o, t in with_params(HEADS_MAP).items() if o in params}
        if "mlm.bias" in params:
            heads["mlm.bias"] = "cls.predictions.bias"
        out.update(heads)
    return out


def normalise_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """MMF names without ``module.`` / ``model.``; pre-zoo ``bert.bert.*`` / ``bert.cls.*`` /
    ``bert.classifier.*`` become the zoo's."""
    out = {}
    for k, v in state.items():
        k = k[len("module."):] if k.startswith("module.") else k
        for old, new in (("bert.bert.", "model.bert."), ("bert.cls.", "model.cls."),
                         ("bert.classifier.", "model.classifier.")):
            if k.startswith(old):
                k = new + k[len(old):]
        out[k[len("model."):] if k.startswith("model.") else k] = v
    return out


def read_mmf_checkpoint(path: Path, trust_pickle: bool = False) -> dict[str, torch.Tensor]:
    """The state dict of an MMF ``.ckpt`` / ``.pth`` (a dict with ``model``, or bare).
    Zoo files may pickle their config too; ``trust_pickle`` lets torch unpickle anything
    (only for files you trust)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except pickle.UnpicklingError as e:          # what the weights-only unpickler refuses
        if trust_pickle:
            raise
        raise ValueError(f"{path}: holds more than tensors ({type(e).__name__}); if you trust the file, "
                         f"load it with trust_pickle=True (VLSTUDY_TRUST_PICKLE=1 for the study)") from None
    except (RuntimeError, EOFError, OSError) as e:   # truncated, or not a torch file at all
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{path}: cannot be read as a torch checkpoint ({path.stat().st_size:,} bytes; "
                         f"{first}): is it complete?") from None
    state = ckpt.get("model", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: not an MMF checkpoint (expected a state dict, or a dict with 'model')")
    return normalise_keys(state)


@torch.no_grad()
def load_mmf_checkpoint(model: nn.Module, checkpoint: Path | dict[str, torch.Tensor],
                        classifier: bool = False, trust_pickle: bool = False) -> LoadReport:
    """Copy an MMF VisualBERT / ViLBERT checkpoint into ``model``: the base always, the
    pretraining heads ``model`` has; a task classifier only with ``classifier`` (its labels
    must be in MMF's order), as MMF's own finetuning copies only ``model.bert``. MMF's 1601
    visual classes put background first; ours last."""
    state = normalise_keys(checkpoint) if isinstance(checkpoint, dict) else \
        read_mmf_checkpoint(checkpoint, trust_pickle)
    params = dict(model.named_parameters())
    mapping = {o: t for o, t in mmf_key_map(model).items() if classifier or not t.startswith("classifier.")}
    required = {o: t for o, t in mapping.items() if not t.startswith(("cls.", "classifier."))}
    missing = [t for t in required.values() if t not in state]
    if missing:
        raise ValueError(f"MMF checkpoint lacks {len(missing)} weight(s) of the base, first: model.{missing[0]}")
    values = {}
    for ours, theirs in mapping.items():
        if theirs not in state:
            continue
        value = state[theirs]
        if theirs.startswith("cls.imagePredictions.decoder"):               # background first → last
            value = torch.cat([value[1:], value[:1]])
        if params[ours].shape != value.shape:
            raise ValueError(f"checkpoint weight model.{theirs} has shape {tuple(value.shape)}, but "
                             f"the model's {ours} needs {tuple(params[ours].shape)}")
        values[ours] = value
    for ours, value in values.items():          # all checked: nothing is half-loaded
        params[ours].copy_(value)
    used = {mapping[o] for o in values}
    return LoadReport(loaded=sorted(values), new=sorted(set(params) - set(values)),
                      unused=sorted(k for k in state if k not in used), source="MMF")

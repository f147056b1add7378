"""The captioner behind the generated CC corpus (CCG, §3.4): region features → a caption.

The paper trains a captioner on COCO and captions CC's images with it, so that CC's images
come with COCO-like text. Ours is a GPT-2 decoder from ``transformers`` that cross-attends
to the image's regions (each region's feature and box projected to the decoder's width);
decoding is ``transformers``' ``generate`` (beam search, or sampling), nothing hand-written.
It reads the study's tokenizer: [CLS] starts a caption, [SEP] ends it, [PAD] pads.

Two run stages use it (``stages``):
- ``captioner``: trained on a captioning set's pairs (``spec.dataset``, e.g. COCO, a
  ``train_fraction`` of it for a smaller captioner), caption quality (BLEU-4, CIDEr) on
  its test images;
- ``captions``: that captioner (the parent run) captions the train and val images of
  ``spec.dataset`` (e.g. CC) by beam search, one caption per image, and writes them as a
  pretraining dataset in the run folder, on the images' own feature store. A pretraining
  run with ``text_from`` = this run pretrains on it (CCG).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .data.batching import VLCollator
from .data.records import Record, write_records
from .data.root import DataRoot
from .models.config import ModelConfig
from .paths import atomic_write_text

CAPTION_BEAMS = 3                # beam width of the captions stage (and of the quality metrics)
# Enters the ids of captioner and captions runs: change it when decoding changes
DECODING = f"beam{CAPTION_BEAMS}, no early stopping"
GENERATED_DIR = "dataset"        # where a captions run writes its dataset
GENERATED_SPLITS = ("train", "val")


class Captioner(nn.Module):
    """GPT-2 with cross-attention over projected regions. Sizes from a ``ModelConfig``."""

    def __init__(self, cfg: ModelConfig, bos_id: int, eos_id: int, pad_id: int):
        super().__init__()
        from transformers import GPT2Config, GPT2LMHeadModel
        self.regions = nn.Sequential(nn.Linear(cfg.feature_dim + 5, cfg.hidden), nn.LayerNorm(cfg.hidden))
        self.decoder = GPT2LMHeadModel(GPT2Config(
            vocab_size=cfg.vocab_size, n_positions=cfg.max_positions, n_embd=cfg.hidden,
            n_layer=cfg.layers, n_head=cfg.heads, n_inner=cfg.inner, resid_pdrop=cfg.dropout,
            embd_pdrop=cfg.dropout, attn_pdrop=cfg.attention_dropout, add_cross_attention=True,
            initializer_range=cfg.initializer_range, bos_token_id=bos_id, eos_token_id=eos_id,
            pad_token_id=pad_id, tie_word_embeddings=False))    # untied: plain safetensors checkpoints
        # GPT2LMHeadModel's class name names no loss, so transformers would guess one and warn:
        # its loss is the causal LM's, said here
        self.decoder.loss_type = "ForCausalLM"
        self.bos_id, self.eos_id, self.pad_id = bos_id, eos_id, pad_id

    def encode(self, features, boxes) -> torch.Tensor:
        return self.regions(torch.cat([features, boxes], -1))           # (B, R, H)

    def forward(self, input_ids, attention_mask, features, boxes, region_mask, labels, **_) -> dict:
        """Teacher-forced caption loss. input_ids (B, T) = [CLS] caption [SEP] [PAD]...;
        labels (B, T) the same with -100 at padding (the decoder shifts them); features
        (B, R, D), boxes (B, R, 5), region_mask (B, R)."""
        out = self.decoder(input_ids=input_ids, attention_mask=attention_mask,
                           encoder_hidden_states=self.encode(features, boxes),
                           encoder_attention_mask=region_mask.long(), labels=labels)
        return {"loss": out.loss}

    @torch.no_grad()
    def generate(self, features, boxes, region_mask, max_length: int, num_beams: int = CAPTION_BEAMS,
                 do_sample: bool = False, **options) -> torch.Tensor:
        """Token ids (B, ≤ max_length), each starting with [CLS]; ``options`` go to
        ``transformers``' ``generate`` (e.g. ``top_p``, ``temperature`` when sampling)."""
        start = torch.full((len(features), 1), self.bos_id, dtype=torch.long, device=features.device)
        return self.decoder.generate(
            input_ids=start, attention_mask=torch.ones_like(start),
            encoder_hidden_states=self.encode(features, boxes),
            encoder_attention_mask=region_mask.long(), max_length=max_length, num_beams=num_beams,
            # not early_stopping=True: it ends the search once num_beams captions are finished,
            # even when a longer, likelier one is still open (seen: a caption cut short)
            do_sample=do_sample, eos_token_id=self.eos_id,
            pad_token_id=self.pad_id, **options)


def build_captioner(cfg: ModelConfig, tokenizer) -> Captioner:
    return Captioner(cfg, tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id)


@dataclass
class CaptionCollator(VLCollator):
    """A VLCollator batch plus ``labels``: the caption's tokens, padding ignored."""

    def __call__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        batch = super().__call__(indices)
        batch["labels"] = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        return batch


# --- captioning images ---------------------------------------------------------------------
def unique_images(records: list[Record]) -> list[str]:
    """The split's image ids, once each, in order of first appearance."""
    return list(dict.fromkeys(r.image_id for r in records))


def caption_images(model: Captioner, root: DataRoot, store_name: str, image_ids: list[str],
                   max_length: int, batch_size: int = 256, **decoding) -> list[str]:
    """One caption per image (beam search unless ``decoding`` says otherwise), as text."""
    store, tok = root.store(store_name), root.tokenizer
    rows = store.index_of(image_ids, where=f"images to caption ({store_name})")
    device = next(model.parameters()).device
    model.eval()
    captions = []
    for start in range(0, len(rows), batch_size):
        reg = store.gather(rows[start:start + batch_size])
        n = torch.from_numpy(reg["num_regions"])
        valid = torch.arange(reg["features"].shape[1])[None, :] < n[:, None]
        ids = model.generate(torch.from_numpy(reg["features"]).to(device), torch.from_numpy(reg["boxes"]).to(device),
                             valid.to(device), max_length, **decoding)
        captions += tok.batch_decode(ids, skip_special_tokens=True)
    return [" ".join(c.split()) for c in captions]


def caption_quality(model: Captioner, root: DataRoot, dataset: str, split: str, max_length: int) -> dict:
    """BLEU-4 and CIDEr (pycocoevalcap, COCO's own scorers) of beam-search captions for a
    captioning split's images against all of each image's reference captions."""
    from .metrics import caption_scores
    records = root.records(dataset, split)
    images = unique_images(records)
    refs: dict[str, list[str]] = {i: [] for i in images}
    for r in records:
        refs[r.image_id].append(r.text)
    hyps = caption_images(model, root, root.info(dataset).store, images, max_length)
    return caption_scores(refs, dict(zip(images, hyps)))


def write_generated(folder: Path, root: DataRoot, images_from: str, captioner_id: str,
                    captions: dict[str, list[tuple[str, str]]]) -> dict:
    """The generated pretraining dataset (``folder``): per split, one record per
    (image id, caption); on the images' own store. Returns its summary."""
    splits = {split: [Record(id=f"{image}-generated", image_id=image, text=text) for image, text in pairs]
              for split, pairs in captions.items()}
    write_records(folder, splits, "pretraining", root.info(images_from).store,
                  images_from=images_from, text_from=captioner_id, text_domain="generated")
    # the folder may be a temporary one: the dataset's name is what it is generated from
    info = json.loads((Path(folder) / "dataset.json").read_text())
    atomic_write_text(Path(folder) / "dataset.json", json.dumps({**info, "name": f"{images_from}+generated"}, indent=1))
    texts = [t for pairs in captions.values() for _, t in pairs]
    return {"images": len(texts), "distinct_captions": len(set(texts)),
            "mean_words": sum(len(t.split()) for t in texts) / max(1, len(texts))}


def generated_folder(run_folder: Path) -> Path:
    return Path(run_folder) / GENERATED_DIR

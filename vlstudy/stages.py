"""The five stages a run can be, one object each: the single place that knows a stage's
splits, datasets, model, collator, label names and what it reports once trained.

``bert``: text-only MLM on the world's corpus, the stand-in for bert-base-uncased.
``captioner``: the captioning model behind generated pretraining text (CCG).
``captions``: decodes with a trained captioner; trains nothing.
``pretrain``: MLM for VisualBERT, MLM + masked-region KL for ViLBERT, on a dataset's own text
or on the captions a ``captions`` run made for its images.
``finetune``: a task head, whole model or frozen base, scored on the task.

``train.train_run`` runs any of them through one loop (``fit``).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import captioner, tasks
from .data.batching import TextDataset, VLCollator, base_dataset
from .data.root import DataRoot
from .device import EVAL_BATCH_SIZE, process_device
from .models import ForClassification, ForPretraining, build_base, model_config
from .models.text_bert import TextBert, export_bert
from .paths import atomic_write_text, swap_in_dir

STAGES = ("bert", "captioner", "captions", "pretrain", "finetune")     # the order runs depend on
REGION_MASK_PROBABILITY = 0.15     # ViLBERT's masked-region modelling (Lu et al. 2019)
PREDICTION_SPLITS = ("val", "test")  # the splits a finetuning run writes predictions of


class Stage:
    """What every stage shares; a stage overrides what it does differently."""
    name = ""
    captioning = False              # trains or runs the captioner (arch "captioner"), and only it
    # the kind of dataset it trains on: a pretraining set, a task, or neither (corpus, captioner)
    dataset_kind: str | None = None
    can_freeze = False              # finetuning: the base may be frozen
    reads_generated_text = False    # pretraining: text_from
    splits = ("train", "val")
    masked = False                  # masked objectives: the collator masks; val losses reported
    decodes = False                 # generates captions: the id includes how it decodes
    trains = True                   # captions only decodes
    label_names = ("mlm_labels",)   # what the Trainer's evaluation compares predictions with
    starts_from_nothing = False     # may have no parent nor init to start from (the BERT stage)
    loads_init = True               # its model takes the weights its spec's init names
    reads_regions = True            # its model reads a store's region features
    # Bumped when what this stage writes changes, so its runs made before are not reused (part
    # of its specs' ids from 1; TRAINING_VERSION covers every stage)
    version = 0

    # --- the spec -------------------------------------------------------------------------
    def check(self, spec) -> None:
        """What this stage's specs must satisfy beyond the fields' own checks (a model name
        is checked against the data when the study makes the spec: ``inputs``)."""
        if (spec.arch == "captioner") != self.captioning:
            raise ValueError(f"stage {self.name!r} and arch {spec.arch!r} do not go together: the "
                             "captioner and captions stages, and only they, use arch 'captioner'")
        if spec.frozen_base and not self.can_freeze:
            raise ValueError("only finetuning can freeze the base")
        if spec.text_from is not None and not self.reads_generated_text:
            raise ValueError("only pretraining reads generated text (text_from)")
        if (spec.average_last or spec.base_lr_scale != 1.0) and not self.can_freeze:
            raise ValueError("only finetuning averages checkpoints (average_last) or scales the base's rate "
                             "(base_lr_scale)")

    # --- data -----------------------------------------------------------------------------
    def datasets(self, spec, root: DataRoot, text_dir: Path | None = None) -> dict:
        """The run's splits; ``text_dir``: the generated dataset whose text replaces the
        dataset's (``text_from``). The training split is cut to ``train_fraction``."""
        if text_dir is not None:
            out = {s: root.generated_split(text_dir, s, spec.dataset, spec.max_text_len) for s in self.splits}
        else:
            vocab = (root.answer_vocab(spec.dataset, spec.answer_vocab)
                     if tasks.has_answers(root.info(spec.dataset)) else None)
            out = {s: root.split(spec.dataset, s, spec.max_text_len, answer_vocab=vocab) for s in self.splits}
        out["train"] = _subset(out["train"], spec.train_fraction, spec.seed)
        return out

    def collators(self, spec, root: DataRoot, data: dict) -> dict:
        tok = root.tokenizer
        return {split: self._collator(base_dataset(ds), tok.mask_token_id, len(tok),
                                      spec.mask_probability if self.masked else 0.0,
                                      REGION_MASK_PROBABILITY if self.masked and spec.arch == "vilbert" else 0.0,
                                      seed=spec.seed)
                for split, ds in data.items()}

    _collator = VLCollator

    # --- the model ------------------------------------------------------------------------
    def config(self, spec, root: DataRoot):
        """The model config, sized to the root's vocabulary (and region features)."""
        changes = {"vocab_size": len(root.tokenizer)}
        if self.reads_regions:
            store = root.store(root.info(spec.dataset).store)
            changes.update(feature_dim=store.dim, num_detector_classes=store.num_classes)
        cfg = model_config(spec.model, **changes)
        if spec.max_text_len > cfg.max_positions:
            raise ValueError(f"run {spec.id}: max_text_len {spec.max_text_len} exceeds the model's "
                             f"{cfg.max_positions} positions (config {spec.model!r})")
        return cfg

    def model(self, spec, root: DataRoot) -> nn.Module:
        """The stage's model as its init leaves it, before any weights are loaded."""
        raise NotImplementedError(self.name)

    # --- training and what it reports -----------------------------------------------------
    def scorer(self, spec, root: DataRoot):
        """The Trainer's ``compute_metrics`` (a scored stage keeps its best-scoring checkpoint),
        or None: the lowest validation loss is kept."""
        return None

    def prepare(self, spec, model: nn.Module, data: dict, collators: dict):
        """What the Trainer trains, and on what: ``(module, data, collators, context)``;
        ``context`` is what ``report`` needs of the splits as they were."""
        return model, data, collators, None

    def report(self, spec, root: DataRoot, folder: Path, trainer, model: nn.Module, data: dict,
               collators: dict, context) -> dict:
        """The stage's metrics after training (the best checkpoint loaded), and its outputs."""
        return {}

    def export(self, model: nn.Module, folder: Path) -> None:
        """Files beside the weights (the BERT stage: a BERT-format folder)."""


class BertStage(Stage):
    name, masked, starts_from_nothing, reads_regions, loads_init = "bert", True, True, False, False

    def datasets(self, spec, root: DataRoot, text_dir: Path | None = None) -> dict:
        lines = root.corpus_path.read_text().splitlines()
        n_val = max(1, len(lines) // 20)                   # the last 5 % of the corpus
        return {"train": TextDataset(lines[:-n_val], root.tokenizer, spec.max_text_len),
                "val": TextDataset(lines[-n_val:], root.tokenizer, spec.max_text_len)}

    def model(self, spec, root: DataRoot) -> nn.Module:
        return ForPretraining(TextBert(self.config(spec, root)), region_head=False)

    def report(self, spec, root, folder, trainer, model, data, collators, context) -> dict:
        return pretraining_losses(model, base_dataset(data["val"]), collators["val"])

    def export(self, model: nn.Module, folder: Path) -> None:
        export_bert(model, folder / "bert")


class CaptionerStage(Stage):
    name, captioning, decodes, label_names, loads_init = "captioner", True, True, ("labels",), False
    _collator = captioner.CaptionCollator

    def model(self, spec, root: DataRoot) -> nn.Module:
        return captioner.build_captioner(self.config(spec, root), root.tokenizer)   # no BERT in it

    def report(self, spec, root, folder, trainer, model, data, collators, context) -> dict:
        metrics = {"caption_loss": trainer.evaluate()["eval_loss"]}       # the best checkpoint's
        if trainer.is_world_process_zero():
            metrics.update(captioner.caption_quality(model, root, spec.dataset, "test", spec.max_text_len))
        return metrics


class CaptionsStage(CaptionerStage):
    """Decodes: the trained captioner (the parent run) captions the train and val images of
    ``spec.dataset``; the captions become a pretraining dataset in the run's folder."""
    name, trains = "captions", False

    def check(self, spec) -> None:
        super().check(spec)
        if spec.init != "pretrained" or spec.parent is None:
            raise ValueError("a captions run decodes with a trained captioner: init 'pretrained', "
                             "parent = the captioner run")

    def decode(self, spec, folder: Path, root: DataRoot, captioner_dir: Path, trained) -> dict:
        """``trained``: the captioner's spec (the parent run in ``captioner_dir``)."""
        import shutil

        from safetensors.torch import load_model

        if int(os.environ.get("RANK", "0")) != 0:
            return {}               # under torchrun one process decodes and writes; the others rest
        model = CAPTIONER.model(trained, root)
        store = root.info(spec.dataset).store
        if root.store(store).dim != model.regions[0].in_features - 5:
            raise ValueError(f"captioner {trained.id} reads {model.regions[0].in_features - 5}-d regions; the "
                             f"images of {spec.dataset} (store {store!r}) have {root.store(store).dim}-d features")
        if spec.max_text_len > model.decoder.config.n_positions:
            raise ValueError(f"run {spec.id}: captions of {spec.max_text_len} tokens exceed the captioner's "
                             f"{model.decoder.config.n_positions} positions")
        load_model(model, str(captioner_dir / "model.safetensors"))
        model.to(process_device())
        captions = {}
        for split in captioner.GENERATED_SPLITS:
            images = captioner.unique_images(root.records(spec.dataset, split))
            captions[split] = list(zip(images, captioner.caption_images(model, root, store, images,
                                                                         spec.max_text_len)))
        tmp = folder / f"{captioner.generated_folder(folder).name}.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        summary = captioner.write_generated(tmp, root, spec.dataset, trained.id, captions)
        swap_in_dir(tmp, captioner.generated_folder(folder))        # whole, or not there
        return summary


class PretrainStage(Stage):
    name, masked, dataset_kind, reads_generated_text = "pretrain", True, tasks.PRETRAINING, True

    def model(self, spec, root: DataRoot) -> nn.Module:
        return ForPretraining(build_base(spec.arch, self.config(spec, root)), region_head=spec.arch == "vilbert")

    def report(self, spec, root, folder, trainer, model, data, collators, context) -> dict:
        return pretraining_losses(model, base_dataset(data["val"]), collators["val"])


class FinetuneStage(Stage):
    """A task head on the base, scored on the task (``tasks``): its best checkpoint's
    validation and test metrics, and its per-example predictions of both splits."""
    name, splits, label_names, dataset_kind, can_freeze = "finetune", ("train", "val", "test"), ("targets",), "task", True
    version = 1                     # 1: predictions hold each example's log-likelihood (tasks.Task.log_likelihood)

    def model(self, spec, root: DataRoot) -> nn.Module:
        task = root.info(spec.dataset).task
        return ForClassification(build_base(spec.arch, self.config(spec, root)),
                                 len(classifier_labels(spec, root)), task, pooling=tasks.get(task).pooling(spec.arch))

    def scorer(self, spec, root: DataRoot):
        task = tasks.get(root.info(spec.dataset).task)
        return lambda p: task.score(p.predictions, p.label_ids)

    def prepare(self, spec, model, data, collators):
        """The splits' record ids, targets (and annotators' answers) for the predictions,
        taken before a frozen base swaps the splits for its outputs (same order)."""
        from .frozen_base import HeadOnly, cache_base_outputs, deterministic
        context = {s: {"ids": [r.id for r in base_dataset(data[s]).records], "targets": base_dataset(data[s]).targets,
                       "answers": [r.answers for r in base_dataset(data[s]).records]} for s in PREDICTION_SPLITS}
        if spec.frozen_base and deterministic(model.base.cfg):
            data, collators = cache_base_outputs(model, data, collators)
            return HeadOnly(model), data, collators, context
        return model, data, collators, context

    def report(self, spec, root, folder, trainer, model, data, collators, context) -> dict:
        from .fit import predict
        task, names = tasks.get(root.info(spec.dataset).task), classifier_labels(spec, root)
        metrics, predictions = {}, {}
        for split in PREDICTION_SPLITS:               # the best checkpoint, reloaded
            logits, order = predict(trainer, data[split])
            targets = context[split]["targets"]
            if not np.array_equal(order, targets):
                raise RuntimeError(f"run {spec.id}: the Trainer's {split} predictions are not in the "
                                   f"order of the split's records ({spec.dataset}/{split}.jsonl)")
            metrics.update({f"{split}_{k}": v for k, v in task.score(logits, targets).items()})
            predictions[split] = task.prediction_rows(logits, targets, context[split]["ids"], names)
            if task.answers:                          # the official evaluator's accuracy, per question
                official = task.add_official_accuracy(predictions[split], context[split]["answers"])
                metrics[f"{split}_official_score"] = 100 * float(np.mean(official))
        if trainer.is_world_process_zero():            # before metrics.json marks the run finished
            for split, rows in predictions.items():
                atomic_write_text(predictions_path(folder, split), "".join(json.dumps(r) + "\n" for r in rows))
                if task.answers:
                    atomic_write_text(results_path(folder, split), json.dumps(task.official_results(rows)))
        return metrics


BERT, CAPTIONER, CAPTIONS, PRETRAIN, FINETUNE = (BertStage(), CaptionerStage(), CaptionsStage(),
                                                 PretrainStage(), FinetuneStage())
_BY_NAME = {s.name: s for s in (BERT, CAPTIONER, CAPTIONS, PRETRAIN, FINETUNE)}
assert tuple(_BY_NAME) == STAGES


def get(name: str) -> Stage:
    """The stage object of ``name``; an unknown name is an error."""
    if name not in _BY_NAME:
        raise ValueError(f"unknown stage {name!r}; expected one of {STAGES}")
    return _BY_NAME[name]


# --- helpers the stages share ---------------------------------------------------------------
def _subset(dataset, fraction: float, seed: int):
    if fraction >= 1:
        return dataset
    n = max(1, round(len(dataset) * fraction))
    keep = np.sort(np.random.default_rng(seed).permutation(len(dataset))[:n])
    return torch.utils.data.Subset(dataset, keep.tolist())


def classifier_labels(spec, root: DataRoot) -> list[str]:
    """A finetuning run's classifier outputs, by index: the answer vocabulary of a VQA-like
    task, else the dataset's label names."""
    info = root.info(spec.dataset)
    return (root.answer_vocab(spec.dataset, spec.answer_vocab).answers if tasks.get(info.task).answers
            else info.label_names)


def results_path(folder: Path, split: str) -> Path:
    """A VQA-like run's official results file of ``split`` (``results-test.json``)."""
    return Path(folder) / f"results-{split}.json"


def predictions_path(folder: Path, split: str) -> Path:
    if split not in PREDICTION_SPLITS:
        raise ValueError(f"runs keep predictions of the splits {PREDICTION_SPLITS}, not {split!r}")
    return Path(folder) / f"predictions-{split}.jsonl"


@torch.no_grad()
def pretraining_losses(model: nn.Module, dataset, collator, batch_size: int = EVAL_BATCH_SIZE) -> dict[str, float]:
    """Mean MLM (and masked-region) loss over a split, weighted by masked tokens / regions."""
    model.eval()
    sums = {"mlm_loss": 0.0, "region_loss": 0.0}
    counts = {"mlm_loss": 0, "region_loss": 0}
    for start in range(0, len(dataset), batch_size):
        batch = collator(list(range(start, min(start + batch_size, len(dataset)))))
        out = model(**batch)
        n_tok = int((batch["mlm_labels"] != -100).sum())
        sums["mlm_loss"] += float(out["mlm_loss"]) * n_tok
        counts["mlm_loss"] += n_tok
        if "region_loss" in out:
            n_reg = int(batch["masked_regions"].sum())
            sums["region_loss"] += float(out["region_loss"]) * n_reg
            counts["region_loss"] += n_reg
    return {k: sums[k] / counts[k] for k in sums if counts[k]}

"""Pretraining and finetuning on ``transformers.Trainer``: a run is a function of its spec.

Four stages share one loop: ``bert`` (text-only MLM on the world's corpus, the stand-in
for bert-base-uncased), ``captioner`` (the captioning model behind CCG, ``captioner.py``),
``pretrain`` (MLM for VisualBERT, MLM + masked-region KL for ViLBERT; on a dataset's own
text, or on captions a ``captions`` run generated for its images) and ``finetune`` (a task
head, whole model or frozen base). ``captions`` trains nothing: it decodes. AdamW with ε 1e-8,
linear warmup then cosine decay, evaluation every ``eval_every`` updates on the validation
split, the best checkpoint kept and, for finetuning, its score on the test split and its
per-example predictions on the validation and test splits (``predictions-<split>.jsonl``).
A run computes with the torch threads its spec names, whatever its process had.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import tasks
from .data.batching import TextDataset, VLCollator
from .data.root import DataRoot
from .models import ForClassification, ForPretraining, build_base, model_config
from .models.heads import BASE_INPUTS, task_output
from .models.init import load_bert
from .models.text_bert import TextBert, export_bert
from .paths import content_digest

STAGES = ("bert", "captioner", "captions", "pretrain", "finetune")     # the order runs depend on
# Bump when training code changes what a spec produces: runs are cached by spec.
# 4: fused AdamW; frozen-base heads on cached base outputs. 5: finetuning writes per-example
# predictions (runs without them must not be reused); the spec names its torch threads;
# VQA-like scores are float64 means of the per-example scores the predictions hold.
TRAINING_VERSION = 5
INITS = ("bert", "random", "pretrained", "mmf")   # mmf: a released MMF checkpoint (start_from)
REGION_MASK_PROBABILITY = 0.15     # ViLBERT's masked-region modelling (Lu et al. 2019)
PREDICTION_SPLITS = ("val", "test")  # the splits a finetuning run writes predictions of
PRECISIONS = ("fp32", "bf16", "fp16")
# Spec fields added after TRAINING_VERSION 5: in the id only when set away from these defaults,
# which compute what the runs before them computed
ADDED_SINCE_VERSION = {"precision": "fp32", "answer_vocab": None}
NOT_IN_ID = ("loader_workers",)     # how a run is fed, not what it computes


@dataclass(frozen=True)
class RunSpec:
    stage: str                     # one of STAGES
    arch: str                      # "bert" (BERT stage), "visual_bert", "vilbert" or "captioner"
    dataset: str                   # "corpus" for the BERT stage; else a dataset of the world
                                   # (for "captions": the dataset whose images are captioned)
    world: str = "small"           # world preset, or a prepared data root's path (data.root.open_data)
    world_seed: int | None = None  # a preset's world at this seed (None: the preset's own, 0)
    model: str = "small"           # model config preset
    init: str = "bert"             # "bert" (parent = BERT stage), "pretrained" (parent = pretrain run), "random"
    parent: str | None = None      # run id this one starts from
    train_fraction: float = 1.0    # share of the training split used (size sweeps)
    steps: int = 500
    batch_size: int = 64
    lr: float = 5e-5
    warmup: int = 50
    eval_every: int = 100
    beta2: float = 0.999           # 0.98 for pretraining, 0.999 for finetuning (§2.5)
    weight_decay: float = 0.01
    max_text_len: int = 32
    mask_probability: float = 0.15  # share of text tokens MLM predicts (pretraining stages)
    frozen_base: bool = False      # only the task head learns
    max_grad_norm: float = 1.0     # gradient clipping; 0: none (the paper's Table A.1)
    # Where a run with no parent run starts: a BERT folder (init "bert", instead of the BERT
    # stage) or an MMF checkpoint file (init "mmf": the paper's released weights)
    start_from: str | None = None
    # Pretraining on generated text: the "captions" run whose captions of this dataset's
    # images replace its own text (CCG: CC's images, COCO-like captions)
    text_from: str | None = None
    seed: int = 0
    # torch intra-op threads the run computes with on the CPU, set while it trains and restored
    # after. Part of the spec (and its id) because the thread count changes the order of float
    # reductions: one pretraining spec gave MLM losses 0.6119052 in the study's 1-thread worker,
    # 0.6119041 alone with 2 threads, 0.6119021 alone with 1 thread.
    threads: int = 1
    # Numbers the run computes in: fp32, or bf16 / fp16 mixed precision (the Trainer's autocast;
    # the losses compute in fp32, TF32 matmuls are allowed on CUDA). The CPU stays fp32: bf16
    # autocast makes the small models' steps slower there (README, "Paper scale").
    precision: str = "fp32"
    # Answers a VQA-like task's classifier covers, the most frequent training answers; None: the
    # task's usual size (data.answers.ANSWER_VOCAB_SIZES: VQA 2.0 3,129, VizWiz 7,370 as MMF's)
    answer_vocab: int | None = None
    # DataLoader worker processes: how batches are loaded, not what they hold (the collators'
    # masks are a function of the batch's indices), so not part of the run's id
    loader_workers: int = 0

    def __post_init__(self):
        if self.stage not in STAGES:
            raise ValueError(f"unknown stage {self.stage!r}; expected one of {STAGES}")
        if self.init not in INITS:
            raise ValueError(f"unknown init {self.init!r}; expected one of {INITS}")
        if self.start_from is not None and (self.init not in ("bert", "mmf") or self.parent is not None):
            raise ValueError("start_from is where init 'bert' or 'mmf' starts when there is no parent run")
        if self.init == "mmf" and self.start_from is None:
            raise ValueError("init 'mmf' needs start_from: the MMF checkpoint file")
        has_start = self.parent is not None or self.start_from is not None
        if (self.init == "random") == has_start and self.stage != "bert":
            raise ValueError(f"init {self.init!r} {'takes no' if has_start else 'needs a'} parent run"
                             + (" (or start_from)" if self.init == "bert" else ""))
        if not 0 < self.train_fraction <= 1:
            raise ValueError(f"train_fraction must be in (0, 1], got {self.train_fraction}")
        if not 0 < self.mask_probability < 1:
            raise ValueError(f"mask_probability must be in (0, 1), got {self.mask_probability}")
        if self.frozen_base and self.stage != "finetune":
            raise ValueError("only finetuning can freeze the base")
        if self.text_from is not None and self.stage != "pretrain":
            raise ValueError("only pretraining reads generated text (text_from)")
        if (self.arch == "captioner") != (self.stage in ("captioner", "captions")):
            raise ValueError(f"stage {self.stage!r} and arch {self.arch!r} do not go together: the "
                             "captioner and captions stages, and only they, use arch 'captioner'")
        if self.stage == "captions" and (self.init != "pretrained" or self.parent is None):
            raise ValueError("a captions run decodes with a trained captioner: init 'pretrained', "
                             "parent = the captioner run")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.answer_vocab is not None and (isinstance(self.answer_vocab, bool) or not isinstance(
                self.answer_vocab, int) or self.answer_vocab < 1):
            raise ValueError(f"answer_vocab must be a positive number of answers or None, got {self.answer_vocab!r}")
        if isinstance(self.loader_workers, bool) or not isinstance(self.loader_workers, int) or self.loader_workers < 0:
            raise ValueError(f"loader_workers must be an integer >= 0, got {self.loader_workers!r}")
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1:
            raise ValueError(f"threads (torch intra-op threads) must be an integer >= 1, got {self.threads!r}")

    @property
    def needs(self) -> tuple[str, ...]:
        """Runs that must finish first: the one it starts from, the one its text comes from."""
        return tuple(r for r in (self.parent, self.text_from) if r is not None)

    @property
    def id(self) -> str:
        """Content address: the spec, and what its world, model and ``start_from`` names
        resolve to today (a BERT folder replaced in place gives new runs, not stale ones)."""
        from .data.root import data_digest
        fields = dataclasses.asdict(self)
        for name in NOT_IN_ID:
            del fields[name]
        for name, default in ADDED_SINCE_VERSION.items():   # runs made before they existed stay valid
            if fields[name] == default:
                del fields[name]
        resolved = [fields, dataclasses.asdict(model_config(self.model)),
                    data_digest(self.world, self.dataset, self.world_seed), TRAINING_VERSION]
        if self.stage in ("captioner", "captions"):         # how captions are decoded (and scored)
            from .captioner import DECODING
            resolved.append(DECODING)
        if self.start_from is not None:                     # the BERT folder / checkpoint's content
            resolved.append(content_digest(self.start_from))
        blob = json.dumps(resolved, sort_keys=True).encode()
        return f"{self.stage}-{self.arch}-{self.dataset}-{hashlib.sha256(blob).hexdigest()[:12]}"

    def data(self) -> DataRoot:
        """The data root the run reads (its world, at its world seed)."""
        from .data.root import open_data
        return open_data(self.world, self.world_seed)

    def replace(self, **changes) -> "RunSpec":
        return dataclasses.replace(self, **changes)


# --- data ---------------------------------------------------------------------------------
def _subset(dataset, fraction: float, seed: int):
    if fraction >= 1:
        return dataset
    n = max(1, round(len(dataset) * fraction))
    keep = np.sort(np.random.default_rng(seed).permutation(len(dataset))[:n])
    return torch.utils.data.Subset(dataset, keep.tolist())


def datasets_for(spec: RunSpec, root: DataRoot, text_dir: Path | None = None) -> dict[str, torch.utils.data.Dataset]:
    """The run's splits; ``text_dir``: the generated dataset that replaces the text (text_from)."""
    if spec.stage == "bert":
        lines = root.corpus_path.read_text().splitlines()
        n_val = max(1, len(lines) // 20)
        return {"train": TextDataset(lines[:-n_val], root.tokenizer, spec.max_text_len),
                "val": TextDataset(lines[-n_val:], root.tokenizer, spec.max_text_len)}
    splits = ("train", "val", "test") if spec.stage == "finetune" else ("train", "val")
    if text_dir is not None:
        out = {s: root.generated_split(text_dir, s, spec.dataset, spec.max_text_len) for s in splits}
    else:
        vocab = (root.answer_vocab(spec.dataset, spec.answer_vocab)
                 if tasks.has_answers(root.info(spec.dataset)) else None)
        out = {s: root.split(spec.dataset, s, spec.max_text_len, answer_vocab=vocab) for s in splits}
    out["train"] = _subset(out["train"], spec.train_fraction, spec.seed)
    return out


def _base_dataset(ds):
    return ds.dataset if isinstance(ds, torch.utils.data.Subset) else ds


# --- models -------------------------------------------------------------------------------
def _config(spec: RunSpec, root: DataRoot):
    changes = {"vocab_size": len(root.tokenizer)}
    if spec.stage != "bert":
        store = root.store(root.info(spec.dataset).store)
        changes.update(feature_dim=store.dim, num_detector_classes=store.num_classes)
    return model_config(spec.model, **changes)


def num_labels(spec: RunSpec, root: DataRoot) -> int:
    return len(classifier_labels(spec, root))


def classifier_labels(spec: RunSpec, root: DataRoot) -> list[str]:
    """A finetuning run's classifier outputs, by index: the answer vocabulary of a VQA-like
    task, else the dataset's label names."""
    info = root.info(spec.dataset)
    return (root.answer_vocab(spec.dataset, spec.answer_vocab).answers if tasks.get(info.task).answers
            else info.label_names)


def build_model(spec: RunSpec, root: DataRoot, parent_dir: Path | None) -> nn.Module:
    cfg = _config(spec, root)
    if spec.max_text_len > cfg.max_positions:
        raise ValueError(f"run {spec.id}: max_text_len {spec.max_text_len} exceeds the model's "
                         f"{cfg.max_positions} positions (config {spec.model!r})")
    if spec.stage == "bert":
        return ForPretraining(TextBert(cfg), region_head=False)
    if spec.stage == "captioner":
        from .captioner import build_captioner
        return build_captioner(cfg, root.tokenizer)        # init "random": no BERT in it
    if spec.stage == "pretrain":
        model = ForPretraining(build_base(spec.arch, cfg), region_head=spec.arch == "vilbert")
    else:
        task = root.info(spec.dataset).task
        model = ForClassification(build_base(spec.arch, cfg), num_labels(spec, root), task,
                                  pooling=tasks.get(task).pooling(spec.arch))
    if spec.init == "bert":
        load_bert(model, Path(spec.start_from) if spec.start_from else parent_dir / "bert")
    elif spec.init == "mmf":
        from .models.mmf_checkpoint import load_mmf_checkpoint
        load_mmf_checkpoint(model, Path(spec.start_from),
                            trust_pickle=os.environ.get("VLSTUDY_TRUST_PICKLE") == "1")
    elif spec.init == "pretrained":
        load_base_weights(model, parent_dir / "model.safetensors")
    if spec.frozen_base:
        model.base.requires_grad_(False)
    return model


def load_base_weights(model: nn.Module, path: Path) -> None:
    """The base (``base.*``) of a finished run's weights into ``model.base``; heads stay new."""
    from safetensors.torch import load_file
    state = {k[len("base."):]: v for k, v in load_file(str(path)).items() if k.startswith("base.")}
    missing, unexpected = model.base.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"weights at {path} do not fit the model: missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]}")


# --- results ------------------------------------------------------------------------------
def results_path(folder: Path, split: str) -> Path:
    """A VQA-like run's official results file of ``split`` (``results-test.json``)."""
    return Path(folder) / f"results-{split}.json"


def predictions_path(folder: Path, split: str) -> Path:
    if split not in PREDICTION_SPLITS:
        raise ValueError(f"runs keep predictions of the splits {PREDICTION_SPLITS}, not {split!r}")
    return Path(folder) / f"predictions-{split}.jsonl"


@torch.no_grad()
def pretraining_losses(model: nn.Module, dataset, collator, batch_size: int = 256) -> dict[str, float]:
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


# --- the loop -----------------------------------------------------------------------------
@contextlib.contextmanager
def torch_threads(n: int):
    """torch computes with ``n`` intra-op threads inside the block, and with as many as before
    after it (also on an error): a run's numbers must not depend on its process."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_run(spec: RunSpec, folder: Path, root: DataRoot, parent_dir: Path | None,
              progress: bool = False, text_dir: Path | None = None) -> dict:
    """Train ``spec`` in ``folder`` (resuming from its last checkpoint) and return its metrics;
    a finetuning run also writes its predictions (``predictions_path``). ``text_dir``: the
    generated dataset a pretraining reads instead of its own text."""
    with torch_threads(spec.threads):
        return _train_run(spec, folder, root, parent_dir, progress, text_dir)


def _train_run(spec: RunSpec, folder: Path, root: DataRoot, parent_dir: Path | None,
               progress: bool, text_dir: Path | None) -> dict:
    from transformers import set_seed

    set_seed(spec.seed)
    if spec.stage == "captions":
        return caption_run(spec, folder, root, parent_dir)
    data = datasets_for(spec, root, text_dir)
    model = build_model(spec, root, parent_dir)
    tok = root.tokenizer
    masked = spec.stage in ("bert", "pretrain")              # masked objectives
    if spec.stage == "captioner":
        from .captioner import CaptionCollator as Collator
    else:
        Collator = VLCollator
    collators = {split: Collator(_base_dataset(ds), tok.mask_token_id, len(tok),
                                 spec.mask_probability if masked else 0.0,
                                 REGION_MASK_PROBABILITY if masked and spec.arch == "vilbert" else 0.0,
                                 seed=spec.seed)
                 for split, ds in data.items()}

    finetuning = spec.stage == "finetune"                   # a task head, scored; else a loss
    task = tasks.get(root.info(spec.dataset).task) if finetuning else None
    # What predictions are written against, before a frozen base swaps the splits for their
    # base outputs (same order): the record ids and targets of each scored split.
    examples = {s: ([r.id for r in _base_dataset(data[s]).records], _base_dataset(data[s]).targets)
                for s in PREDICTION_SPLITS} if finetuning else {}
    answers = {s: [r.answers for r in _base_dataset(data[s]).records]
               for s in PREDICTION_SPLITS} if finetuning and task.answers else {}
    trained = model
    if spec.frozen_base and _deterministic(model.base.cfg):
        data, collators = cache_base_outputs(model, data, collators)
        trained = HeadOnly(model)
    trainer = _fit(spec, folder, trained, data, collators, progress,
                   label_names={"finetune": ["targets"], "captioner": ["labels"]}.get(spec.stage, ["mlm_labels"]),
                   compute_metrics=(lambda p: task.score(p.predictions, p.label_ids)) if finetuning else None)
    state = trainer.state
    metrics = {"best_step": _best_step(state), "train_seconds": round(sum(
        h.get("train_runtime", 0) for h in state.log_history), 1)}
    if masked:
        metrics.update(pretraining_losses(model, _base_dataset(data["val"]), collators["val"]))
    elif spec.stage == "captioner":
        from .captioner import caption_quality
        metrics["caption_loss"] = trainer.evaluate()["eval_loss"]      # the best checkpoint's
        if trainer.is_world_process_zero():
            metrics.update(caption_quality(model, root, spec.dataset, "test", spec.max_text_len))
    else:
        names = classifier_labels(spec, root)
        predictions = {}
        for split in PREDICTION_SPLITS:               # the best checkpoint, reloaded
            out = trainer.predict(_IndexDataset(data[split]))
            ids, targets = examples[split]
            if not np.array_equal(out.label_ids, targets):
                raise RuntimeError(f"run {spec.id}: the Trainer's {split} predictions are not in the "
                                   f"order of the split's records ({spec.dataset}/{split}.jsonl)")
            metrics.update({f"{split}_{k}": v for k, v in task.score(out.predictions, targets).items()})
            predictions[split] = task.prediction_rows(out.predictions, targets, ids, names)
            if split in answers:                        # the official evaluator's accuracy, per question
                official = task.add_official_accuracy(predictions[split], answers[split])
                metrics[f"{split}_official_score"] = 100 * float(np.mean(official))
        if trainer.is_world_process_zero():            # before metrics.json marks the run finished
            from .paths import atomic_write_text
            for split, rows in predictions.items():
                atomic_write_text(predictions_path(folder, split), "".join(json.dumps(r) + "\n" for r in rows))
                if split in answers:
                    atomic_write_text(results_path(folder, split), json.dumps(task.official_results(rows)))
    if trainer.is_world_process_zero():
        _save_weights(model, folder / "model.safetensors")
        if spec.stage == "bert":
            export_bert(model, folder / "bert")
    return metrics


def _fit(spec: RunSpec, folder: Path, model: nn.Module, data: dict, collators: dict, progress: bool,
         label_names: list[str], compute_metrics=None):
    """The Trainer of every stage, trained (resumed from the last checkpoint if any) with its
    best checkpoint loaded: the lowest validation loss, or the best score when there are
    ``compute_metrics``."""
    from transformers import PrinterCallback, Trainer, TrainingArguments
    scored = compute_metrics is not None
    world_size = int(os.environ.get("WORLD_SIZE", "1"))     # > 1 under torchrun (DDP)
    if spec.batch_size % world_size:
        raise ValueError(f"batch size {spec.batch_size} does not split over {world_size} processes")
    cuda = torch.cuda.is_available()
    if spec.precision == "fp16" and not cuda:
        raise ValueError(f"run {spec.id}: fp16 mixed precision needs a GPU; on the CPU use fp32 (or bf16)")
    if cuda and spec.precision != "fp32":           # the matmuls autocast leaves in fp32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    args = TrainingArguments(
        output_dir=str(folder / "trainer"), max_steps=spec.steps,
        per_device_train_batch_size=spec.batch_size // world_size,
        ddp_backend="gloo" if world_size > 1 and not torch.cuda.is_available() else None,
        per_device_eval_batch_size=256, learning_rate=spec.lr, warmup_steps=spec.warmup,
        lr_scheduler_type="cosine", adam_beta1=0.9, adam_beta2=spec.beta2, adam_epsilon=1e-8,
        weight_decay=spec.weight_decay, eval_strategy="steps", eval_steps=spec.eval_every,
        save_strategy="steps", save_steps=spec.eval_every, save_total_limit=2, load_best_model_at_end=True,
        metric_for_best_model="score" if scored else "loss", greater_is_better=scored,
        prediction_loss_only=not scored, label_names=label_names,
        logging_steps=max(1, spec.eval_every // 2), report_to=["tensorboard"], seed=spec.seed,
        data_seed=spec.seed, max_grad_norm=spec.max_grad_norm, remove_unused_columns=False,
        bf16=spec.precision == "bf16", fp16=spec.precision == "fp16",
        dataloader_num_workers=spec.loader_workers, dataloader_persistent_workers=spec.loader_workers > 0,
        dataloader_pin_memory=cuda, use_cpu=not cuda,
        disable_tqdm=not progress, save_only_model=False, optim=_optimizer_name())
    trainer = Trainer(model=model, args=args, train_dataset=_IndexDataset(data["train"]),
                      eval_dataset=_IndexDataset(data["val"]),
                      data_collator=_SplitCollator(*collators.values()), compute_metrics=compute_metrics)
    if not progress:
        trainer.remove_callback(PrinterCallback)
    last = last_checkpoint(folder / "trainer")
    trainer.train(resume_from_checkpoint=str(last) if last else None)
    return trainer


def caption_run(spec: RunSpec, folder: Path, root: DataRoot, captioner_dir: Path) -> dict:
    """A ``captions`` run: the captioner in ``captioner_dir`` captions the train and val images
    of ``spec.dataset``; the captions become a pretraining dataset in ``folder``."""
    import shutil

    from safetensors.torch import load_model

    from .captioner import GENERATED_SPLITS, caption_images, generated_folder, unique_images, write_generated
    from .paths import swap_in_dir
    if int(os.environ.get("RANK", "0")) != 0:
        return {}                   # under torchrun one process decodes and writes; the others rest
    captioner = RunSpec(**json.loads((captioner_dir / "spec.json").read_text()))
    model = build_model(captioner, root, None)
    store = root.info(spec.dataset).store
    if root.store(store).dim != model.regions[0].in_features - 5:
        raise ValueError(f"captioner {captioner.id} reads {model.regions[0].in_features - 5}-d regions; the "
                         f"images of {spec.dataset} (store {store!r}) have {root.store(store).dim}-d features")
    if spec.max_text_len > model.decoder.config.n_positions:
        raise ValueError(f"run {spec.id}: captions of {spec.max_text_len} tokens exceed the captioner's "
                         f"{model.decoder.config.n_positions} positions")
    load_model(model, str(captioner_dir / "model.safetensors"))
    if torch.cuda.is_available():
        model.to(torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))))
    captions = {}
    for split in GENERATED_SPLITS:
        images = unique_images(root.records(spec.dataset, split))
        captions[split] = list(zip(images, caption_images(model, root, store, images, spec.max_text_len)))
    tmp = folder / f"{generated_folder(folder).name}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    summary = write_generated(tmp, root, spec.dataset, captioner.id, captions)
    swap_in_dir(tmp, generated_folder(folder))        # whole, or not there
    return summary


def _optimizer_name() -> str:
    """Fused AdamW where torch has it for the device (CPU from torch 2.4): on the small models
    the per-tensor update loop is ~15 % of a step; fused, ~3 %."""
    if torch.cuda.is_available() or tuple(int(x) for x in torch.__version__.split(".")[:2]) >= (2, 4):
        return "adamw_torch_fused"
    return "adamw_torch"


# --- frozen base: train the head on base outputs computed once ------------------------------
def _deterministic(cfg) -> bool:
    """A base without dropout gives the same output for an example at every update, so a
    frozen one need run once per example. (With dropout, MMF's frozen base still draws masks
    in train mode; we then run it at every update, as MMF does.)"""
    return cfg.dropout == 0 and cfg.attention_dropout == 0


class PooledSplit(torch.utils.data.Dataset):
    """A split as the frozen base sees it: the classifier's inputs and the targets.

    Items are positions, like the other splits; ``PooledCollator`` stacks them into batches.
    """

    def __init__(self, pooled: torch.Tensor, targets: torch.Tensor):
        self.pooled, self.targets = pooled, targets           # (N, width), (N, ...)

    def __len__(self):
        return len(self.pooled)

    def __getitem__(self, i):
        return i


class PooledCollator:
    def __init__(self, dataset: PooledSplit):
        self.dataset = dataset

    def __call__(self, positions: list[int]) -> dict:
        return {"pooled": self.dataset.pooled[positions], "targets": self.dataset.targets[positions]}


class HeadOnly(nn.Module):
    """A ``ForClassification``'s head alone (the same module: training this trains the model's
    head), fed by ``PooledCollator``; its state dict has the model's ``classifier.*`` keys."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.classifier, self.task = model.classifier, model.task

    def forward(self, pooled, targets=None, **_) -> dict:
        return task_output(self.classifier(pooled), self.task, targets)


@torch.no_grad()
def cache_base_outputs(model: nn.Module, data: dict, collators: dict, batch_size: int = 256):
    """Each split's base outputs, one pass in eval mode on the device training will use
    (this process's GPU under torchrun): ``(PooledSplit``s, their collators)``."""
    device = (torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if torch.cuda.is_available()
              else torch.device("cpu"))
    model.to(device).eval()
    pooled_data, pooled_collators = {}, {}
    for split, ds in data.items():
        order = [int(ds[i]) for i in range(len(ds))]          # positions → the split's indices
        pooled, targets = [], []
        for start in range(0, len(order), batch_size):
            batch = collators[split](order[start:start + batch_size])
            inputs = {k: batch[k].to(device) for k in BASE_INPUTS}
            pooled.append(model.pool(**inputs).cpu())         # (b, width)
            targets.append(batch["targets"])
        pooled_data[split] = PooledSplit(torch.cat(pooled), torch.cat(targets))
        pooled_collators[split] = PooledCollator(pooled_data[split])
    model.train()
    return pooled_data, pooled_collators


def last_checkpoint(trainer_dir: Path) -> Path | None:
    """The Trainer's latest checkpoint folder (by step, not by name: 100 comes after 90)."""
    found = sorted(Path(trainer_dir).glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    return found[-1] if found else None


class _IndexDataset(torch.utils.data.Dataset):
    """Hands the Trainer plain indices; ``_SplitCollator`` turns them into batches."""

    def __init__(self, ds):
        self.ds = ds
        self.split_tag = id(_base_dataset(ds))

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        return (self.split_tag, int(self.ds[i]))


class _SplitCollator:
    """Routes each batch to its split's collator (the Trainer has one collator for all)."""

    def __init__(self, *collators: VLCollator):
        self.by_split = {id(c.dataset): c for c in collators}

    def __call__(self, items):
        tags = {t for t, _ in items}
        if len(tags) != 1:
            raise RuntimeError("a batch mixes examples of different splits")
        return self.by_split[tags.pop()]([i for _, i in items])


def _best_step(state) -> int | None:
    ckpt = state.best_model_checkpoint
    return int(ckpt.rsplit("-", 1)[1]) if ckpt else None


def _save_weights(model: nn.Module, path: Path) -> None:
    from safetensors.torch import save_file
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    tmp.replace(path)

"""A run's spec: what it trains, on what, from where, and how; its id is its content address.

Runs are cached by id (``registry``): two specs that compute the same thing must have the
same id, and a change in what a spec computes (its world, its model config, the BERT folder
it starts from, the training code's version) must change it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from . import stages
from .data.root import DataRoot
from .models import model_config
from .paths import atomic_write_text, content_digest
from .roots import data_digest, open_data

# Bump when training code changes what a spec produces: runs are cached by spec.
# 4: fused AdamW; frozen-base heads on cached base outputs. 5: finetuning writes per-example
# predictions (runs without them must not be reused); the spec names its torch threads;
# VQA-like scores are float64 means of the per-example scores the predictions hold.
TRAINING_VERSION = 5
INITS = ("bert", "random", "pretrained", "mmf")   # mmf: a released MMF checkpoint (start_from)
PRECISIONS = ("fp32", "bf16", "fp16")
# Spec fields added after TRAINING_VERSION 5: in the id only when set away from these defaults,
# which compute what the runs before them computed
ADDED_SINCE_VERSION = {"precision": "fp32", "answer_vocab": None, "average_last": 0, "base_lr_scale": 1.0,
                       "head_from": None}
NOT_IN_ID = ("loader_workers",)     # how a run is fed, not what it computes
SPEC_FILE = "spec.json"


@dataclass(frozen=True)
class RunSpec:
    stage: str                     # one of stages.STAGES
    arch: str                      # "bert" (BERT stage), "visual_bert", "vilbert" or "captioner"
    dataset: str                   # "corpus" for the BERT stage; else a dataset of the world
                                   # (for "captions": the dataset whose images are captioned)
    world: str = "small"           # world preset, or a prepared data root's path (roots.open_data)
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
    # autocast makes the small models' steps slower there (docs/paper-scale.md).
    precision: str = "fp32"
    # Answers a VQA-like task's classifier covers, the most frequent training answers; None: the
    # task's usual size (data.answers.ANSWER_VOCAB_SIZES: VQA 2.0 3,129, VizWiz 7,370 as MMF's)
    answer_vocab: int | None = None
    # DataLoader worker processes: how batches are loaded, not what they hold (the collators'
    # masks are a function of the batch's indices), so not part of the run's id
    loader_workers: int = 0
    # Finetuning only. 0: the best of the validation checkpoints is kept (every eval_every
    # updates). k >= 1: the weights are the uniform mean of the last k checkpoints (every
    # eval_every updates; LAWA, Kaddour 2022), scored once at the end, no validation selection
    average_last: int = 0
    # Finetuning only: the base's rate as a share of ``lr`` (the freshly initialised head keeps lr)
    base_lr_scale: float = 1.0
    # Whole-model finetuning only: the frozen-base run (same task, same start) whose trained head
    # this run's head starts from instead of its random init (LP-FT, Kumar et al. 2022)
    head_from: str | None = None

    def __post_init__(self):
        stage = stages.get(self.stage)               # an unknown stage is an error
        if self.init not in INITS:
            raise ValueError(f"unknown init {self.init!r}; expected one of {INITS}")
        if self.start_from is not None and (self.init not in ("bert", "mmf") or self.parent is not None):
            raise ValueError("start_from is where init 'bert' or 'mmf' starts when there is no parent run")
        if self.init == "mmf" and self.start_from is None:
            raise ValueError("init 'mmf' needs start_from: the MMF checkpoint file")
        has_start = self.parent is not None or self.start_from is not None
        if (self.init == "random") == has_start and not stage.starts_from_nothing:
            raise ValueError(f"init {self.init!r} {'takes no' if has_start else 'needs a'} parent run"
                             + (" (or start_from)" if self.init == "bert" else ""))
        if not 0 < self.train_fraction <= 1:
            raise ValueError(f"train_fraction must be in (0, 1], got {self.train_fraction}")
        if not 0 < self.mask_probability < 1:
            raise ValueError(f"mask_probability must be in (0, 1), got {self.mask_probability}")
        stage.check(self)
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.answer_vocab is not None and (isinstance(self.answer_vocab, bool) or not isinstance(
                self.answer_vocab, int) or self.answer_vocab < 1):
            raise ValueError(f"answer_vocab must be a positive number of answers or None, got {self.answer_vocab!r}")
        if isinstance(self.loader_workers, bool) or not isinstance(self.loader_workers, int) or self.loader_workers < 0:
            raise ValueError(f"loader_workers must be an integer >= 0, got {self.loader_workers!r}")
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1:
            raise ValueError(f"threads (torch intra-op threads) must be an integer >= 1, got {self.threads!r}")
        if isinstance(self.average_last, bool) or not isinstance(self.average_last, int) or self.average_last < 0:
            raise ValueError(f"average_last must be an integer >= 0 (0: the best validation checkpoint), "
                             f"got {self.average_last!r}")
        if self.average_last * self.eval_every > self.steps:
            raise ValueError(f"average_last {self.average_last} checkpoints every {self.eval_every} updates "
                             f"need more than the run's {self.steps} updates")
        if self.average_last and self.steps % self.eval_every:
            raise ValueError(f"average_last needs checkpoints evenly spaced: {self.steps} updates are not a "
                             f"multiple of eval_every {self.eval_every} (the Trainer also saves at the last update)")
        if not 0 < self.base_lr_scale <= 1:
            raise ValueError(f"base_lr_scale must be in (0, 1], got {self.base_lr_scale!r}")
        if self.head_from is not None and (self.stage != "finetune" or self.frozen_base):
            raise ValueError("head_from (a frozen-base run's head to start from) is for whole-model "
                             f"finetuning runs, not a {'frozen-base ' if self.frozen_base else ''}{self.stage} run")

    @property
    def needs(self) -> tuple[str, ...]:
        """Runs that must finish first: the one it starts from, the one its text comes from, the
        one its head starts from."""
        return tuple(r for r in (self.parent, self.text_from, self.head_from) if r is not None)

    @property
    def id(self) -> str:
        """Content address: the spec, and what its world, model and ``start_from`` names
        resolve to today (a BERT folder replaced in place gives new runs, not stale ones)."""
        fields = dataclasses.asdict(self)
        for name in NOT_IN_ID:
            del fields[name]
        for name, default in ADDED_SINCE_VERSION.items():   # runs made before they existed stay valid
            if fields[name] == default:
                del fields[name]
        resolved = [fields, dataclasses.asdict(model_config(self.model)),
                    data_digest(self.world, self.dataset, self.world_seed), TRAINING_VERSION]
        if stages.get(self.stage).version:                  # what this stage writes has changed
            resolved.append({"stage_version": stages.get(self.stage).version})
        if stages.get(self.stage).decodes:                  # how captions are decoded (and scored)
            from .captioner import DECODING
            resolved.append(DECODING)
        if self.start_from is not None:                     # the BERT folder / checkpoint's content
            resolved.append(content_digest(self.start_from))
        blob = json.dumps(resolved, sort_keys=True).encode()
        return f"{self.stage}-{self.arch}-{self.dataset}-{hashlib.sha256(blob).hexdigest()[:12]}"

    def data(self) -> DataRoot:
        """The data root the run reads (its world, at its world seed)."""
        return open_data(self.world, self.world_seed)

    def replace(self, **changes) -> "RunSpec":
        return dataclasses.replace(self, **changes)

    def write(self, folder: Path) -> None:
        """``spec.json`` in a run's folder: written first, so an unfinished run says what it is."""
        atomic_write_text(Path(folder) / SPEC_FILE, json.dumps(self.__dict__, indent=1))

    @classmethod
    def read(cls, folder: Path) -> "RunSpec":
        return cls(**json.loads((Path(folder) / SPEC_FILE).read_text()))

"""The one training loop of every stage: ``transformers.Trainer`` as the runs use it.

AdamW (fused where torch has it) with ε 1e-8, linear warmup then cosine decay, evaluation
every ``eval_every`` updates on the validation split, the best checkpoint kept (lowest loss,
or best score for a scored stage) and loaded at the end; resumed from the last checkpoint
after an interruption. A run computes with the torch threads its spec names. A finetuning
spec may instead average its last checkpoints' weights (``average_last``: no evaluation and
no selection during training) and give the base a lower rate than the head
(``base_lr_scale``).
"""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .data.batching import VLCollator, base_dataset
from .device import EVAL_BATCH_SIZE


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


def fit(spec, folder: Path, model: nn.Module, data: dict, collators: dict, progress: bool,
         label_names, compute_metrics=None):
    """The Trainer of every stage, trained (resumed from the last checkpoint if any) with its
    best checkpoint loaded: the lowest validation loss, or the best score when there are
    ``compute_metrics``."""
    from transformers import PrinterCallback, TrainingArguments
    scored = compute_metrics is not None
    averaged = spec.average_last > 0         # the mean of the last checkpoints, no best one
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
        ddp_backend="gloo" if world_size > 1 and not cuda else None,
        per_device_eval_batch_size=EVAL_BATCH_SIZE, learning_rate=spec.lr, warmup_steps=spec.warmup,
        lr_scheduler_type="cosine", adam_beta1=0.9, adam_beta2=spec.beta2, adam_epsilon=1e-8,
        weight_decay=spec.weight_decay, eval_strategy="no" if averaged else "steps", eval_steps=spec.eval_every,
        # checkpoints are kept by _keep_checkpoints, by step: the Trainer's own rotation orders them
        # by mtime and warns when a fast run writes two within a second
        save_strategy="steps", save_steps=spec.eval_every, save_total_limit=None,
        load_best_model_at_end=not averaged,
        metric_for_best_model="score" if scored else "loss", greater_is_better=scored,
        prediction_loss_only=not scored, label_names=list(label_names),
        logging_steps=max(1, spec.eval_every // 2), report_to=["tensorboard"], seed=spec.seed,
        data_seed=spec.seed, max_grad_norm=spec.max_grad_norm, remove_unused_columns=False,
        bf16=spec.precision == "bf16", fp16=spec.precision == "fp16",
        dataloader_num_workers=spec.loader_workers, dataloader_persistent_workers=spec.loader_workers > 0,
        dataloader_pin_memory=cuda, use_cpu=not cuda,
        disable_tqdm=not progress, save_only_model=False, optim=_optimizer_name())
    trainer = _trainer_class()(model=model, args=args, train_dataset=_IndexDataset(data["train"]),
                               eval_dataset=_IndexDataset(data["val"]),
                               data_collator=_SplitCollator(*collators.values()), compute_metrics=compute_metrics)
    trainer.base_lr_scale = spec.base_lr_scale
    trainer.add_callback(_keep_checkpoints(folder / "trainer", spec.average_last if averaged else 1))
    if not progress:
        trainer.remove_callback(PrinterCallback)
    last = last_checkpoint(folder / "trainer")
    trainer.train(resume_from_checkpoint=str(last) if last else None)
    if averaged:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.barrier()          # every rank reads what rank 0 saved and kept
        load_average(model, checkpoints(folder / "trainer")[-spec.average_last:])
    return trainer


def _trainer_class():
    """``transformers.Trainer`` with the base's parameters at ``base_lr_scale`` × the rate
    (the head, freshly initialised, at the rate itself), imported when a run trains."""
    from transformers import Trainer

    class ScaledBaseTrainer(Trainer):
        base_lr_scale = 1.0

        def create_optimizer(self, *args, **kwargs):
            if self.optimizer is None and self.base_lr_scale != 1.0:
                decay = set(self.get_decay_parameter_names(self.model))
                groups: dict[tuple[bool, bool], list] = {}
                for name, parameter in self.model.named_parameters():
                    if parameter.requires_grad:
                        groups.setdefault((name.startswith("base."), name in decay), []).append(parameter)
                rate = self.args.learning_rate
                optimizer_cls, options = Trainer.get_optimizer_cls_and_kwargs(self.args, self.model)
                self.optimizer = optimizer_cls(
                    [{"params": params, "lr": rate * (self.base_lr_scale if in_base else 1.0),
                      "weight_decay": self.args.weight_decay if decays else 0.0}
                     for (in_base, decays), params in groups.items()], **options)
            return super().create_optimizer(*args, **kwargs)

    return ScaledBaseTrainer


def _keep_checkpoints(trainer_dir: Path, keep: int):
    """A TrainerCallback: after each save the latest ``keep`` checkpoints stay (by step), and
    the best one: what resuming and ``load_best_model_at_end`` (or averaging) read."""
    from transformers import TrainerCallback

    class KeepCheckpoints(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if not state.is_world_process_zero:
                return
            found = [folder.resolve() for folder in checkpoints(trainer_dir)]
            protected = set(found[-keep:])
            if state.best_model_checkpoint:
                protected.add(Path(state.best_model_checkpoint).resolve())
            for folder in found:
                if folder not in protected:
                    shutil.rmtree(folder, ignore_errors=True)

    return KeepCheckpoints()


def checkpoints(trainer_dir: Path) -> list[Path]:
    """The Trainer's complete checkpoint folders, by step (not by name: 100 comes after 90).
    Complete means it holds ``trainer_state.json``, which the Trainer writes last: a run killed
    while saving leaves a folder without it, which is never resumed from, and which the Trainer
    writes over when the resumed run reaches that step again."""
    found = [p for p in Path(trainer_dir).glob("checkpoint-*") if (p / "trainer_state.json").is_file()]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def load_average(model: nn.Module, folders: list[Path]) -> None:
    """Load into ``model`` the uniform mean of the weights saved in checkpoint ``folders``
    (float tensors averaged in float64; integer buffers taken from the last)."""
    from safetensors.torch import load_file
    if not folders:
        raise RuntimeError("no checkpoint to average: the run saved none")
    states = [load_file(str(folder / "model.safetensors")) for folder in folders]
    keys = set(states[-1])
    if any(set(state) != keys for state in states):
        raise RuntimeError(f"checkpoints {[f.name for f in folders]} hold different tensors: not one run's")
    mean = {k: (torch.stack([state[k].double() for state in states]).mean(0).to(states[-1][k].dtype)
                if states[-1][k].is_floating_point() else states[-1][k]) for k in keys}
    missing, unexpected = model.load_state_dict(mean, strict=False)
    tied = {name for name, _ in model.named_parameters(remove_duplicate=False)} - set(dict(model.named_parameters()))
    if unexpected or set(missing) - tied:
        raise RuntimeError(f"averaged checkpoints do not fit the model: missing {sorted(set(missing) - tied)}, "
                           f"unexpected {sorted(unexpected)}")


def predict(trainer, split) -> tuple[np.ndarray, np.ndarray]:
    """The trained model's logits on ``split`` and the targets the Trainer paired them with,
    both in the split's order."""
    out = trainer.predict(_IndexDataset(split))
    return out.predictions, out.label_ids


def _optimizer_name() -> str:
    """Fused AdamW where torch has it for the device (CPU from torch 2.4): on the small models
    the per-tensor update loop is ~15 % of a step; fused, ~3 %."""
    if torch.cuda.is_available() or tuple(int(x) for x in torch.__version__.split(".")[:2]) >= (2, 4):
        return "adamw_torch_fused"
    return "adamw_torch"


def last_checkpoint(trainer_dir: Path) -> Path | None:
    """The Trainer's latest checkpoint folder (by step, not by name: 100 comes after 90)."""
    found = checkpoints(trainer_dir)
    return found[-1] if found else None


class _IndexDataset(torch.utils.data.Dataset):
    """Hands the Trainer plain indices; ``_SplitCollator`` turns them into batches."""

    def __init__(self, ds):
        self.ds = ds
        self.split_tag = id(base_dataset(ds))

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


def best_step(state) -> int | None:
    ckpt = state.best_model_checkpoint
    return int(ckpt.rsplit("-", 1)[1]) if ckpt else None


def save_weights(model: nn.Module, path: Path) -> None:
    from safetensors.torch import save_file
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    tmp.replace(path)

"""A run, trained: its stage's data, its model at its init, one loop, its stage's report.

``train_run`` is what the registry calls: a function of the spec (and the finished runs it
starts from), resumed from its last checkpoint, with the torch threads the spec names.
Stages (``stages``) say what differs between the BERT stage, the captioner, pretraining and
finetuning; ``fit`` is the loop they share; ``frozen_base`` the head-only shortcut.
"""
from __future__ import annotations

import os
from pathlib import Path

from torch import nn

from . import stages
from .data.root import DataRoot
from .fit import best_step, fit, save_weights, torch_threads
from .models.init import load_base_weights, load_bert, load_head_weights
from .spec import RunSpec


def build_model(spec: RunSpec, root: DataRoot, parent_dir: Path | None, head_dir: Path | None = None) -> nn.Module:
    """The run's model where training starts: its stage's model, with the weights its init
    names (BERT's, a released MMF checkpoint's, or the parent run's base), the head of the
    frozen-base run ``head_dir`` where the spec names one (``head_from``), the base frozen if
    the spec says so. The BERT stage and the captioner start from their random init."""
    stage = stages.get(spec.stage)
    model = stage.model(spec, root)
    if not stage.loads_init:
        return model
    if spec.init == "bert":
        load_bert(model, Path(spec.start_from) if spec.start_from else parent_dir / "bert")
    elif spec.init == "mmf":
        from .models.mmf_checkpoint import load_mmf_checkpoint
        load_mmf_checkpoint(model, Path(spec.start_from),
                            trust_pickle=os.environ.get("VLSTUDY_TRUST_PICKLE") == "1")
    elif spec.init == "pretrained":
        load_base_weights(model, parent_dir / "model.safetensors")
    if spec.head_from is not None:
        if head_dir is None:
            raise ValueError(f"run {spec.id} starts its head from run {spec.head_from}: build_model needs "
                             "that run's folder (head_dir)")
        _check_probe(spec, RunSpec.read(head_dir))
        load_head_weights(model, head_dir / "model.safetensors")
    if spec.frozen_base:
        model.base.requires_grad_(False)
    return model


def _check_probe(spec: RunSpec, probe: RunSpec) -> None:
    """A head to start from must have been trained on this run's task, on the same base."""
    same = dict(stage="finetune", dataset=spec.dataset, arch=spec.arch, init=spec.init, parent=spec.parent,
                start_from=spec.start_from, answer_vocab=spec.answer_vocab, world=spec.world,
                world_seed=spec.world_seed, model=spec.model, train_fraction=spec.train_fraction,
                frozen_base=True)
    differ = {k: (getattr(probe, k), v) for k, v in same.items() if getattr(probe, k) != v}
    if differ:
        raise ValueError(f"run {spec.id} starts its head from run {spec.head_from}, which is not a frozen-base "
                         f"run of the same task on the same base: " + ", ".join(
                             f"{k} {theirs!r} (needs {ours!r})" for k, (theirs, ours) in differ.items()))


def train_run(spec: RunSpec, folder: Path, root: DataRoot, parent_dir: Path | None,
              progress: bool = False, text_dir: Path | None = None, head_dir: Path | None = None) -> dict:
    """Train ``spec`` in ``folder`` (resuming from its last checkpoint) and return its metrics;
    its stage writes what else it produces (a finetuning run's predictions). ``text_dir``: the
    generated dataset a pretraining reads instead of its own text; ``head_dir``: the frozen-base
    run whose head it starts from."""
    with torch_threads(spec.threads):
        return _train_run(spec, folder, root, parent_dir, progress, text_dir, head_dir)


def _train_run(spec: RunSpec, folder: Path, root: DataRoot, parent_dir: Path | None,
               progress: bool, text_dir: Path | None, head_dir: Path | None) -> dict:
    from transformers import set_seed

    set_seed(spec.seed)
    stage = stages.get(spec.stage)
    if not stage.trains:
        return stage.decode(spec, folder, root, parent_dir, RunSpec.read(parent_dir))
    data = stage.datasets(spec, root, text_dir)
    model = build_model(spec, root, parent_dir, head_dir)
    collators = stage.collators(spec, root, data)
    trained, fed, fed_collators, context = stage.prepare(spec, model, data, collators)
    trainer = fit(spec, folder, trained, fed, fed_collators, progress, stage.label_names,
                  compute_metrics=stage.scorer(spec, root))
    state = trainer.state
    metrics = {"best_step": best_step(state), "train_seconds": round(sum(
        h.get("train_runtime", 0) for h in state.log_history), 1)}
    metrics.update(stage.report(spec, root, folder, trainer, model, fed, fed_collators, context))
    if trainer.is_world_process_zero():
        save_weights(model, folder / "model.safetensors")
        stage.export(model, folder)
    return metrics

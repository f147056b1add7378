"""Runs keyed by their spec: cached, resumable, shared by every notebook.

A run lives in ``outputs/runs/<id>/``: ``spec.json`` (written first), the Trainer's
checkpoints and TensorBoard logs under ``trainer/``, the best weights
(``model.safetensors``; the BERT stage also a BERT-format ``bert/`` folder), a finetuning
run's per-example predictions (``predictions-val.jsonl``, ``predictions-test.jsonl``) and
``metrics.json``, written atomically and last, so a run is finished exactly when its
metrics exist. Asking again for a finished spec trains nothing; an unfinished one
resumes from its last checkpoint.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pandas as pd

from .captioner import generated_folder
from .paths import atomic_write_text, outputs_root
from .train import PREDICTION_SPLITS, RunSpec, predictions_path, train_run


class Registry:
    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root else outputs_root() / "runs"

    def folder(self, spec_or_id: RunSpec | str) -> Path:
        return self.root / (spec_or_id if isinstance(spec_or_id, str) else spec_or_id.id)

    def metrics(self, spec: RunSpec) -> dict | None:
        path = self.folder(spec) / "metrics.json"
        return json.loads(path.read_text()) if path.exists() else None

    def predictions(self, spec_or_id: RunSpec | str, split: str = "test") -> pd.DataFrame:
        """A finetuning run's per-example predictions on ``split`` ("val" or "test"): one row
        per example in the split's order, columns as ``train.prediction_rows`` writes them
        (``id``, ``prediction``, then ``score``, or ``tp``/``fp``/``fn`` and ``labels``)."""
        from .data.records import iter_jsonl
        if split not in PREDICTION_SPLITS:
            raise ValueError(f"no predictions of split {split!r}; runs keep {PREDICTION_SPLITS}")
        run = spec_or_id if isinstance(spec_or_id, str) else spec_or_id.id
        path = predictions_path(self.folder(run), split)
        if not path.exists():
            raise FileNotFoundError(f"no {split} predictions of run {run}: {path} does not exist "
                                    "(finetuning runs write them when they finish)")
        return pd.DataFrame([row for _, row in iter_jsonl(path, f"{split} predictions of run {run}")])

    def status(self, spec: RunSpec) -> str:
        if self.metrics(spec) is not None:
            return "finished"
        return "unfinished" if (self.folder(spec) / "spec.json").exists() else "new"

    def run(self, spec: RunSpec, progress: bool = False) -> dict:
        """The metrics of ``spec``, training it (or resuming it) only if it has not finished."""
        done = self.metrics(spec)
        if done is not None:
            return done
        for needed in spec.needs:
            if not (self.folder(needed) / "metrics.json").exists():
                raise ValueError(f"run {spec.id} needs run {needed}, which has not finished")
        folder = self.folder(spec)
        folder.mkdir(parents=True, exist_ok=True)
        main = int(os.environ.get("RANK", "0")) == 0         # under torchrun only rank 0 writes
        if main:
            atomic_write_text(folder / "spec.json", json.dumps(spec.__dict__, indent=1))
        started = time.time()
        metrics = train_run(spec, folder, spec.data(),
                            self.folder(spec.parent) if spec.parent else None, progress,
                            generated_folder(self.folder(spec.text_from)) if spec.text_from else None)
        metrics["wall_seconds"] = round(time.time() - started, 1)
        if main:
            atomic_write_text(folder / "metrics.json", json.dumps(metrics, indent=1))
        return metrics

    def run_file(self, path_or_json: str, progress: bool = True) -> dict:
        """Run a spec given as a JSON file or string (``vlstudy train``, e.g. under torchrun)."""
        text = path_or_json if path_or_json.lstrip().startswith("{") else Path(path_or_json).read_text()
        try:
            fields = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"run spec is not valid JSON: {e.msg}") from None
        try:
            spec = RunSpec(**fields)
        except TypeError as e:
            raise ValueError(f"bad run spec: {e}") from None
        return self.run(spec, progress)

    def table(self) -> pd.DataFrame:
        """Every run with its status and headline metric (for ``vlstudy runs``)."""
        rows = []
        for spec_path in sorted(self.root.glob("*/spec.json")):
            spec = json.loads(spec_path.read_text())
            m_path = spec_path.parent / "metrics.json"
            m = json.loads(m_path.read_text()) if m_path.exists() else {}
            headline = m.get("test_score", m.get("mlm_loss", m.get("cider")))
            rows.append({"run": spec_path.parent.name, "stage": spec["stage"], "arch": spec["arch"],
                         "dataset": spec["dataset"], "init": spec["init"], "frozen": spec["frozen_base"],
                         "seed": spec["seed"], "status": "finished" if m else "unfinished",
                         "headline": headline, "seconds": m.get("wall_seconds")})
        return pd.DataFrame(rows)


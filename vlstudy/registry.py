"""Runs keyed by their spec: cached, resumable, shared by every notebook.

A run lives in ``outputs/runs/<id>/``: ``spec.json`` (written first), the Trainer's
checkpoints and TensorBoard logs under ``trainer/``, the best weights
(``model.safetensors``; the BERT stage also a BERT-format ``bert/`` folder), a finetuning
run's per-example predictions (``predictions-val.jsonl``, ``predictions-test.jsonl``) and
``metrics.json``, written atomically and last, so a run is finished exactly when its
metrics exist. Asking again for a finished spec trains nothing; an unfinished one
resumes from its last checkpoint.

One process trains a run at a time: it holds the run's lock (``locks``) while it trains, and
another process asking for the run waits for it and reads its metrics. A run that raised
leaves ``failure.json`` (the error and its traceback) until it is asked for again; a cluster
job's ``job.json`` (``jobs``) says where its log is.
"""
from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path

import pandas as pd

from . import locks
from .captioner import generated_folder
from .paths import atomic_write_text, outputs_root, read_json
from .fit import last_checkpoint
from .spec import SPEC_FILE, RunSpec
from .stages import PREDICTION_SPLITS, predictions_path
from .train import train_run


FAILURE_FILE, JOB_FILE = "failure.json", "job.json"
# What a run's folder says about it (``status``): finished, being trained now, submitted as a
# cluster job that has not started, failed (with its error), started and stopped (killed, timed
# out, interrupted: asking again resumes it), or never asked for.
STATUSES = ("finished", "training", "waiting", "failed", "unfinished", "new")


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _run_file(path: Path) -> dict | None:
    """A run folder's JSON record (metrics, job, failure), None where it is not written."""
    return read_json(path, "run", missing_ok=True)


class Registry:
    def __init__(self, root: Path | None = None, log=_stderr):
        self.root = Path(root) if root else outputs_root() / "runs"
        self.log = log

    def folder(self, spec_or_id: RunSpec | str) -> Path:
        return self.root / (spec_or_id if isinstance(spec_or_id, str) else spec_or_id.id)

    def metrics(self, spec_or_id: RunSpec | str) -> dict | None:
        return _run_file(self.folder(spec_or_id) / "metrics.json")

    def predictions(self, spec_or_id: RunSpec | str, split: str = "test") -> pd.DataFrame:
        """A finetuning run's per-example predictions on ``split`` ("val" or "test"): one row
        per example in the split's order, columns as ``tasks.Task.prediction_rows`` writes them
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

    def status(self, spec_or_id: RunSpec | str) -> str:
        """One of ``STATUSES``, from the run's folder and its lock."""
        folder = self.folder(spec_or_id)
        if (folder / "metrics.json").exists():
            return "finished"
        if locks.is_held(folder):
            return "training"
        if (folder / FAILURE_FILE).exists():
            return "failed"
        job, note = self.job(spec_or_id), locks.holder(folder)
        if job and (note is None or note["since"] < job["submitted"]):
            return "waiting"
        return "unfinished" if (folder / SPEC_FILE).exists() else "new"

    def run(self, spec: RunSpec, progress: bool = False, wait: bool = True) -> dict:
        """The metrics of ``spec``, training it (or resuming it) only if it has not finished.
        Another process training it: wait for it and read its metrics, or with ``wait=False``
        raise ``locks.RunBusy`` naming the holder. A parent being trained is waited for too."""
        done = self.metrics(spec)
        if done is not None:
            return done
        for needed in spec.needs:
            finished = (self.folder(needed) / "metrics.json").exists
            # a finished run needs no wait: probing its lock while another process probes it too
            # reads as held and printed a spurious "being trained by ...: waiting for it"
            if wait and not finished():
                locks.wait_until_released(self.folder(needed), self.log)
            if not finished():
                raise ValueError(f"run {spec.id} needs run {needed}, which has not finished")
        folder = self.folder(spec)
        folder.mkdir(parents=True, exist_ok=True)
        if int(os.environ.get("RANK", "0")) != 0:   # under torchrun: rank 0 locks and writes for the group
            locks.wait_for_group_holder(folder, lambda: self.metrics(spec) is not None)
            return self.metrics(spec) or self._train(spec, folder, progress)
        with locks.hold(folder, lambda: self.metrics(spec) is not None, wait, self.log) as train:
            if not train:                            # trained by the holder we waited for
                return self.metrics(spec)
            (folder / FAILURE_FILE).unlink(missing_ok=True)
            spec.write(folder)
            try:
                metrics = self._train(spec, folder, progress)
            except Exception as e:
                atomic_write_text(folder / FAILURE_FILE, json.dumps(
                    {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-8000:],
                     "when": time.time(), **(locks.holder(folder) or {})}, indent=1))
                raise
            atomic_write_text(folder / "metrics.json", json.dumps(metrics, indent=1))
        return metrics

    def _train(self, spec: RunSpec, folder: Path, progress: bool) -> dict:
        last = last_checkpoint(folder / "trainer")
        if last is not None and int(os.environ.get("RANK", "0")) == 0:
            self.log(f"run {spec.id}: resuming from {last.name}")
        started = time.time()
        metrics = train_run(spec, folder, spec.data(),
                            self.folder(spec.parent) if spec.parent else None, progress,
                            generated_folder(self.folder(spec.text_from)) if spec.text_from else None,
                            self.folder(spec.head_from) if spec.head_from else None)
        metrics["wall_seconds"] = round(time.time() - started, 1)
        return metrics

    def failure(self, spec_or_id: RunSpec | str) -> dict | None:
        """What a failed run left: its error, traceback, and who ran it."""
        return _run_file(self.folder(spec_or_id) / FAILURE_FILE)

    def job(self, spec_or_id: RunSpec | str) -> dict | None:
        """The cluster job last submitted for the run (``jobs``): engine, id, log paths."""
        return _run_file(self.folder(spec_or_id) / JOB_FILE)

    def log_path(self, spec_or_id: RunSpec | str) -> Path | None:
        """Where the run's log is: its cluster job's stderr, else its TensorBoard folder."""
        folder, job = self.folder(spec_or_id), self.job(spec_or_id)
        if job:
            return Path(job["stderr"])
        return folder / "trainer" if (folder / "trainer").exists() else None

    def run_file(self, path_or_json: str, progress: bool = True, wait: bool = True) -> dict:
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
        return self.run(spec, progress, wait)

    def table(self) -> pd.DataFrame:
        """Every run with its status, headline metric and log (for ``vlstudy runs``); a training
        run's holder, a failed run's error."""
        rows = []
        for spec_path in sorted(self.root.glob(f"*/{SPEC_FILE}")):
            spec, run = json.loads(spec_path.read_text()), spec_path.parent.name
            m = self.metrics(run) or {}
            status = self.status(run)
            failure, job = self.failure(run), self.job(run)
            note = (locks.describe(locks.holder(spec_path.parent)) if status == "training" else
                    failure["error"] if status == "failed" and failure else
                    f"{job['engine']} job {job['job_id']} (not asked of the engine)" if status == "waiting" and job
                    else "")
            rows.append({"run": run, "stage": spec["stage"], "arch": spec["arch"],
                         "dataset": spec["dataset"], "init": spec["init"], "frozen": spec["frozen_base"],
                         "seed": spec["seed"], "status": status,
                         "headline": m.get("test_score", m.get("mlm_loss", m.get("cider"))),
                         "seconds": m.get("wall_seconds"), "log": self.log_path(run), "note": note})
        return pd.DataFrame(rows)


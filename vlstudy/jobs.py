"""Runs as cluster jobs, one job per run, through submitit (SLURM, or its local executor).

Parents go before children. On SLURM the whole grid is submitted at once and each job waits
for its parents' jobs through ``--dependency=afterok`` (``kill-on-invalid-dep``: a child of a
failed parent leaves the queue); submitit's local executor has no dependencies, so there a
job is submitted once its parents have finished. Every job trains through ``Registry.run``,
so the run lock keeps one trainer per run whoever asks (another notebook, another job), and a
job whose time runs out is requeued by submitit and resumes from its last checkpoint.

A run's job leaves ``job.json`` in the run's folder (engine, job id, log paths) and its
logs in ``<run>/jobs/``. A notebook that is run again submits only what is unfinished: runs
being trained are waited for through their lock, and runs still queued on SLURM from an
earlier submission are followed, not submitted twice.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from .inputs import check_field_types
from .paths import atomic_write_text, outputs_root
from .registry import FAILURE_FILE, JOB_FILE, Registry
from .spec import RunSpec

# Recipe.executor → submitit's cluster name. "local": this machine's worker processes
# (Study's pool, no submitit); "submitit_local": the cluster path run on this machine, to try a
# grid before submitting it (and to test it here).
EXECUTORS = {"local": None, "slurm": "slurm", "submitit_local": "local"}
# Engines whose jobs can wait on other jobs (the grid goes in at once) and be found again by id
_FOLLOWABLE = ("slurm",)


@dataclass(frozen=True)
class ClusterOptions:
    """A job's resources (``Recipe.cluster``, or ``vlstudy study --partition ...``)."""
    partition: str | None = None
    account: str | None = None
    gpus_per_run: int = 1            # one node; one task per GPU (DDP through submitit's env)
    time_limit_min: int = 24 * 60    # past it submitit requeues the job, which resumes the run
    cpus_per_gpu: int = 8            # CPU cores per task (the data loader's workers)
    mem_gb: float | None = None
    sbatch: dict = dataclasses.field(default_factory=dict)   # further sbatch options: qos, constraint …
    poll_s: float = 30.0             # how often the notebook asks the engine about its jobs

    @classmethod
    def from_dict(cls, options: dict | None, where: str = "recipe: cluster") -> "ClusterOptions":
        options = options or {}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(f"{where}: unknown option(s) {unknown}; known: {sorted(known)}")
        out = cls(**options)
        check_field_types(out, where)
        if out.gpus_per_run < 0 or out.time_limit_min < 1 or out.cpus_per_gpu < 1:
            raise ValueError(f"{where}: gpus_per_run ≥ 0, time_limit_min ≥ 1 and cpus_per_gpu ≥ 1, got {out}")
        return out


def check_executor(executor: str, launcher: str, cluster: dict | None) -> None:
    """A recipe's executor settings, checked when the recipe is made."""
    if executor not in EXECUTORS:
        raise ValueError(f"recipe: executor must be one of {sorted(EXECUTORS)}, got {executor!r}")
    ClusterOptions.from_dict(cluster)
    if executor != "local" and launcher:
        raise ValueError(f"recipe: executor {executor!r} starts one task per GPU itself; "
                         f"launcher {launcher!r} is for running on this machine (set launcher: '')")


class RunJob:
    """The callable a job runs: one run through the registry, as task k of the job's tasks.

    A submitit Checkpointable (built lazily, so importing vlstudy does not need submitit):
    on a timeout it is resubmitted with the same arguments and ``Registry.run`` resumes."""

    def __call__(self, root: str, output_root: str, spec: RunSpec) -> dict:
        import submitit
        os.environ["VLSTUDY_OUTPUT_ROOT"] = output_root      # where the run's world is
        if submitit.JobEnvironment().num_tasks > 1:          # LOCAL_RANK picks the node's GPU
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        return Registry(Path(root)).run(spec)


def _checkpointable_job():
    import submitit

    class CheckpointableRunJob(RunJob, submitit.helpers.Checkpointable):
        pass
    return CheckpointableRunJob()


class JobFailed(RuntimeError):
    """Runs that failed as cluster jobs: each with its error and the path of its log."""


def run_as_jobs(todo: list[RunSpec], registry: Registry, executor: str, options: ClusterOptions,
                on_finished, log=print) -> None:
    """Train ``todo`` (unfinished runs, parents listed before children) as jobs, and return once
    every one has finished; ``on_finished(spec, metrics)`` as each does. Failed runs (and those
    that need them) are reported together in one ``JobFailed``, each with its log."""
    board = _Board(todo, registry, EXECUTORS[executor], options, on_finished)
    try:
        while board.pending or board.jobs or board.held:
            board.submit_ready()
            time.sleep(min(options.poll_s, 1.0) if board.cluster == "local" else options.poll_s)
            board.collect()
    except KeyboardInterrupt:
        if board.jobs and board.follows:
            log(f"interrupted: {len(board.jobs)} job(s) stay queued or running on {executor}; running "
                "the notebook again follows them instead of submitting them twice")
        raise
    if board.failed:
        lines = [f"run {run} ({spec.stage} {spec.arch} {spec.dataset} seed {spec.seed}): {why}"
                 + (f"\n    log: {logfile}" if logfile else "") for run, (spec, why, logfile) in board.failed.items()]
        raise JobFailed(f"{len(board.failed)} of {len(todo)} runs did not finish as {executor} jobs "
                        f"(running the notebook again submits only what is unfinished):\n" + "\n".join(lines))


class _Board:
    """The runs of one ``run_as_jobs`` call: pending (not submitted), jobs (submitted or
    followed), held (trained by another process, waited for through the lock), failed."""

    def __init__(self, todo, registry: Registry, cluster: str, options: ClusterOptions, on_finished):
        self.todo, self.registry, self.cluster, self.options = todo, registry, cluster, options
        self.on_finished, self.follows, self.ids = on_finished, cluster in _FOLLOWABLE, {s.id for s in todo}
        self.pending, self.jobs, self.held, self.failed = [], {}, {}, {}
        for spec in todo:                     # what another process or an earlier submission has going
            self._place(spec)

    def _place(self, spec) -> None:
        """Follow the run's job if an earlier submission's is still queued or running (a
        requeued one too), wait for another process training it, take it as finished, or
        keep it to submit."""
        job = _follow(self.registry, spec, self.cluster) if self.follows else None
        status = self.registry.status(spec)
        if job is not None:
            self.jobs[spec.id] = (spec, job)
        elif status == "finished":
            self.on_finished(spec, self.registry.metrics(spec))
        elif status == "training":
            self.held[spec.id] = spec
        else:
            self.pending.append(spec)

    def submit_ready(self) -> None:
        """Submit the pending runs whose parents have finished or, where the engine has job
        dependencies, are all submitted (their job ids become the dependency)."""
        for spec in list(self.pending):
            waits_on = [n for n in spec.needs if n in self.ids and self.registry.status(n) != "finished"]
            failed = [n for n in waits_on if n in self.failed]
            if failed:
                self.failed[spec.id] = (spec, f"not started: it needs run(s) {failed}, which failed", None)
            elif not waits_on or (self.follows and all(n in self.jobs for n in waits_on)):
                self.jobs[spec.id] = (spec, _submit(self.registry, spec, self.cluster, self.options,
                                                    [self.jobs[n][1].job_id for n in waits_on]))
            else:
                continue
            self.pending.remove(spec)

    def collect(self) -> None:
        """Take in the runs that have ended since the last look."""
        for run, spec in list(self.held.items()):
            if self.registry.status(run) == "training":
                continue
            del self.held[run]
            self._place(spec)                 # finished, requeued, or stopped: submit it again
        for run, (spec, job) in list(self.jobs.items()):
            if not job.done():
                continue
            del self.jobs[run]
            metrics = self.registry.metrics(spec)
            if metrics is not None:
                self.on_finished(spec, metrics)
                continue
            self.failed[run] = (spec, _why(job, self.registry, spec), job.paths.stderr)
            for child_spec, child in self.jobs.values():      # SLURM drops them too (invalid dep)
                if run in child_spec.needs:
                    child.cancel(check=False)


def _executor(registry: Registry, spec: RunSpec, cluster: str, options: ClusterOptions):
    import submitit
    executor = submitit.AutoExecutor(folder=registry.folder(spec) / "jobs", cluster=cluster)
    gpus = options.gpus_per_run if cluster == "slurm" else _local_gpus(options.gpus_per_run)
    executor.update_parameters(
        name=f"vlstudy-{spec.stage}-{spec.id[:10]}", timeout_min=options.time_limit_min, nodes=1,
        tasks_per_node=max(1, gpus), gpus_per_node=gpus, cpus_per_task=options.cpus_per_gpu,
        **({"mem_gb": options.mem_gb} if options.mem_gb else {}))
    if cluster == "slurm":
        executor.update_parameters(
            slurm_partition=options.partition, slurm_account=options.account,
            slurm_additional_parameters={"kill-on-invalid-dep": "yes", **options.sbatch})
    return executor


def _local_gpus(wanted: int) -> int:
    import torch
    return min(wanted, torch.cuda.device_count()) if torch.cuda.is_available() else 0


def _submit(registry: Registry, spec: RunSpec, cluster: str, options: ClusterOptions, parent_jobs: list[str]):
    executor = _executor(registry, spec, cluster, options)
    if parent_jobs:
        executor.update_parameters(slurm_dependency="afterok:" + ":".join(parent_jobs))
    folder = registry.folder(spec)
    folder.mkdir(parents=True, exist_ok=True)
    spec.write(folder)
    (folder / FAILURE_FILE).unlink(missing_ok=True)       # this attempt's outcome replaces it
    submitted = time.time()
    job = executor.submit(_checkpointable_job(), str(registry.root), str(outputs_root()), spec)
    atomic_write_text(folder / JOB_FILE, json.dumps(
        {"engine": cluster, "job_id": job.job_id, "submitted": submitted, "folder": str(job.paths.folder),
         "stdout": str(job.paths.stdout), "stderr": str(job.paths.stderr), "after": parent_jobs}, indent=1))
    registry.log(f"[job] {spec.stage} {spec.id}: submitted as {cluster} job {job.job_id}"
                 + (f" after {parent_jobs}" if parent_jobs else ""))
    return job


def _follow(registry: Registry, spec: RunSpec, cluster: str):
    """The SLURM job an earlier submission of ``spec`` queued, if the engine still has it
    queued or running (requeued after a timeout included); None otherwise."""
    import submitit
    record = registry.job(spec)
    if record is None or record["engine"] != cluster:
        return None
    job = submitit.SlurmJob(folder=record["folder"], job_id=record["job_id"])
    return None if job.done() else job


def _why(job, registry: Registry, spec: RunSpec) -> str:
    """A failed job's reason: the run's own error if it raised, else what the engine says."""
    failure = registry.failure(spec)
    if failure:
        return failure["error"]
    try:
        error = job.exception()
    except Exception as e:                 # cancelled, or no result left by a killed job
        error = e
    last = str(error).strip().splitlines()[-1:] if error else []
    return f"job {job.job_id} ended in state {job.state}" + (f": {last[0]}" if last else "")

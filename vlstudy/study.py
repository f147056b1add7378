"""The study's recipes: the runs that answer a question, from a notebook's parameters.

A ``Study`` turns "ViLBERT pretrained on VQA-P, finetuned on VizWiz, seed 2" into run
specs (BERT stage → pretraining → finetuning), asks the registry for each in order and
returns tidy tables. Runs made by one notebook are found, not retrained, by the others.
"""
from __future__ import annotations

import dataclasses
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import pandas as pd

from . import tasks
from .inputs import check_field_types, check_spec_inputs
from .jobs import ClusterOptions, check_executor, run_as_jobs
from .registry import Registry
from .roots import opened
from .sources import GENERATED, NO_PRETRAINING, RANDOM_INIT, RELEASED
from .spec import RunSpec
from .stages import STAGES

# A Study logs one line per finished run starting with this; ``vlstudy study`` shows those
# lines of a notebook's kernel as the study's progress.
RUN_LOG_PREFIX = "[run] "


FINETUNE_STEPS = {"vqa_d": 600, "vizwiz": 300, "snli_ve": 300, "mmimdb": 300}


@dataclass(frozen=True)
class Recipe:
    """Hyper-parameters shared by the study's runs (a profile sets them)."""
    world: str = "small"
    # The preset's world at another seed: the confirmation world (world.CONFIRMATION_SEED), on
    # which the report's verdicts are computed; None: the preset's own seed (0, a calibration world)
    world_seed: int | None = None
    model: str = "small"
    batch_size: int = 64             # the BERT stage and pretraining
    # Finetuning takes smaller batches: what matters at this scale is the number of updates,
    # and 600 updates of 32 cost about what 330 of 64 do (docs/evidence.md, "Calibration")
    finetune_batch_size: int = 32
    bert_steps: int = 600
    pretrain_steps: int = 1000
    # Updates per downstream task (one number: every task). At the `small` scale VQA-D's
    # models start to use the image only after ~500 updates; the low-resource tasks (600
    # examples) get 16 epochs; SNLI-VE, whose scores barely move with the init, 3.
    finetune_steps: int | dict = dataclasses.field(default_factory=lambda: dict(FINETUNE_STEPS))
    bert_lr: float = 5e-4
    pretrain_lr: float = 2e-3        # small models: grounding emerges after ~1k updates at this rate
    finetune_lr: float = 1e-3
    # Share of text tokens masked in pretraining. BERT's 0.15 leaves about one grounded token
    # per short text, too sparse for word-region binding to emerge in a CPU budget; at 0.4
    # (Wettig et al. 2023, "Should you mask 15 %?") it does (see the domain-match notebook).
    mask_probability: float = 0.4
    frozen_lr: float = 2e-3
    # Whole-model finetuning: 0 keeps the best of the validation checkpoints; k averages the
    # last k checkpoints' weights (of evals_per_run, LAWA) and scores the mean once at the end
    finetune_average_last: int = 0
    # Whole-model finetuning: the base's rate as a share of finetune_lr (the new head keeps it)
    finetune_base_lr_scale: float = 1.0
    # Whole-model finetuning: the head starts from the frozen-base run of the same task, start and
    # finetuning seed (a linear probe, the study's frozen cell) instead of its random init (LP-FT)
    finetune_head_from_probe: bool = False
    warmup_fraction: float = 0.1
    evals_per_run: int = 5
    max_text_len: int = 32
    long_text_len: int = 48          # MM-IMDB plots (3-5 sentences in the world: 99 % fit)
    max_grad_norm: float = 1.0       # gradient clipping (the paper: none, 0)
    captioner_steps: int = 600       # the captioner behind CCG (batch_size pairs per update)
    captioner_lr: float = 1e-3
    caption_max_len: int = 20        # tokens of a caption, trained and generated (world: ≤ 16)
    # A BERT folder (Hugging Face layout) to start from instead of the stand-in BERT stage:
    # bert-base-uncased for the real data
    bert_dir: str | None = None
    # Replication. A block k is one pretraining seed: every pretraining run (and the captioner
    # behind generated text) and the block's finetuning runs use seed k, so two pretraining sets
    # compared within a block share their start, head inits and data order (paired). Comparing
    # pretraining sets means replicating pretraining: blocks are the unit of replication;
    # finetuning seeds nest inside them.
    blocks: int = 2
    finetune_seeds: int = 1          # finetuning runs per (block, cell)
    # A BERT stage per block (MultiBERTs-style: claims then hold across BERT seeds too) instead
    # of one for all blocks, as the paper's one bert-base-uncased and the `paper` profile's
    # bert_dir. Off: the comparisons are of pretraining sets given the BERT, and the
    # blocks replicate what the compared cells differ in, the pretraining runs
    bert_per_block: bool = False
    jobs: int = 1                    # independent runs side by side (worker processes)
    # torch intra-op threads of each run, part of its spec: float sums depend on the thread
    # count, so a run's numbers must not depend on what else was running beside it
    threads_per_job: int = 1
    # A command each run is launched under, one after the other, e.g. "torchrun
    # --nproc_per_node gpu" (the paper profile); empty: runs train in this machine's workers
    launcher: str = ""
    # Where runs train: "local" (this machine: ``jobs`` workers, or the launcher), "slurm" (one
    # SLURM job per run through submitit, ``cluster`` its resources: partition, account,
    # gpus_per_run, time_limit_min, ...) or "submitit_local" (the same jobs on this machine)
    executor: str = "local"
    cluster: dict | None = None
    # Paper scale (RunSpec): mixed precision (bf16 on GPUs; the CPU stays fp32), DataLoader
    # workers per run, and the VQA-like tasks' answer vocabulary (None: the field's, 3,129 / 7,370)
    precision: str = "fp32"
    loader_workers: int = 0
    answer_vocab: int | None = None
    # The VQA-like tasks' reported score: "soft" (the soft score of the argmax answer, MMF's
    # vqa_accuracy, also the training-time metric) or "official" (the official evaluator's
    # accuracy on the run's results file; the paper profile's)
    test_metric: str = "soft"

    @classmethod
    def from_params(cls, params: dict) -> "Recipe":
        """The recipe from a notebook's parameters: those naming a field, and the fields in its
        ``recipe`` dict (a profile's further settings); None keeps the default."""
        names = {f.name for f in dataclasses.fields(cls)}
        extra = params.get("recipe") or {}
        unknown = sorted(set(extra) - names)
        if unknown:
            raise ValueError(f"recipe settings {unknown} are not Recipe fields; known: {sorted(names)}")
        chosen = {k: v for k, v in params.items() if k in names and v is not None}
        clash = sorted(k for k in set(chosen) & set(extra) if chosen[k] != extra[k])
        if clash:
            raise ValueError(f"recipe settings {clash} are also parameters, with other values")
        return cls(**{**chosen, **{k: v for k, v in extra.items() if v is not None}})

    def __post_init__(self):
        check_field_types(self, "recipe")       # YAML reads 5e-5 as a string: say so here, not in a worker
        check_executor(self.executor, self.launcher, self.cluster)
        if self.test_metric not in ("soft", "official"):
            raise ValueError(f"recipe: test_metric must be 'soft' or 'official', got {self.test_metric!r}")
        if self.blocks < 1 or self.finetune_seeds < 1 or self.threads_per_job < 1:
            raise ValueError(f"blocks ({self.blocks}), finetune_seeds ({self.finetune_seeds}) and "
                             f"threads_per_job ({self.threads_per_job}) must each be at least 1")

    def schedule(self, steps: int) -> dict:
        return dict(steps=steps, warmup=max(1, int(steps * self.warmup_fraction)),
                    eval_every=max(1, steps // self.evals_per_run))


class Study:
    def __init__(self, recipe: Recipe, registry: Registry | None = None, log=None):
        self.recipe, self.registry = recipe, registry or Registry()
        self.log = log if log is not None else (lambda msg: print(msg, file=sys.stderr, flush=True))
        self._specs: dict[str, RunSpec] = {}
        self._pool: ProcessPoolExecutor | None = None     # workers outlive one run_many call
        self._examples: dict[tuple, object] = {}          # (run id, metric) -> per-example test scores
        self._tasks: dict[str, tasks.Task | None] = {}    # dataset -> its task record

    def _spec(self, **kw) -> RunSpec:
        r = self.recipe
        kw.setdefault("batch_size", r.batch_size)
        spec = RunSpec(world=r.world, world_seed=r.world_seed, model=r.model, max_grad_norm=r.max_grad_norm,
                       threads=r.threads_per_job, precision=r.precision, loader_workers=r.loader_workers, **kw)
        check_spec_inputs(spec)               # a bad name fails here, before any run of the grid
        self._specs[spec.id] = spec
        return spec

    # --- blocks -------------------------------------------------------------------------
    @property
    def blocks(self) -> range:
        """The study's blocks (pretraining seeds)."""
        return range(self.recipe.blocks)

    @property
    def replicates(self) -> range:
        """Finetuning replicates within a block."""
        return range(self.recipe.finetune_seeds)

    # --- specs --------------------------------------------------------------------------
    def bert(self, block: int = 0) -> RunSpec:
        r = self.recipe
        return self._spec(stage="bert", arch="bert", dataset="corpus", init="random", lr=r.bert_lr,
                          beta2=0.98, max_text_len=r.max_text_len, seed=block, **r.schedule(r.bert_steps))

    def _from_bert(self, block: int) -> dict:
        """Where init "bert" starts: the user's BERT folder (one for every block: the released
        BERT), or the stand-in BERT stage run: one for every block too, as the paper's models
        all start from one bert-base-uncased, unless ``bert_per_block``."""
        if self.recipe.bert_dir:
            return dict(init="bert", parent=None, start_from=str(Path(self.recipe.bert_dir).resolve()))
        return dict(init="bert", parent=self.bert(block if self.recipe.bert_per_block else 0).id)

    def captioner(self, dataset: str = "coco", fraction: float = 1.0, block: int = 0) -> RunSpec:
        """The captioning model trained on ``fraction`` of ``dataset``'s pairs (the block's seed:
        the captioner is part of how generated pretraining data comes about)."""
        r = self.recipe
        return self._spec(stage="captioner", arch="captioner", dataset=dataset, init="random",
                          train_fraction=fraction, lr=r.captioner_lr, beta2=0.999, seed=block,
                          max_text_len=r.caption_max_len, **r.schedule(r.captioner_steps))

    def captions(self, images: str, captioner: RunSpec) -> RunSpec:
        """``captioner``'s captions of the train and val images of ``images`` (a dataset)."""
        return self._spec(stage="captions", arch="captioner", dataset=images, init="pretrained",
                          parent=captioner.id, steps=0, max_text_len=self.recipe.caption_max_len)

    def generated(self, name: str, block: int = 0) -> RunSpec:
        """The captions run behind a GENERATED pretraining set (e.g. "ccg") in ``block``."""
        if name not in GENERATED:
            raise ValueError(f"unknown generated pretraining set {name!r}; known: {sorted(GENERATED)}")
        images, captioning_set = GENERATED[name]
        return self.captions(images, self.captioner(captioning_set, block=block))

    def pretraining(self, arch: str, dataset: str, fraction: float = 1.0, steps: int | None = None,
                    block: int = 0, text_from: RunSpec | None = None) -> RunSpec:
        """Pretraining on ``dataset`` (a GENERATED name: its images with generated captions),
        or on ``dataset``'s images with the captions of the run ``text_from``, in ``block``."""
        r = self.recipe
        if dataset in GENERATED:
            text_from = text_from or self.generated(dataset, block)
            dataset = text_from.dataset
        if text_from is not None and text_from.dataset != dataset:
            raise ValueError(f"captions run {text_from.id} captions {text_from.dataset!r}, not {dataset!r}")
        return self._spec(stage="pretrain", arch=arch, dataset=dataset, **self._from_bert(block),
                          text_from=text_from.id if text_from else None,
                          train_fraction=fraction, lr=r.pretrain_lr, beta2=0.98, seed=block,
                          mask_probability=r.mask_probability,
                          max_text_len=r.max_text_len, **r.schedule(steps or r.pretrain_steps))

    def finetuning(self, arch: str, task: str, pretrained_on: str, block: int = 0, replicate: int = 0,
                   frozen: bool = False, pretraining: RunSpec | None = None) -> RunSpec:
        """``pretrained_on``: a pretraining dataset, "none" (from BERT), "random", or
        "mmf:<checkpoint file>" (weights released with the paper, MMF's layout). ``pretraining``
        (a run of ``block``) replaces the recipe's pretraining on ``pretrained_on``."""
        r = self.recipe
        if pretraining is not None and pretraining.seed != block:
            raise ValueError(f"pretraining {pretraining.id} is of block {pretraining.seed}, not {block}")
        released = pretrained_on.startswith(RELEASED)     # GENERATED names pass to pretraining()
        if pretraining is None and not released and pretrained_on not in (NO_PRETRAINING, RANDOM_INIT):
            pretraining = self.pretraining(arch, pretrained_on, block=block)
        start = (dict(init="pretrained", parent=pretraining.id) if pretraining is not None else
                 dict(init="mmf", parent=None, start_from=str(Path(pretrained_on[len(RELEASED):]).resolve()))
                 if released else
                 self._from_bert(block) if pretrained_on == NO_PRETRAINING else dict(init="random", parent=None))
        schedule = r.schedule(self.finetune_steps(task))
        record = self._task(task)            # None: not a task (the spec check says so)
        whole = {} if frozen else dict(average_last=r.finetune_average_last, base_lr_scale=r.finetune_base_lr_scale)
        if not frozen and r.finetune_head_from_probe:
            whole["head_from"] = self.finetuning(arch, task, pretrained_on, block, replicate, frozen=True,
                                                 pretraining=pretraining).id
        return self._spec(stage="finetune", arch=arch, dataset=task, **start, seed=finetune_seed(block, replicate),
                          frozen_base=frozen, lr=r.frozen_lr if frozen else r.finetune_lr, beta2=0.999, **whole,
                          answer_vocab=r.answer_vocab, batch_size=r.finetune_batch_size,
                          max_text_len=r.long_text_len if record and record.long_text else r.max_text_len,
                          **schedule)

    def finetune_steps(self, task: str) -> int:
        """Updates for finetuning on ``task``: ``finetune_steps``, or its entry for the task."""
        steps = self.recipe.finetune_steps
        if not isinstance(steps, dict):
            return int(steps)
        if task not in steps:
            raise ValueError(f"finetune_steps gives no updates for task {task!r}; it has {sorted(steps)}")
        return int(steps[task])

    # --- running ------------------------------------------------------------------------
    def _log_run(self, spec: RunSpec, metrics: dict, count: str = "") -> None:
        dataset = spec.dataset + ("+generated" if spec.text_from else "")
        self.log(f"{RUN_LOG_PREFIX}{count}{spec.stage:8s} {spec.arch:11s} {dataset:8s} seed {spec.seed}"
                 f"{' frozen' if spec.frozen_base else ''}: {metrics['wall_seconds']:.0f} s, "
                 + ", ".join(f"{k} {v:.3g}" for k, v in metrics.items()
                             if k in ("mlm_loss", "region_loss", "test_score", "bleu4", "cider", "images")))

    def run(self, spec: RunSpec) -> dict:
        """Metrics of ``spec``, running whatever it needs first."""
        for needed in spec.needs:
            self.run(self._specs[needed])
        status = self.registry.status(spec)
        metrics = self.registry.run(spec)
        if status != "finished":
            self._log_run(spec, metrics)
        return metrics

    def run_many(self, specs: list[RunSpec]) -> list[dict]:
        """Metrics of many runs, training them and whatever they start from.

        A run starts as soon as its parent has finished (no barrier between the pretraining
        and finetuning levels), ``jobs`` at a time in worker processes, each its own Trainer,
        or as one cluster job each (``executor``, see ``jobs``); earlier stages go first since
        later ones wait on them. Each run computes with the threads its spec names, alone or
        not, so its numbers do not depend on the schedule.
        """
        specs = list(dict.fromkeys(specs))
        todo = self._unfinished_with_parents(specs)
        jobs = min(self.recipe.jobs, len(todo))
        if self.recipe.executor != "local" and todo:     # a cluster job per run
            done = iter(range(1, len(todo) + 1))
            run_as_jobs(todo, self.registry, self.recipe.executor, ClusterOptions.from_dict(self.recipe.cluster),
                        lambda s, m: self._log_run(s, m, f"{next(done)}/{len(todo)} "), self.log)
        elif jobs > 1 and not self.recipe.launcher:
            self._schedule(todo, jobs)
        else:       # one after the other: under the launcher, or in this process
            train = self._launch if self.recipe.launcher else self.registry.run
            for k, s in enumerate(todo, 1):
                self._log_run(s, train(s), f"{k}/{len(todo)} ")
        return [self.registry.run(s) for s in specs]     # all finished: read back

    def _launch(self, spec: RunSpec) -> dict:
        """Train ``spec`` in a process started by ``recipe.launcher`` (``vlstudy train``)."""
        import json
        import shlex
        import subprocess
        cmd = shlex.split(self.recipe.launcher) + ["-m", "vlstudy.cli", "train", "--quiet",
                                                   "--root", str(self.registry.root),
                                                   "--spec", json.dumps(dataclasses.asdict(spec))]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"run {spec.id} failed under {self.recipe.launcher!r} "
                               f"(exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        metrics = self.registry.metrics(spec)
        if metrics is None:
            raise RuntimeError(f"run {spec.id} exited under {self.recipe.launcher!r} without writing "
                               f"{self.registry.folder(spec) / 'metrics.json'}")
        return metrics

    def _unfinished_with_parents(self, specs: list[RunSpec]) -> list[RunSpec]:
        """The unfinished runs among ``specs`` and their ancestors, earlier stages first."""
        found: dict[str, RunSpec] = {}

        def visit(spec: RunSpec) -> None:
            if spec.id in found or self.registry.status(spec) == "finished":
                return
            for needed in spec.needs:
                visit(self._specs[needed])
            found[spec.id] = spec
        for s in specs:
            visit(s)
        return sorted(found.values(), key=lambda s: STAGES.index(s.stage))    # stable: keeps order

    def _schedule(self, todo: list[RunSpec], jobs: int) -> None:
        pending, waiting_on = list(todo), {s.id for s in todo}
        pool, running = self._workers(), {}
        try:
            for k in range(1, len(todo) + 1):
                ready = [s for s in pending if not waiting_on.intersection(s.needs)]
                for spec in ready[:jobs - len(running)]:
                    pending.remove(spec)
                    running[pool.submit(_run_in_worker, str(self.registry.root), spec)] = spec
                if not running:
                    raise RuntimeError(f"runs wait on parents that are not scheduled: {pending}")
                done = next(as_completed(running))
                spec = running.pop(done)
                self._log_run(spec, done.result(), f"{k}/{len(todo)} ")
                waiting_on.discard(spec.id)
        except BaseException:
            for future in running:
                future.cancel()
            self._pool = None               # a failed or interrupted pool is not reused
            pool.shutdown(wait=True, cancel_futures=True)   # running runs finish (atomically)
            raise

    def close(self) -> None:
        """Stop the worker processes (they also stop when the Python process ends)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self) -> "Study":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _workers(self) -> ProcessPoolExecutor:
        """The worker processes, started once per Study: each imports torch and transformers
        (~10 s of CPU), so notebooks that call ``run_many`` several times reuse them."""
        if self._pool is None:
            ctx = get_context("spawn")      # forking a process that has run torch is not safe
            self._pool = ProcessPoolExecutor(self.recipe.jobs, mp_context=ctx, initializer=_ignore_interrupts)
        return self._pool

    def finetune_grid(self, archs, pretrained_on, tasks, frozen: bool = False,
                      finetune_seeds: int | None = None) -> pd.DataFrame:
        """One row per (arch, pretraining set, task, block, finetuning replicate): val and test
        metrics. ``finetune_seeds`` overrides the recipe's replicates per block (the variance
        components need more than one)."""
        cells = [(a, p, t, frozen) for a in archs for p in pretrained_on for t in tasks]
        return self.finetune_cells(cells, self.recipe.blocks, finetune_seeds)

    def finetune_cells(self, cells, blocks: int, finetune_seeds: int | None = None) -> pd.DataFrame:
        """``finetune_grid``'s rows for (arch, pretraining set, task, frozen) cells at blocks
        0 … ``blocks``−1: also the cells of the primary comparisons, which a profile gives the
        blocks their power needs beyond the grid's (``primary_blocks``)."""
        replicates = range(finetune_seeds or self.recipe.finetune_seeds)
        keys = [(a, p, t, f, b, j) for a, p, t, f in cells for b in range(blocks) for j in replicates]
        specs = [self.finetuning(a, t, p, b, j, f) for a, p, t, f, b, j in keys]
        return pd.DataFrame([{"arch": a, "pretrained_on": p, "task": t, **_replicate(spec, b, j), "frozen": f,
                              **self._scores(spec, m)}
                             for (a, p, t, f, b, j), spec, m in zip(keys, specs, self.run_many(specs))])

    def after_pretraining(self, pretrainings: list[tuple[str, RunSpec]], task: str,
                          frozen: bool = False) -> pd.DataFrame:
        """Finetune each (name, pretraining run) on ``task``, the recipe's replicates each; list
        a pretraining once per block (its seed is its block). One row per finetuning run: the
        pretraining's fraction, updates and validation losses, then the task's val and test
        metrics (the size sweeps, the checkpoint choice)."""
        keys = [(name, pre, j) for name, pre in pretrainings for j in self.replicates]
        specs = [self.finetuning(pre.arch, task, name, pre.seed, j, frozen, pretraining=pre) for name, pre, j in keys]
        finished = self.run_many(specs)
        losses = {pre.id: self.registry.metrics(pre) or {} for _, pre in pretrainings}
        rows = []
        for (name, pre, j), spec, m in zip(keys, specs, finished):
            rows.append({"arch": pre.arch, "pretrained_on": name, "dataset": pre.dataset,
                         "fraction": pre.train_fraction, "pretrain_steps": pre.steps, "task": task,
                         **_replicate(spec, pre.seed, j), "frozen": frozen, "pretraining_run": pre.id,
                         **{k: v for k, v in losses[pre.id].items() if k in ("mlm_loss", "region_loss")},
                         **self._scores(spec, m)})
        return pd.DataFrame(rows)

    def drift(self, archs, pretrained_on, task: str) -> pd.DataFrame:
        """L1 and angular distances of the attention weights from where whole finetuning on
        ``task`` started to what it kept: one row per (run, stack, layer, matrix)."""
        from .distances import finetuning_drift
        keys = [(a, p, b, j) for a in archs for p in pretrained_on for b in self.blocks for j in self.replicates]
        specs = [self.finetuning(a, task, p, b, j) for a, p, b, j in keys]
        self.run_many(specs)
        frames = [finetuning_drift(spec, self.registry).assign(arch=a, pretrained_on=p, task=task,
                                                               **_replicate(spec, b, j))
                  for (a, p, b, j), spec in zip(keys, specs)]
        return pd.concat(frames, ignore_index=True)

    def test_examples(self, run: str, metric: str = "test_score"):
        """A finished finetuning run's per-example test scores: for ``test_score`` those whose
        mean × 100 is its test score, or None where its metric is not a mean over examples
        (MM-IMDB's micro-F1); for ``test_log_likelihood`` each example's log-likelihood in nats
        (their mean is the run's), None for a run made before runs wrote it."""
        if metric not in ("test_score", "test_log_likelihood"):
            raise ValueError(f"test_examples: no per-example scores for {metric!r}; "
                             "known: test_score, test_log_likelihood")
        if (run, metric) not in self._examples:
            frame = self.registry.predictions(run, "test")
            if metric == "test_log_likelihood":
                column, scale = "log_likelihood", 1.0
            else:
                column = "official" if self.recipe.test_metric == "official" and "official" in frame else "score"
                scale = 100.0
            self._examples[(run, metric)] = frame[column].to_numpy(float) * scale if column in frame else None
        return self._examples[(run, metric)]

    def _scores(self, spec: RunSpec, metrics: dict) -> dict:
        """A finished finetuning run's validation and test metrics (what a results row keeps).
        With ``test_metric: official`` a VQA-like task's ``val_score`` / ``test_score`` are the
        official evaluator's accuracy on its results file; the soft scores stay beside them
        (``*_soft_score``), and a ``test_metric`` column names which a row reports."""
        out = _scores(metrics)
        if self.recipe.test_metric == "soft":
            return out
        record = self._task(spec.dataset)
        if not (record and record.answers):
            return {**out, "test_metric": "task metric"}
        if "test_official_score" not in metrics:
            raise ValueError(f"run {spec.id} was trained before runs wrote official scores: delete "
                             f"{self.registry.folder(spec)} to train it again")
        return {**out, "val_soft_score": metrics["val_score"], "test_soft_score": metrics["test_score"],
                "val_score": metrics["val_official_score"], "test_score": metrics["test_official_score"],
                "test_metric": "official accuracy"}

    def _task(self, dataset: str) -> tasks.Task | None:
        """The task record of a dataset of the recipe's world, read once per Study (None: a
        pretraining set; a dataset the world lacks is left to the spec check, which names what
        it has)."""
        if dataset not in self._tasks:
            root = opened(self.recipe.world, self.recipe.world_seed)
            has = (root.folder / "datasets" / dataset).is_dir()
            self._tasks[dataset] = tasks.of(root.info(dataset)) if has else None
        return self._tasks[dataset]


def _replicate(spec: RunSpec, block: int, replicate: int) -> dict:
    """The columns that place a finetuning run in the design: its block, its replicate in the
    block, its seed and its run id (for its predictions)."""
    return {"block": block, "finetune_seed": replicate, "seed": spec.seed, "run": spec.id}


def _scores(metrics: dict) -> dict:
    """A finished finetuning run's validation and test metrics, as the run wrote them."""
    return {k: v for k, v in metrics.items() if k.startswith(("val_", "test_"))}


def _ignore_interrupts() -> None:
    """Workers leave Ctrl-C (and a kernel's interrupt) to the notebook: it stops handing out
    runs and waits for the running ones to finish, so none is left half-written."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_in_worker(root: str, spec: RunSpec) -> dict:
    return Registry(Path(root)).run(spec)       # the run sets its own thread count (spec.threads)


def finetune_seed(block: int, replicate: int) -> int:
    """The seed of a block's finetuning replicate: the block's own seed for the first, so that
    a block is seed k throughout; further replicates stay clear of other blocks' seeds."""
    return block + 1000 * replicate

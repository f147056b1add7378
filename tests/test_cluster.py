"""One trainer per run (the run lock) and runs as cluster jobs (submitit), on the tiny config."""
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vlstudy import locks
from vlstudy.cli import main as cli_main
from vlstudy.jobs import ClusterOptions, JobFailed, _submit, run_as_jobs
from vlstudy.registry import Registry
from vlstudy.spec import RunSpec

TINY = dict(world="smoke", model="tiny", batch_size=16, max_text_len=24)

# Two processes that start training at the same moment: each says it is ready, then waits for
# the go file, so both ask for the run within milliseconds of each other.
RACE_SCRIPT = """
import json, sys, time
from pathlib import Path
from vlstudy.registry import Registry
from vlstudy.spec import RunSpec
root, me = Path(sys.argv[1]), sys.argv[2]
(root.parent / f"ready-{me}").touch()
while not (root.parent / "go").exists():
    time.sleep(0.005)
lines = []
metrics = Registry(root, log=lines.append).run(RunSpec(**json.loads(sys.argv[3])))
print(json.dumps({"metrics": metrics, "log": lines}))
"""


def test_two_processes_asking_for_one_spec_train_it_once(tmp_path):
    spec = RunSpec("pretrain", "visual_bert", "coco", init="random", steps=30, eval_every=10, beta2=0.98, **TINY)
    script, root = tmp_path / "race.py", tmp_path / "runs"
    script.write_text(RACE_SCRIPT)
    procs = [subprocess.Popen([sys.executable, str(script), str(root), str(k), json.dumps(spec.__dict__)],
                              stdout=subprocess.PIPE, text=True) for k in range(2)]
    deadline = time.time() + 120
    while not all((tmp_path / f"ready-{k}").exists() for k in range(2)):
        assert time.time() < deadline and all(p.poll() is None for p in procs)
        time.sleep(0.01)
    (tmp_path / "go").touch()
    outs = [json.loads(p.communicate(timeout=300)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outs[0]["metrics"] == outs[1]["metrics"]           # wall_seconds too: one training, read twice
    waited = [o for o in outs if any("is being trained by" in line for line in o["log"])]
    assert len(waited) == 1                                   # the other trained it, holding the lock
    trainer_pid = locks.holder(root / spec.id)["pid"]
    assert f"pid {trainer_pid} " in " ".join(waited[0]["log"])
    assert Registry(root).status(spec) == "finished" and not locks.is_held(root / spec.id)


KILL_SCRIPT = """
import json, sys
from vlstudy.registry import Registry
from vlstudy.spec import RunSpec
Registry(sys.argv[1]).run(RunSpec(**json.loads(sys.argv[2])))
"""


def test_a_holder_killed_with_sigkill_frees_the_lock_and_the_next_request_resumes(tmp_path):
    """While it trains, the run is held (and says by whom); killed, it holds nothing, never
    looks finished, and the next request resumes it to the numbers of an unbroken run."""
    spec = RunSpec("pretrain", "visual_bert", "coco", init="random", steps=60, eval_every=10, beta2=0.98, **TINY)
    expected = Registry(tmp_path / "straight").run(spec)
    script, root = tmp_path / "run.py", tmp_path / "runs"
    script.write_text(KILL_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(root), json.dumps(spec.__dict__)])
    trainer_dir, deadline = root / spec.id / "trainer", time.time() + 120
    while not list(trainer_dir.glob("checkpoint-20/trainer_state.json")):
        assert proc.poll() is None and time.time() < deadline, "run ended before it could be killed"
        time.sleep(0.05)
    reg = Registry(root)
    assert reg.status(spec) == "training"
    with pytest.raises(locks.RunBusy, match=f"pid {proc.pid} on "):      # asked not to wait: who holds it
        reg.run(spec, wait=False)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not locks.is_held(root / spec.id) and reg.status(spec) == "unfinished"
    lines = []
    resumed = Registry(root, log=lines.append).run(spec, wait=False)    # free: no waiting needed
    assert any("resuming from checkpoint-" in line for line in lines), lines
    assert reg.status(spec) == "finished"
    for k in ("best_step", "mlm_loss"):
        assert resumed[k] == pytest.approx(expected[k], rel=1e-5), k


def _grid_recipe(**kw):
    from vlstudy.study import Recipe
    return Recipe(world="smoke", model="tiny", batch_size=16, finetune_batch_size=16, bert_steps=10,
                  pretrain_steps=10, finetune_steps=10, evals_per_run=2, max_text_len=24,
                  threads_per_job=1, blocks=1, finetune_seeds=1, **kw)


def test_a_grid_through_submitits_local_executor_matches_the_worker_pool(tmp_path, capsys):
    """BERT → COCO pretraining → two finetunings: every run a job, parents first; the same
    run ids and numbers as the worker pool's; asked again, nothing is submitted."""
    from vlstudy.study import Study
    pool = Study(_grid_recipe(jobs=2), Registry(tmp_path / "pool"), log=lambda m: None)
    expected = pool.finetune_grid(["visual_bert"], ["none", "coco"], ["vqa_d"])
    pool.close()
    lines = []
    recipe = _grid_recipe(executor="submitit_local", cluster={"poll_s": 0.2, "time_limit_min": 30})
    registry = Registry(tmp_path / "cluster", log=lines.append)
    got = Study(recipe, registry, log=lines.append).finetune_grid(["visual_bert"], ["none", "coco"], ["vqa_d"])
    assert got["run"].tolist() == expected["run"].tolist()
    for column in ("test_score", "val_score"):
        assert got[column].tolist() == expected[column].tolist(), column
    submitted = [line for line in lines if line.startswith("[job] ")]
    assert len(submitted) == 4                              # one job per run
    for run_folder in (tmp_path / "cluster").iterdir():
        job = json.loads((run_folder / "job.json").read_text())
        assert job["engine"] == "local" and Path(job["stderr"]).exists()
    for spec_path in (tmp_path / "cluster").glob("*/spec.json"):    # no child started before its parent ended
        parent = json.loads(spec_path.read_text())["parent"]
        if parent:
            started = locks.holder(spec_path.parent)["since"]
            assert started >= (tmp_path / "cluster" / parent / "metrics.json").stat().st_mtime
    lines.clear()
    again = Study(recipe, registry, log=lines.append).finetune_grid(["visual_bert"], ["none", "coco"], ["vqa_d"])
    assert again["test_score"].tolist() == got["test_score"].tolist() and lines == []
    capsys.readouterr()
    assert cli_main(["runs", "--root", str(tmp_path / "cluster")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("4 finished") and out.count("_0_log.err") == 4


def test_a_failed_job_is_reported_with_its_log_and_its_children_are_not_started(tmp_path):
    broken = RunSpec("pretrain", "visual_bert", "coco", init="random", steps=10, eval_every=5, beta2=0.98,
                     **{**TINY, "batch_size": 0})                 # its data loader refuses a batch of 0
    child = RunSpec("finetune", "visual_bert", "vqa_d", init="pretrained", parent=broken.id, steps=10,
                    eval_every=5, lr=1e-3, **TINY)
    registry = Registry(tmp_path, log=lambda m: None)
    with pytest.raises(JobFailed) as failure:
        run_as_jobs([broken, child], registry, "submitit_local", ClusterOptions(poll_s=0.2), lambda s, m: None)
    message = str(failure.value)
    assert f"run {broken.id} (pretrain visual_bert coco seed 0): " in message
    log = Path(json.loads((tmp_path / broken.id / "job.json").read_text())["stderr"])
    assert f"log: {log}" in message and log.exists()
    assert f"run {child.id} (finetune visual_bert vqa_d seed 0): not started: it needs run(s) ['{broken.id}']" in message
    assert registry.status(broken) == "failed" and "Traceback" in registry.failure(broken)["traceback"]
    assert registry.status(child) == "new"


FAKE_SBATCH = """#!/bin/sh
cp "$1" "$(dirname "$0")/script-$(ls "$(dirname "$0")" | grep -c script)"
echo "Submitted batch job 4$(ls "$(dirname "$0")" | grep -c script)"
"""


def test_slurm_jobs_carry_the_options_and_wait_for_their_parents(tmp_path, monkeypatch, capsys):
    """SLURM is not on this machine: a stand-in ``sbatch`` keeps the scripts submitit writes
    (and ``srun`` exists), so the test reads what the cluster would be asked for."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("sbatch", FAKE_SBATCH), ("srun", "#!/bin/sh\nexit 1\n")):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    options = ClusterOptions.from_dict({"partition": "gpu", "account": "lab", "gpus_per_run": 8,
                                        "time_limit_min": 240, "sbatch": {"qos": "high"}})
    registry = Registry(tmp_path / "runs", log=lambda m: None)
    parent = RunSpec("pretrain", "vilbert", "coco", init="random", steps=10, eval_every=5, beta2=0.98, **TINY)
    child = RunSpec("finetune", "vilbert", "vqa_d", init="pretrained", parent=parent.id, steps=10, eval_every=5,
                    lr=1e-3, **TINY)
    first = _submit(registry, parent, "slurm", options, [])
    second = _submit(registry, child, "slurm", options, [first.job_id])
    assert (first.job_id, second.job_id) == ("41", "42")
    script = (bin_dir / "script-1").read_text()
    for line in ("#SBATCH --partition=gpu", "#SBATCH --account=lab", "#SBATCH --gpus-per-node=8",
                 "#SBATCH --ntasks-per-node=8", "#SBATCH --time=240", "#SBATCH --qos=high",
                 "#SBATCH --kill-on-invalid-dep=yes", "#SBATCH --dependency=afterok:41"):
        assert line in script, line
    assert "--dependency" not in (bin_dir / "script-0").read_text()
    assert registry.status(child) == "waiting"
    capsys.readouterr()
    assert cli_main(["runs", "--root", str(registry.root), "--status", "waiting"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("2 waiting") and str(registry.folder(child) / "jobs" / "42_0_log.err") in out


def test_the_executor_options_reach_the_notebooks_that_train(monkeypatch):
    from types import SimpleNamespace

    from vlstudy.runner import executor_settings, plan_study
    from vlstudy.study import Recipe
    args = SimpleNamespace(executor="slurm", partition="gpu", account=None, gpus_per_run=8, time_limit=None)
    settings = executor_settings(args)
    assert settings == {"executor": "slurm", "launcher": "", "cluster": {"partition": "gpu", "gpus_per_run": 8}}
    plan = plan_study("smoke", ["world_tour", "dataset_size"], recipe=settings)
    assert "recipe" not in plan["world_tour"][1]                       # it trains nothing
    recipe = Recipe.from_params(plan["dataset_size"][1])
    assert recipe.executor == "slurm" and recipe.cluster == {"partition": "gpu", "gpus_per_run": 8}
    with pytest.raises(ValueError, match="add --executor slurm"):
        executor_settings(SimpleNamespace(executor=None, partition="gpu", account=None, gpus_per_run=None,
                                          time_limit=None))
    with pytest.raises(ValueError, match="add --executor slurm"):                  # local takes no cluster options
        executor_settings(SimpleNamespace(executor="local", partition="gpu", account=None, gpus_per_run=None,
                                          time_limit=None))
    local = executor_settings(SimpleNamespace(executor="local", partition=None, account=None, gpus_per_run=None,
                                              time_limit=None))
    assert local == {"executor": "local"}                  # the profile's launcher (torchrun) stays


def test_a_run_another_process_is_training_is_waited_for_not_submitted(tmp_path):
    """Asked for runs of which one is held by another process (here: this test, through the
    lock), the cluster path submits nothing for it and takes its metrics when it ends."""
    import threading

    spec = RunSpec("pretrain", "visual_bert", "coco", init="random", steps=10, eval_every=5, beta2=0.98, **TINY)
    registry = Registry(tmp_path, log=lambda m: None)
    folder = registry.folder(spec)
    folder.mkdir(parents=True)
    spec.write(folder)
    finished = []
    with locks.hold(folder, lambda: False):
        assert registry.status(spec) == "training"
        worker = threading.Thread(target=run_as_jobs, args=([spec], registry, "submitit_local",
                                                            ClusterOptions(poll_s=0.1), lambda s, m: finished.append(m)))
        worker.start()
        time.sleep(0.5)
        (folder / "metrics.json").write_text(json.dumps({"mlm_loss": 1.5, "wall_seconds": 1.0}))
    worker.join(timeout=30)
    assert finished == [{"mlm_loss": 1.5, "wall_seconds": 1.0}] and not (folder / "job.json").exists()


def test_a_status_probe_is_never_taken_for_a_trainer(tmp_path):
    """``is_held`` takes the lock for an instant; a request that meets it must not call the
    run busy (measured before the fix: 11 false RunBusy in 300 requests beside a probe loop)."""
    import threading
    folder = tmp_path / "run"
    folder.mkdir()
    stop = threading.Event()

    def probe():
        while not stop.is_set():
            locks.is_held(folder)
    prober = threading.Thread(target=probe)
    prober.start()
    try:
        for _ in range(100):
            with locks.hold(folder, lambda: False, wait=False):
                pass
    finally:
        stop.set()
        prober.join()


def test_ranks_above_zero_stop_when_their_rank_zero_failed(tmp_path):
    """A note of this group with the lock free and no metrics: rank 0 signed and stopped."""
    folder = tmp_path / "run"
    folder.mkdir()
    with locks.hold(folder, lambda: False):
        pass                                               # signed as this process's group, released
    with pytest.raises(RuntimeError, match="rank 0 of this group stopped before the run finished"):
        locks.wait_for_group_holder(folder, lambda: False, poll_s=0.01)
    locks.wait_for_group_holder(folder, lambda: True)      # finished: nothing to wait for


def test_the_bert_stage_and_the_captioner_start_from_their_random_init(smoke_world):
    """Whatever init their spec names (the default is "bert"), as before stages were objects."""
    from vlstudy.train import build_model
    bert = RunSpec("bert", "bert", "corpus", **TINY)          # init "bert", no parent
    assert build_model(bert, smoke_world, None) is not None

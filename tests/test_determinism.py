"""A run's numbers are a function of its spec: the same whatever torch thread count its
process had and whichever process trains it (the spec's ``threads`` decides)."""
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from vlstudy import train as train_module
from vlstudy.registry import Registry
from vlstudy.spec import RunSpec

# The "small" model, not the tests' "tiny": tiny's tensors are too small for torch to split a
# reduction over 2 threads, so it gives the same numbers at any thread count, fix or no fix.
SMALL = dict(world="smoke", model="small", batch_size=16, max_text_len=24, warmup=1, threads=1)
TIMING = ("wall_seconds", "train_seconds")          # what may differ between identical runs


def chain_specs() -> list[RunSpec]:
    """BERT stage → VisualBERT pretraining → VQA-D finetuning, a handful of updates each."""
    bert = RunSpec("bert", "bert", "corpus", init="random", steps=6, eval_every=3, lr=1e-3, beta2=0.98, **SMALL)
    pre = RunSpec("pretrain", "visual_bert", "coco", parent=bert.id, steps=6, eval_every=3, lr=1e-3, beta2=0.98, **SMALL)
    ft = RunSpec("finetune", "visual_bert", "vqa_d", init="pretrained", parent=pre.id, steps=6, eval_every=3,
                 lr=1e-3, **SMALL)
    return [bert, pre, ft]


def train_chain(root: str, threads_before: int) -> dict:
    """Train the chain in a fresh registry at ``root`` with torch set to ``threads_before``
    threads first: each run's metrics (less timing) and torch's thread count after it, and
    the finetuning's test predictions. Module-level, so a spawned worker can run it."""
    torch.set_num_threads(threads_before)
    registry = Registry(Path(root))
    out = {"metrics": [], "threads_after": []}
    for spec in chain_specs():
        metrics = registry.run(spec)
        out["metrics"].append({k: v for k, v in metrics.items() if k not in TIMING})
        out["threads_after"].append(torch.get_num_threads())
    out["predictions"] = registry.predictions(chain_specs()[-1], "test").to_dict("records")
    return out


def _in_process(root: Path, threads_before: int) -> dict:
    previous = torch.get_num_threads()
    try:
        return train_chain(str(root), threads_before)
    finally:
        torch.set_num_threads(previous)                  # leave the test process as it was


def test_same_spec_same_numbers_across_threads_and_processes(tmp_path):
    """(a) in-process after torch.set_num_threads(1), (b) after set_num_threads(2), (c) in a
    spawned worker process set to 2 threads (as the study once gave a lone run): identical
    losses, scores, predictions and weights; each run leaves torch's thread count as it was."""
    one = _in_process(tmp_path / "one_thread", 1)
    two = _in_process(tmp_path / "two_threads", 2)
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        worker = pool.submit(train_chain, str(tmp_path / "worker"), 2).result(timeout=300)
    assert one["threads_after"] == [1, 1, 1]
    assert two["threads_after"] == [2, 2, 2] and worker["threads_after"] == [2, 2, 2]
    assert "mlm_loss" in one["metrics"][1] and "test_score" in one["metrics"][2]
    for other in (two, worker):
        assert other["metrics"] == one["metrics"]                       # exactly, every loss and score
        assert other["predictions"] == one["predictions"]
    for spec in chain_specs():
        weights = [load_file(str(tmp_path / name / spec.id / "model.safetensors"))
                   for name in ("one_thread", "two_threads", "worker")]
        assert all(torch.equal(w[k], weights[0][k]) for w in weights[1:] for k in weights[0]), spec.stage


def test_a_run_computes_with_its_spec_threads_and_restores_them_on_error(tmp_path, monkeypatch):
    seen = []

    def failing_run(*args, **kwargs):
        seen.append(torch.get_num_threads())
        raise RuntimeError("training failed")

    monkeypatch.setattr(train_module, "_train_run", failing_run)
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with pytest.raises(RuntimeError, match="training failed"):
            Registry(tmp_path).run(chain_specs()[0].replace(threads=1))
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)

"""Training and the registry on the tiny config and the smoke world."""
import json
import os
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from vlstudy import registry as registry_module
from vlstudy.registry import Registry
from vlstudy.fit import last_checkpoint
from vlstudy.spec import RunSpec

TINY = dict(world="smoke", model="tiny", batch_size=16, max_text_len=24)


def bert_spec():
    return RunSpec("bert", "bert", "corpus", init="random", steps=20, eval_every=10, beta2=0.98, **TINY)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """BERT stage → ViLBERT pretraining → whole and frozen-base finetuning on VQA-D."""
    reg = Registry(tmp_path_factory.mktemp("runs"))
    t = time.perf_counter()
    bert = bert_spec()
    reg.run(bert)
    pre = RunSpec("pretrain", "vilbert", "coco", parent=bert.id, steps=20, eval_every=10, beta2=0.98, **TINY)
    reg.run(pre)
    ft = RunSpec("finetune", "vilbert", "vqa_d", init="pretrained", parent=pre.id, steps=30, eval_every=10,
                 lr=1e-3, **TINY)
    frozen = ft.replace(frozen_base=True)
    metrics = {"finetune": reg.run(ft), "frozen": reg.run(frozen)}
    return reg, {"bert": bert, "pre": pre, "ft": ft, "frozen": frozen}, metrics, time.perf_counter() - t


def test_chain_runs_and_reports(chain):
    reg, specs, metrics, seconds = chain
    pre = reg.metrics(specs["pre"])
    assert pre["mlm_loss"] > 0 and pre["region_loss"] >= 0
    for m in metrics.values():
        assert 0 <= m["test_score"] <= 100 and 0 <= m["val_score"] <= 100
    assert (reg.folder(specs["bert"]) / "bert" / "model.safetensors").exists()
    assert list((reg.folder(specs["ft"]) / "trainer").rglob("events.out.tfevents*"))   # TensorBoard
    table = reg.table()
    assert set(table["status"]) == {"finished"} and len(table) == 4


def _untrained_test_score(reg, spec) -> float:
    """The test score of the run's model where training started (its head untrained)."""
    from vlstudy.data.batching import VLCollator
    from vlstudy.stages import get as stage
    from vlstudy.tasks import get as task_of
    from vlstudy.train import build_model
    from vlstudy.world import open_world
    root = open_world("smoke")
    torch.manual_seed(spec.seed)
    model = build_model(spec, root, reg.folder(spec.parent)).eval()
    test = stage(spec.stage).datasets(spec, root)["test"]
    batch = VLCollator(test, root.tokenizer.mask_token_id, len(root.tokenizer), 0.0, 0.0)(list(range(len(test))))
    with torch.no_grad():
        logits = model(**batch)["logits"]
    return task_of(root.info(spec.dataset).task).score(logits.numpy(), batch["targets"].numpy())["score"]


def test_finetuning_learns_something(chain):
    """A model that learned nothing would pass a 0-100 range check. At the tiny config the
    smoke world's VQA-D score is too coarse to move in 30 updates (measured: 3.3 before and
    after, one test answer in 30), so the evidence is the task loss: the validation loss falls
    by more than 5 % between the first and the last evaluation (measured: 28.4 to 25.6, whole
    and frozen alike), and the score is no worse than the untrained start's."""
    reg, specs, metrics, _ = chain
    for kind, spec in (("finetune", specs["ft"]), ("frozen", specs["frozen"])):
        state = json.loads((last_checkpoint(reg.folder(spec) / "trainer") / "trainer_state.json").read_text())
        evals = [h["eval_loss"] for h in state["log_history"] if "eval_loss" in h]
        train = [h["loss"] for h in state["log_history"] if "loss" in h]
        assert len(evals) >= 2 and evals[-1] < 0.95 * evals[0], (kind, evals)
        assert train[-1] < train[0], (kind, train)
        assert metrics[kind]["test_score"] >= _untrained_test_score(reg, spec), kind


def test_frozen_base_is_bit_identical(chain):
    reg, specs, _, _ = chain
    before = load_file(str(reg.folder(specs["pre"]) / "model.safetensors"))
    after = load_file(str(reg.folder(specs["frozen"]) / "model.safetensors"))
    base_keys = [k for k in after if k.startswith("base.")]
    assert base_keys and all(torch.equal(after[k], before[k]) for k in base_keys)
    whole = load_file(str(reg.folder(specs["ft"]) / "model.safetensors"))
    assert not all(torch.equal(whole[k], before[k]) for k in base_keys)     # whole finetuning moved it


def test_frozen_head_trained_on_cached_base_outputs_scores_the_same_end_to_end(chain):
    """The frozen run trains its head on base outputs computed once (``cache_base_outputs``).
    Those outputs are the whole model's, example by example, and the saved weights, run end
    to end on raw batches, give the test score the run reported."""
    from vlstudy.data.batching import VLCollator
    from vlstudy.tasks import get as task_of
    from vlstudy.frozen_base import HeadOnly, cache_base_outputs
    from vlstudy.stages import get as stage
    from vlstudy.train import build_model
    from vlstudy.world import open_world
    reg, specs, metrics, _ = chain
    spec, root = specs["frozen"], open_world("smoke")
    model = build_model(spec, root, reg.folder(spec.parent))
    start = {k: v.clone() for k, v in model.classifier.state_dict().items()}
    saved = load_file(str(reg.folder(spec) / "model.safetensors"))
    model.load_state_dict(saved)
    assert any(not torch.equal(start[k], saved[f"classifier.{k}"]) for k in start)   # the head learned
    test = stage(spec.stage).datasets(spec, root)["test"]
    collate = VLCollator(test, root.tokenizer.mask_token_id, len(root.tokenizer), 0.0, 0.0)
    cached, _ = cache_base_outputs(model, {"test": test}, {"test": collate}, batch_size=7)
    model.eval()
    with torch.no_grad():
        batch = collate(list(range(len(test))))
        logits = model(**batch)["logits"]
        from_cache = HeadOnly(model)(cached["test"].pooled)["logits"]
    torch.testing.assert_close(from_cache, logits, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(cached["test"].targets, batch["targets"])
    score = task_of(root.info(spec.dataset).task).score(logits.numpy(), batch["targets"].numpy())["score"]
    assert score == pytest.approx(metrics["frozen"]["test_score"], abs=1e-4)


def test_finetuning_drift_starts_from_the_parent(chain):
    """The rebuilt start of a finetuning run is its parent's weights: a frozen base has not
    moved at all, and whole finetuning measures the same as comparing with the parent file."""
    from vlstudy.distances import base_state, finetuning_drift, weight_distances
    reg, specs, _, _ = chain
    frozen = finetuning_drift(specs["frozen"], reg)
    assert len(frozen) == (3 + 2 + 2 * 2) * 4                  # text, visual, co-attention blocks
    assert (frozen["l1"] == 0).all() and frozen["angular"].max() < 1e-6
    moved = finetuning_drift(specs["ft"], reg)
    direct = weight_distances(base_state(reg.folder(specs["pre"]) / "model.safetensors"),
                              base_state(reg.folder(specs["ft"]) / "model.safetensors"))
    assert (moved["l1"] > 0).any()
    assert moved["l1"].tolist() == pytest.approx(direct["l1"].tolist(), rel=1e-6)

def test_best_checkpoint_is_best_on_validation(chain):
    reg, specs, metrics, _ = chain
    state = last_checkpoint(reg.folder(specs["ft"]) / "trainer") / "trainer_state.json"
    history = json.loads(state.read_text())["log_history"]
    evals = {h["step"]: h["eval_score"] for h in history if "eval_score" in h}
    best_step = max(evals, key=lambda s: (evals[s], -s))
    assert metrics["finetune"]["best_step"] == best_step
    assert metrics["finetune"]["val_score"] == pytest.approx(max(evals.values()))


def _score_from_predictions(frame) -> float:
    """A split's score from its per-example rows: the mean score, or micro-F1 from the counts."""
    if "score" in frame:
        return 100 * float(frame["score"].mean())
    tp, fp, fn = (int(frame[k].sum()) for k in ("tp", "fp", "fn"))
    return 100 * 2 * tp / (2 * tp + fp + fn)


@pytest.mark.parametrize("which", ["ft", "frozen", "snli_ve", "mmimdb"])
def test_predictions_reproduce_the_run_scores(chain, which):
    """Every finetuning run (VQA-D whole and frozen on cached base outputs, SNLI-VE, MM-IMDB)
    writes its val and test predictions, one row per record in split order, before
    metrics.json; they give back the scores it reported."""
    from vlstudy.world import open_world
    reg, specs, _, _ = chain
    spec = specs.get(which) or specs["ft"].replace(dataset=which, steps=10, eval_every=5)
    metrics = reg.run(spec)
    root = open_world("smoke")
    info = root.info(spec.dataset)
    folder = reg.folder(spec)
    for split in ("val", "test"):
        frame = reg.predictions(spec.id if split == "val" else spec, split)
        records = root.records(spec.dataset, split)
        assert frame["id"].tolist() == [r.id for r in records]
        assert _score_from_predictions(frame) == pytest.approx(metrics[f"{split}_score"], abs=1e-6)
        # the continuous score beside it: a log-likelihood per example whose mean is the run's
        assert float(frame["log_likelihood"].mean()) == pytest.approx(metrics[f"{split}_log_likelihood"], abs=1e-9)
        assert (frame["log_likelihood"] <= 0).all() and frame["log_likelihood"].lt(0).any()
        assert (folder / f"predictions-{split}.jsonl").stat().st_mtime_ns <= (folder / "metrics.json").stat().st_mtime_ns
        if info.task == "vqa":
            assert set(frame["prediction"]) <= set(root.answer_vocab(spec.dataset).answers)
            assert frame["score"].between(0, 1).all()
        elif info.task == "snli_ve":
            assert frame["label"].tolist() == [info.label_names[r.label] for r in records]
            assert frame["score"].tolist() == [float(p == t) for p, t in zip(frame["prediction"], frame["label"])]
        else:
            assert "score" not in frame                  # micro-F1 is not a mean over examples
            assert [sorted(x) for x in frame["labels"]] == [sorted(r.labels) for r in records]
            for row in frame.itertuples():
                predicted, true = set(row.prediction), set(row.labels)
                assert (row.tp, row.fp, row.fn) == (len(predicted & true), len(predicted - true), len(true - predicted))


def test_log_likelihood_by_hand():
    """The continuous score of each task kind, written out: soft-score-weighted log-softmax
    of the answers (0 where no gold answer is in the vocabulary), the gold class's
    log-softmax, the mean binary log-likelihood of multi-hot labels."""
    import numpy as np
    from vlstudy import tasks
    logits = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 0.5]])
    log_softmax = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    soft = np.array([[0.6, 0.3, 0.0], [0.0, 0.0, 0.0]])
    expected = (0.6 * log_softmax[0, 0] + 0.3 * log_softmax[0, 1]) / 0.9
    assert tasks.get("vqa").log_likelihood(logits, soft) == pytest.approx([expected, 0.0])
    assert tasks.get("snli_ve").log_likelihood(logits, np.array([1, 2])) == pytest.approx(
        [log_softmax[0, 1], log_softmax[1, 2]])
    labels = np.array([[1, 0, 1], [0, 0, 0]])
    sigmoid = 1 / (1 + np.exp(-logits))
    by_hand = (labels * np.log(sigmoid) + (1 - labels) * np.log(1 - sigmoid)).mean(1)
    assert tasks.get("mmimdb").log_likelihood(logits, labels) == pytest.approx(by_hand)
    assert tasks.get("mmimdb").log_likelihood(np.array([[800.0, -800.0]]), np.array([[1, 0]])) == pytest.approx([0.0])


def test_averaged_checkpoints_and_a_slower_base(chain):
    """``average_last``: no evaluation during training, and the weights kept are the mean of
    the last k checkpoints (the model scored is that mean). ``base_lr_scale``: the base's
    parameter groups learn at that share of the rate, the head's at the rate."""
    from safetensors.torch import load_file
    from vlstudy.fit import checkpoints
    reg, specs, _, _ = chain
    spec = specs["ft"].replace(average_last=2, base_lr_scale=0.25)
    metrics = reg.run(spec)
    folder = reg.folder(spec)
    kept = checkpoints(folder / "trainer")
    assert [int(k.name.split("-")[1]) for k in kept] == [20, 30]          # the last 2 of every 10 updates
    state = json.loads((kept[-1] / "trainer_state.json").read_text())
    assert not any("eval_loss" in h for h in state["log_history"]) and metrics["best_step"] is None
    last = [load_file(str(k / "model.safetensors")) for k in kept]
    final = load_file(str(folder / "model.safetensors"))
    name = "classifier.2.weight"
    assert torch.allclose(final[name], (last[0][name].double() + last[1][name].double()).div(2).float())
    assert not torch.equal(final[name], last[1][name])
    assert "test_log_likelihood" in metrics and spec.id != specs["ft"].id
    # the run's optimizer had the base at a quarter of the rate: the logged rate is the base's group
    unscaled = json.loads((last_checkpoint(reg.folder(specs["ft"]) / "trainer") / "trainer_state.json").read_text())
    logged = {h["step"]: h["learning_rate"] for h in state["log_history"] if "learning_rate" in h}
    base = {h["step"]: h["learning_rate"] for h in unscaled["log_history"] if "learning_rate" in h}
    assert logged and all(logged[k] == pytest.approx(0.25 * base[k]) for k in logged if k in base)
    from vlstudy.fit import _trainer_class
    from transformers import TrainingArguments
    from vlstudy.train import build_model
    from vlstudy.world import open_world
    model = build_model(spec, open_world("smoke"), reg.folder(specs["pre"]))
    trainer = _trainer_class()(model=model, args=TrainingArguments(output_dir=str(folder / "probe"), learning_rate=1e-3,
                                                                    weight_decay=0.01, report_to=[], use_cpu=True))
    trainer.base_lr_scale = 0.25
    optimizer = trainer.create_optimizer()
    by_group = {(round(g["lr"], 9), g["weight_decay"]) for g in optimizer.param_groups}
    assert by_group == {(2.5e-4, 0.01), (2.5e-4, 0.0), (1e-3, 0.01), (1e-3, 0.0)}
    head = {id(p) for p in model.classifier.parameters()}
    for group in optimizer.param_groups:
        assert all((id(p) in head) == (group["lr"] == 1e-3) for p in group["params"])
    with pytest.raises(ValueError, match="average_last"):
        specs["ft"].replace(average_last=4)                                 # 30 updates hold 3 checkpoints
    with pytest.raises(ValueError, match="evenly spaced"):
        specs["ft"].replace(average_last=2, steps=35)
    with pytest.raises(ValueError, match="only finetuning"):
        specs["pre"].replace(average_last=1)


def test_a_whole_model_run_starts_its_head_from_a_frozen_base_probe(chain):
    """``head_from`` (LP-FT): the whole model trains from the frozen-base run's head, not a
    random one, on the same base; a probe of another task or base is refused, loudly."""
    from vlstudy.train import build_model
    from vlstudy.world import open_world
    reg, specs, _, _ = chain
    spec = specs["ft"].replace(head_from=specs["frozen"].id)
    assert spec.needs == (specs["pre"].id, specs["frozen"].id) and spec.id != specs["ft"].id
    probe_head = {k: v for k, v in load_file(str(reg.folder(specs["frozen"]) / "model.safetensors")).items()
                  if k.startswith("classifier.")}
    model = build_model(spec, open_world("smoke"), reg.folder(specs["pre"]), reg.folder(specs["frozen"]))
    ours = model.classifier.state_dict()
    assert probe_head and all(torch.equal(ours[k[len("classifier."):]], v) for k, v in probe_head.items())
    fresh = build_model(specs["ft"], open_world("smoke"), reg.folder(specs["pre"]))
    assert not torch.equal(fresh.classifier.state_dict()["2.weight"], ours["2.weight"])
    metrics = reg.run(spec)
    assert metrics["test_score"] >= 0 and (reg.folder(spec) / "model.safetensors").exists()
    from vlstudy.distances import finetuning_drift          # rebuilds the start, probe's head and all
    assert finetuning_drift(spec, reg)["l1"].gt(0).all()
    with pytest.raises(ValueError, match="needs that run's folder"):
        build_model(spec, open_world("smoke"), reg.folder(specs["pre"]))
    with pytest.raises(ValueError, match="not a frozen-base run of the same task"):
        build_model(specs["ft"].replace(head_from=specs["ft"].id), open_world("smoke"), reg.folder(specs["pre"]),
                    reg.folder(specs["ft"]))
    with pytest.raises(ValueError, match="head_from"):
        specs["frozen"].replace(head_from=specs["frozen"].id)


def test_the_recipe_starts_whole_model_heads_from_the_probe_of_the_same_seed():
    from vlstudy.study import Recipe, Study
    study = Study(Recipe(world="smoke", model="tiny", blocks=2, finetune_head_from_probe=True))
    whole = study.finetuning("visual_bert", "vqa_d", "coco", block=1, replicate=1)
    probe = study.finetuning("visual_bert", "vqa_d", "coco", block=1, replicate=1, frozen=True)
    assert whole.head_from == probe.id and probe.head_from is None and whole.seed == probe.seed
    assert study.finetuning("visual_bert", "vqa_d", "none").head_from is not None
    assert Study(Recipe(world="smoke", model="tiny")).finetuning("visual_bert", "vqa_d", "coco").head_from is None


def test_vqa_runs_write_the_official_results_file_and_its_official_score(chain, tmp_path):
    """A VQA-like run's test predictions as the official results JSON; scored by the official
    evaluator (``vlstudy eval vqa`` on questions and annotations files of the split's records)
    it gives the run's ``test_official_score``, the mean of the per-question accuracies."""
    from vlstudy.metrics import evaluate_vqa_files, vqa_accuracy
    from vlstudy.world import open_world
    reg, specs, metrics, _ = chain
    records = open_world("smoke").records("vqa_d", "test")
    results = json.loads((reg.folder(specs["ft"]) / "results-test.json").read_text())
    assert [r["question_id"] for r in results] == [r.id for r in records]
    by_hand = 100 * sum(vqa_accuracy(res["answer"], list(r.answers)) for res, r in zip(results, records)) / len(records)
    assert metrics["finetune"]["test_official_score"] == pytest.approx(by_hand, abs=1e-9)
    assert reg.predictions(specs["ft"])["official"].mean() * 100 == pytest.approx(by_hand, abs=1e-9)
    q = tmp_path / "questions.json"
    q.write_text(json.dumps({"questions": [{"question_id": r.id, "image_id": r.image_id, "question": r.text}
                                           for r in records]}))
    a = tmp_path / "annotations.json"
    a.write_text(json.dumps({"annotations": [
        {"question_id": r.id, "image_id": r.image_id, "answer_type": r.answer_type, "question_type": "what",
         "answers": [{"answer": x, "answer_id": k + 1} for k, x in enumerate(r.answers)]} for r in records]}))
    official = evaluate_vqa_files(q, a, reg.folder(specs["ft"]) / "results-test.json")
    assert official["overall"] == pytest.approx(by_hand, abs=0.005)       # the evaluator rounds to 2 places


def test_runs_without_predictions_say_which_file(chain):
    reg, specs, _, _ = chain
    with pytest.raises(FileNotFoundError, match="predictions-test.jsonl"):
        reg.predictions(specs["pre"])
    with pytest.raises(ValueError, match="'train'"):
        reg.predictions(specs["ft"], "train")


def test_same_spec_trains_nothing(chain, monkeypatch):
    reg, specs, metrics, _ = chain
    monkeypatch.setattr(registry_module, "train_run", lambda *a, **k: pytest.fail("retrained"))
    assert reg.run(specs["ft"]) == metrics["finetune"]


def test_unfinished_parent_is_an_error(tmp_path):
    spec = RunSpec("pretrain", "visual_bert", "coco", parent=bert_spec().id, **TINY)
    with pytest.raises(ValueError, match="has not finished"):
        Registry(tmp_path).run(spec)


def test_bad_specs():
    with pytest.raises(ValueError, match="needs a parent"):
        RunSpec("pretrain", "visual_bert", "coco", init="bert")
    with pytest.raises(ValueError, match="only finetuning"):
        RunSpec("pretrain", "visual_bert", "coco", init="random", frozen_base=True)
    with pytest.raises(ValueError, match="unknown stage"):
        RunSpec("distil", "visual_bert", "coco", init="random")
    with pytest.raises(ValueError, match="mask_probability"):
        RunSpec("pretrain", "visual_bert", "coco", init="random", mask_probability=1.5)
    with pytest.raises(ValueError, match="threads"):
        RunSpec("pretrain", "visual_bert", "coco", init="random", threads=0)
    assert bert_spec().replace(threads=2).id != bert_spec().id          # part of what a run is
    for field, bad in (("precision", "fp8"), ("answer_vocab", 0), ("loader_workers", -1)):
        with pytest.raises(ValueError, match=field):
            bert_spec().replace(**{field: bad})
    assert bert_spec().replace(precision="bf16").id != bert_spec().id
    assert bert_spec().replace(answer_vocab=100).id != bert_spec().id
    assert bert_spec().replace(loader_workers=2).id == bert_spec().id    # how it is fed, not what


def test_loader_workers_leave_the_numbers_alone_and_bf16_trains_on_the_cpu(tmp_path):
    spec = RunSpec("pretrain", "visual_bert", "coco", init="random", steps=20, eval_every=10, beta2=0.98, **TINY)
    alone = Registry(tmp_path / "a").run(spec)
    fed = Registry(tmp_path / "b").run(spec.replace(loader_workers=2))
    assert {k: v for k, v in fed.items() if "seconds" not in k} == \
        {k: v for k, v in alone.items() if "seconds" not in k}
    bf16 = Registry(tmp_path / "c").run(spec.replace(precision="bf16"))
    assert abs(bf16["mlm_loss"] - alone["mlm_loss"]) < 0.05 * alone["mlm_loss"]    # autocast, same run
    with pytest.raises(ValueError, match="fp16 mixed precision needs a GPU"):
        Registry(tmp_path / "d").run(spec.replace(precision="fp16"))


def _train_losses(registry_root, spec) -> list[float]:
    state = last_checkpoint(registry_root / spec.id / "trainer") / "trainer_state.json"
    return [h["loss"] for h in json.loads(state.read_text())["log_history"] if "loss" in h]


def test_ddp_two_processes_follow_the_single_process_run(tmp_path):
    """torchrun, 2 processes on gloo, the same global batch and seed as one process."""
    import socket
    spec = RunSpec("pretrain", "visual_bert", "coco", init="random", steps=60, eval_every=20, lr=2e-3,
                   warmup=5, beta2=0.98, **TINY)
    Registry(tmp_path / "single").run(spec)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_addr", "127.0.0.1", "--master_port", str(port), "-m", "vlstudy.cli",
                           "train", "--spec", json.dumps(spec.__dict__), "--root", str(tmp_path / "ddp"),
                           "--quiet"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    single, ddp = _train_losses(tmp_path / "single", spec), _train_losses(tmp_path / "ddp", spec)
    moved = single[0] - single[-1]
    assert moved > 0.5                                           # training moved the loss ...
    assert abs(ddp[-1] - single[-1]) < 0.15 * moved              # ... and DDP moved it alike
    assert abs(ddp[0] - single[0]) < 0.15 * moved


def test_finetuning_updates_per_task():
    """One number for every task, or one per task; a task missing from the table is an error."""
    from vlstudy.study import Recipe, Study
    study = Study(Recipe(finetune_steps={"vqa_d": 600, "mmimdb": 300}, finetune_batch_size=32))
    spec = study.finetuning("visual_bert", "mmimdb", "none")
    assert (spec.steps, spec.eval_every, spec.batch_size) == (300, 60, 32)
    assert study.finetune_steps("vqa_d") == 600 and study.pretraining("visual_bert", "coco").batch_size == 64
    with pytest.raises(ValueError, match="no updates for task 'vizwiz'"):
        study.finetuning("visual_bert", "vizwiz", "none")
    assert Study(Recipe(finetune_steps=20)).finetune_steps("vizwiz") == 20


def test_recipe_from_notebook_parameters_ignores_the_rest():
    from vlstudy.study import Recipe
    recipe = Recipe.from_params({"finetune_steps": 7, "seeds": [0, 1], "profile": "smoke", "model": None})
    assert recipe.finetune_steps == 7 and recipe == Recipe(finetune_steps=7)     # None: the default


def test_runs_side_by_side_start_when_their_parent_has_finished(tmp_path):
    """``run_many`` with two worker processes: every run and its ancestors are trained once,
    and no run starts before its parent has finished."""
    from vlstudy.study import Recipe, Study
    recipe = Recipe(world="smoke", model="tiny", batch_size=16, finetune_batch_size=16, bert_steps=10,
                    pretrain_steps=10, finetune_steps=10, evals_per_run=2, max_text_len=24, jobs=2,
                    threads_per_job=1, blocks=1, finetune_seeds=1)
    lines = []
    study = Study(recipe, Registry(tmp_path), log=lines.append)
    grid = study.finetune_grid(["visual_bert"], ["none", "coco", "vqa_p"], ["vqa_d"])
    assert len(grid) == 3 and grid["test_score"].between(0, 100).all()
    assert len(lines) == 6 and lines[-1].startswith("[run] 6/6 ")       # BERT, 2 pretrainings, 3 finetunings
    table = study.registry.table()
    assert len(table) == 6 and set(table["status"]) == {"finished"}
    for spec_path in tmp_path.glob("*/spec.json"):
        parent = json.loads(spec_path.read_text())["parent"]
        if parent:
            assert spec_path.stat().st_mtime >= (tmp_path / parent / "metrics.json").stat().st_mtime
    # a primary comparison's cells at more blocks than the grid: block 0 is the grid's run
    more = study.finetune_cells([("visual_bert", "coco", "vqa_d", False)], blocks=2)
    assert more["block"].tolist() == [0, 1] and more["frozen"].tolist() == [False, False]
    assert more["run"].iloc[0] == grid.set_index("pretrained_on").loc["coco", "run"]
    assert more["test_score"].iloc[0] == grid.set_index("pretrained_on").loc["coco", "test_score"]


def test_finetuning_from_a_released_mmf_checkpoint(chain, tmp_path):
    """A pretraining run's weights written in MMF's zoo layout (``module.model.bert.*``,
    background-first region classes) start a finetuning run (``pretrained_on="mmf:<file>"``)
    exactly where the run itself would have."""
    from vlstudy.models.mmf_checkpoint import mmf_key_map
    from vlstudy.study import Recipe, Study
    from vlstudy.train import build_model
    from vlstudy.world import open_world
    reg, specs, _, _ = chain
    pre = specs["pre"]
    root = open_world("smoke")
    pretrained = build_model(pre, root, reg.folder(pre.parent))
    ours = load_file(str(reg.folder(pre) / "model.safetensors"))
    mmf = {}
    for name, theirs in mmf_key_map(pretrained).items():
        value = ours[name]
        if theirs.startswith("cls.imagePredictions.decoder"):
            value = torch.cat([value[-1:], value[:-1]])              # background first, as MMF
        mmf[f"module.model.{theirs}"] = value
    torch.save({"model": mmf, "config": {"model": "vilbert"}}, tmp_path / "vilbert.pretrained.ckpt")
    study = Study(Recipe(world="smoke", model="tiny", finetune_batch_size=16, finetune_steps=6, evals_per_run=2,
                         max_text_len=24), reg)
    spec = study.finetuning("vilbert", "vqa_d", f"mmf:{tmp_path / 'vilbert.pretrained.ckpt'}")
    assert (spec.init, spec.parent) == ("mmf", None)
    start = build_model(spec, root, None).state_dict()
    base = [k for k in start if k.startswith("base.")]
    assert base and all(torch.equal(start[k], ours[k]) for k in base)
    assert 0 <= study.run(spec)["test_score"] <= 100


def test_blocks_share_one_bert_stage_unless_asked():
    """As the paper's models all start from one bert-base-uncased, every block starts from
    the one stand-in BERT stage; only the pretraining runs and what follows are replicated."""
    from vlstudy.study import Recipe, Study
    study = Study(Recipe(world="smoke", model="tiny", blocks=3))
    starts = {study.pretraining("visual_bert", "coco", block=b).parent for b in study.blocks}
    starts |= {study.finetuning("visual_bert", "vqa_d", "none", b).parent for b in study.blocks}
    assert starts == {study.bert(0).id}
    assert len({study.pretraining("visual_bert", "coco", block=b).id for b in study.blocks}) == 3


def test_blocks_replicate_every_stage_of_pretraining():
    """With ``bert_per_block``, block k is seed k for the BERT stage, the captioner, every
    pretraining run and the block's first finetuning replicate; further replicates get seeds
    clear of other blocks."""
    from vlstudy.study import Recipe, Study, finetune_seed
    study = Study(Recipe(world="smoke", model="tiny", blocks=3, finetune_seeds=2, bert_per_block=True))
    assert list(study.blocks) == [0, 1, 2] and list(study.replicates) == [0, 1]
    for block in study.blocks:
        ft = study.finetuning("visual_bert", "vqa_d", "coco", block, replicate=1)
        pre = study.pretraining("visual_bert", "coco", block=block)
        assert ft.parent == pre.id and pre.seed == block and pre.parent == study.bert(block).id
        assert study.bert(block).seed == block and ft.seed == finetune_seed(block, 1) == block + 1000
        direct = study.finetuning("visual_bert", "vqa_d", "none", block)
        assert direct.parent == study.bert(block).id and direct.seed == block
        ccg = study.pretraining("visual_bert", "ccg", block=block)
        captions = study._specs[ccg.text_from]
        assert study._specs[captions.parent].seed == block           # the captioner of the block
    assert len({study.bert(b).id for b in study.blocks}) == 3
    assert study.finetuning("visual_bert", "vqa_d", "coco", 0).threads == 1
    other = study.pretraining("visual_bert", "coco", block=1)
    with pytest.raises(ValueError, match="of block 1, not 0"):
        study.finetuning("visual_bert", "vqa_d", "coco", 0, pretraining=other)
    with pytest.raises(ValueError, match="at least 1"):
        Recipe(blocks=0)


def test_official_test_metric_reports_the_official_accuracy_and_names_it(smoke_world, monkeypatch):
    from vlstudy.study import Recipe, Study
    monkeypatch.setenv("VLSTUDY_OUTPUT_ROOT", str(smoke_world.folder.parent.parent))
    study = Study(Recipe(world="smoke", test_metric="official"))
    vqa, snli = study.finetuning("visual_bert", "vqa_d", "none"), study.finetuning("visual_bert", "snli_ve", "none")
    written = {"val_score": 50.0, "test_score": 51.0, "val_official_score": 48.0, "test_official_score": 49.5}
    row = study._scores(vqa, written)
    assert (row["test_score"], row["val_score"], row["test_soft_score"], row["test_metric"]) == \
        (49.5, 48.0, 51.0, "official accuracy")
    assert study._scores(snli, {"val_score": 70.0, "test_score": 71.0})["test_metric"] == "task metric"
    with pytest.raises(ValueError, match="trained before runs wrote official scores"):
        study._scores(vqa, {"val_score": 50.0, "test_score": 51.0})
    assert "test_metric" not in Study(Recipe(world="smoke"))._scores(vqa, written)      # soft: as before
    with pytest.raises(ValueError, match="test_metric must be 'soft' or 'official'"):
        Recipe(test_metric="leaderboard")


def test_a_start_from_replaced_in_place_gives_a_new_run_id(tmp_path):
    """The id hashes what ``start_from`` holds, not its path: a BERT folder or an MMF
    checkpoint overwritten where it lies must not reuse the runs of the old one."""
    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text("{}")
    (bert / "model.safetensors").write_bytes(b"old weights")
    spec = RunSpec("pretrain", "visual_bert", "coco", init="bert", start_from=str(bert), **TINY)
    before = spec.id
    assert spec.id == before                                   # stable while nothing changes
    (bert / "model.safetensors").write_bytes(b"new weights")
    assert spec.id != before
    checkpoint = tmp_path / "zoo.pth"
    checkpoint.write_bytes(b"one")
    mmf = RunSpec("finetune", "visual_bert", "vqa_d", init="mmf", start_from=str(checkpoint), **TINY)
    first = mmf.id
    checkpoint.write_bytes(b"two")
    assert mmf.id != first


def test_a_checkpoint_killed_while_saving_is_never_resumed_from(tmp_path):
    """The Trainer writes trainer_state.json last: a folder without it is a save cut short
    (a SIGKILL mid-save), so resuming takes the last complete one, by step."""
    for step, complete in ((20, True), (100, True), (110, False)):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"")
        if complete:
            (folder / "trainer_state.json").write_text("{}")
    assert last_checkpoint(tmp_path) == tmp_path / "checkpoint-100"

"""The captioner, the captions it generates (CCG), and pretraining on them: tiny config, smoke world."""
import json

import pytest
import torch

from vlstudy.captioner import (CaptionCollator, build_captioner, caption_images, generated_folder,
                               unique_images)
from vlstudy.data.batching import VLDataset
from vlstudy.metrics import caption_scores, caption_words
from vlstudy.models import model_config
from vlstudy import registry as registry_module
from vlstudy.registry import Registry
from vlstudy.study import Recipe, Study
from vlstudy.spec import RunSpec
from vlstudy.stages import get as stage

TINY = dict(world="smoke", model="tiny", batch_size=16, finetune_batch_size=16, bert_steps=10,
            pretrain_steps=10, finetune_steps=10, captioner_steps=20, evals_per_run=2, max_text_len=24,
            caption_max_len=24)


def _tiny_captioner(world, seed=0):
    torch.manual_seed(seed)
    cfg = model_config("tiny", vocab_size=len(world.tokenizer), feature_dim=world.store("coco").dim)
    return build_captioner(cfg, world.tokenizer)


def _coco_batch(world, n):
    ds = VLDataset(world.folder / "datasets" / "coco", "train", world.tokenizer, world.store("coco"), 24)
    picked = list(range(0, 5 * n, 5))                       # one caption each of n images
    return ds, picked, CaptionCollator(ds)(picked)


def test_captioner_overfits_a_handful_and_reproduces_them(smoke_world):
    model = _tiny_captioner(smoke_world)
    ds, picked, batch = _coco_batch(smoke_world, 4)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(300):
        loss = model(**batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
    images = [ds.records[i].image_id for i in picked]
    generated = caption_images(model, smoke_world, "coco", images, max_length=24)
    assert [caption_words(g) for g in generated] == [caption_words(ds.records[i].text) for i in picked]


def test_beam_search_is_deterministic(smoke_world):
    ds, picked, batch = _coco_batch(smoke_world, 6)
    first, again = _tiny_captioner(smoke_world), _tiny_captioner(smoke_world)
    args = (batch["features"], batch["boxes"], batch["region_mask"])
    ids = first.generate(*args, max_length=12)
    assert ids.shape[0] == 6 and (ids[:, 0] == smoke_world.tokenizer.cls_token_id).all()
    assert torch.equal(ids, first.generate(*args, max_length=12))
    assert torch.equal(ids, again.generate(*args, max_length=12))       # same seed, same weights
    sampled = first.generate(*args, max_length=12, num_beams=1, do_sample=True, top_k=0)
    assert sampled.shape[0] == 6


def test_caption_scores_follow_coco_scorers():
    refs = {"1": ["A dog sits on the grass.", "a brown dog on green grass"],
            "2": ["a red bus on the street", "a bus drives down a street"]}
    perfect = caption_scores(refs, {"1": "a dog sits on the grass", "2": "a red bus on the street"})
    worse = caption_scores(refs, {"1": "a red bus on the street", "2": "a dog sits on the grass"})
    assert perfect["bleu4"] == pytest.approx(100, abs=1e-3)
    assert perfect["cider"] > worse["cider"] >= 0 and perfect["bleu4"] > worse["bleu4"]
    with pytest.raises(ValueError, match="different images"):
        caption_scores(refs, {"1": "a dog"})
    assert caption_words("A dog's ball, red!") == "a dog 's ball red"


@pytest.fixture(scope="module")
def ccg(smoke_world, tmp_path_factory):
    """Captioner on COCO → captions of CC's images → VisualBERT pretrained on them."""
    study = Study(Recipe(**TINY), Registry(tmp_path_factory.mktemp("runs")), log=lambda _: None)
    pre = study.pretraining("visual_bert", "ccg")
    study.run_many([pre])
    return study, pre


def test_ccg_keeps_cc_images_and_replaces_the_text(ccg, smoke_world):
    study, pre = ccg
    captions = study._specs[pre.text_from]
    captioner = study._specs[captions.parent]
    assert (captioner.stage, captioner.dataset, captions.dataset, pre.dataset) == (
        "captioner", "coco", "cc_small", "cc_small")
    cap_metrics = study.registry.metrics(captioner)
    assert {"caption_loss", "bleu4", "cider"} <= set(cap_metrics)
    folder = generated_folder(study.registry.folder(captions))
    info = json.loads((folder / "dataset.json").read_text())
    assert info["store"] == smoke_world.info("cc_small").store and info["task"] == "pretraining"
    for split in ("train", "val"):
        cc = smoke_world.records("cc_small", split)
        generated = smoke_world.generated_split(folder, split, "cc_small")
        assert [r.image_id for r in generated.records] == unique_images(cc)       # same images, in order
        assert (generated.rows == smoke_world.store("cc").index_of(unique_images(cc))).all()
        originals = {r.image_id: r.text for r in cc}
        assert all(r.text != originals[r.image_id] for r in generated.records)    # new text
    # the captions are what the captioner makes of those images (decoding is deterministic)
    from safetensors.torch import load_model
    model = _tiny_captioner(smoke_world)
    load_model(model, str(study.registry.folder(captioner) / "model.safetensors"))
    val = smoke_world.generated_split(folder, "val", "cc_small")
    again = caption_images(model, smoke_world, "cc", [r.image_id for r in val.records], max_length=24)
    assert again == [r.text for r in val.records]
    assert study.registry.metrics(pre)["mlm_loss"] > 0


def test_pretraining_on_generated_text_waits_for_it_and_reads_it(ccg, smoke_world, tmp_path, monkeypatch):
    study, pre = ccg
    fresh = Study(study.recipe, Registry(tmp_path))
    order = [s.stage for s in fresh._unfinished_with_parents([fresh.finetuning("visual_bert", "vqa_d", "ccg")])]
    assert order == ["bert", "captioner", "captions", "pretrain", "finetune"]
    # its BERT parent has finished, its captions have not: the captions run is named
    other = study.pretraining("visual_bert", "cc_small", text_from=study.captions(
        "cc_small", study.captioner("coco", fraction=0.5)))
    with pytest.raises(ValueError, match=f"needs run {other.text_from}, which has not finished"):
        study.registry.run(other)
    # the registry hands training the generated text, and training reads it
    seen = {}
    monkeypatch.setattr(registry_module, "train_run",
                        lambda spec, folder, root, parent, progress, text_dir, head_dir=None: seen.update(text_dir=text_dir) or {})
    study.registry.run(pre.replace(seed=7))
    folder = generated_folder(study.registry.folder(pre.text_from))
    assert seen["text_dir"] == folder
    train = stage(pre.stage).datasets(pre, smoke_world, folder)["train"]
    assert [r.text for r in train.records] == [r.text for r in smoke_world.generated_split(folder, "train", "cc_small").records]
    assert [r.text for r in train.records] != [r.text for r in smoke_world.records("cc_small", "train")]


def test_generated_text_specs_are_checked(ccg, smoke_world):
    study, pre = ccg
    with pytest.raises(ValueError, match="only pretraining"):
        RunSpec("finetune", "visual_bert", "vqa_d", init="random", text_from=pre.text_from)
    with pytest.raises(ValueError, match="do not go together"):
        RunSpec("captioner", "visual_bert", "coco", init="random")
    with pytest.raises(ValueError, match="decodes with a trained captioner"):
        RunSpec("captions", "captioner", "cc_small", init="random")
    with pytest.raises(ValueError, match="captions 'cc_small', not 'coco'"):
        study.pretraining("visual_bert", "coco", text_from=study._specs[pre.text_from])
    folder = generated_folder(study.registry.folder(pre.text_from))
    with pytest.raises(ValueError, match="not those of 'cc_full'"):       # same store, other images
        smoke_world.generated_split(folder, "train", "cc_full")


def test_the_captioner_and_fast_runs_print_no_library_warning(smoke_world, chain_registry, capfd):
    """A captioner's loss and a frozen head that saves two checkpoints within a second gave
    transformers' "loss_type=None ... unrecognized" and "mtime may not be reliable" warnings,
    which a user cannot act on: the captioner names its loss, and checkpoints are kept by step."""
    from transformers.utils import logging as hf_logging
    hf_logging.get_logger("transformers").warning_once.cache_clear()
    before = hf_logging.get_verbosity()
    hf_logging.set_verbosity_warning()           # the tests run at "error" (conftest); a study at warning
    try:
        model = _tiny_captioner(smoke_world)
        _, _, batch = _coco_batch(smoke_world, 2)
        model(**batch)["loss"].backward()
        reg, frozen = chain_registry
        reg.run(frozen)
    finally:
        hf_logging.set_verbosity(before)
    err = capfd.readouterr().err
    assert "unrecognized" not in err and "mtime" not in err and "WARNING" not in err.upper().replace("WARNINGS", "")


@pytest.fixture
def chain_registry(tmp_path):
    """A frozen-base finetuning run of the tiny config with checkpoints a fraction of a second
    apart, ready to train."""
    from vlstudy.registry import Registry
    from vlstudy.spec import RunSpec
    tiny = dict(world="smoke", model="tiny", batch_size=16, max_text_len=24)
    reg = Registry(tmp_path / "runs")
    bert = RunSpec("bert", "bert", "corpus", init="random", steps=4, eval_every=2, beta2=0.98, **tiny)
    reg.run(bert)
    frozen = RunSpec("finetune", "visual_bert", "vizwiz", parent=bert.id, steps=6, eval_every=2, frozen_base=True, **tiny)
    return reg, frozen
